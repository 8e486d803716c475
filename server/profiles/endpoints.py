"""Profile routes: read, timeline, consents (read and update with history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from server.auth.deps import AdminDep, StaffDep
from server.db import SessionDep
from server.profiles import service
from server.profiles.schemas import ConsentsRead, ConsentUpdate, ProfileRead, Timeline

__all__ = ["router"]

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])

#: One screen of a journey; the cap bounds a single query.
TIMELINE_PAGE = 100
TIMELINE_PAGE_MAX = 500


@router.get("/{profile_id}", summary="A profile (alias values are never echoed)")
def get_profile(profile_id: str, session: SessionDep, staff: StaffDep) -> ProfileRead:
    return service.get_profile(session, profile_id)


@router.get("/{profile_id}/timeline", summary="Web views and store interactions, in order")
def get_timeline(
    profile_id: str,
    session: SessionDep,
    staff: StaffDep,
    before: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=TIMELINE_PAGE_MAX)] = TIMELINE_PAGE,
) -> Timeline:
    return service.timeline(session, profile_id, before=before, limit=limit)


@router.get("/{profile_id}/consents", summary="Current consent per purpose and its history")
def get_consents(profile_id: str, session: SessionDep, staff: StaffDep) -> ConsentsRead:
    return service.get_consents(session, profile_id)


@router.put("/{profile_id}/consents", summary="Grant or withdraw purposes (appended to history)")
def update_consents(
    profile_id: str, body: ConsentUpdate, session: SessionDep, admin: AdminDep
) -> ConsentsRead:
    return service.update_consents(
        session, profile_id, body, actor=admin.subject, now=datetime.now(UTC)
    )

"""Privacy routes: export a profile's data, erase a profile (admin)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from server.auth.deps import AdminDep
from server.db import SessionDep
from server.privacy import service
from server.privacy.schemas import ErasureReport, ProfileExport

__all__ = ["router"]

router = APIRouter(prefix="/v1/profiles", tags=["privacy"])


@router.get("/{profile_id}/export", summary="Everything held about a shopper, as JSON")
def export_profile(profile_id: str, session: SessionDep, admin: AdminDep) -> ProfileExport:
    return service.export_profile(session, profile_id, datetime.now(UTC))


@router.delete("/{profile_id}", summary="Erase a shopper and every row that names them")
def erase_profile(profile_id: str, session: SessionDep, admin: AdminDep) -> ErasureReport:
    return service.erase_profile(session, profile_id)

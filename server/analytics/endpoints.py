"""Analytics routes (staff): funnel, footfall, guidance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from server.analytics import service
from server.analytics.schemas import FootfallReport, FunnelReport, GuidanceReport
from server.auth.deps import StaffDep
from server.db import SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

From = Annotated[AwareDatetime, Query(alias="from", description="Start, inclusive (ISO 8601).")]
To = Annotated[AwareDatetime, Query(alias="to", description="End, exclusive (ISO 8601).")]


@router.get("/funnel", summary="ROPO funnel per store and product")
def get_funnel(
    session: SessionDep,
    staff: StaffDep,
    start: From,
    end: To,
    store: str | None = None,
    product: str | None = None,
) -> FunnelReport:
    return service.funnel(session, start=start, end=end, store=store, product=product)


@router.get("/footfall", summary="Visits, identified vs anonymous, dwell, per zone")
def get_footfall(
    session: SessionDep, staff: StaffDep, store: str, start: From, end: To
) -> FootfallReport:
    return service.footfall(session, store=store, start=start, end=end)


@router.get("/guidance", summary="Guidance delivered vs acted upon, per product")
def get_guidance(
    session: SessionDep,
    staff: StaffDep,
    start: From,
    end: To,
    store: str | None = None,
    product: str | None = None,
) -> GuidanceReport:
    return service.guidance(session, start=start, end=end, store=store, product=product)

"""``GET /v1/stores/{store}/epcis?from=&to=``: an EPCIS 2.0 JSON-LD document (staff)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from server.auth.deps import StaffDep
from server.db import SessionDep
from server.epcis import service

__all__ = ["router"]

router = APIRouter(tags=["epcis"])


@router.get(
    "/v1/stores/{store_id}/epcis",
    summary="Item observations as an EPCIS 2.0 document",
    response_class=JSONResponse,
    responses={200: {"content": {"application/ld+json": {}}}},
)
def export_epcis(
    store_id: str,
    session: SessionDep,
    staff: StaffDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
) -> JSONResponse:
    document: dict[str, Any] = service.export_observations(
        session, store_id, start, end, datetime.now(UTC)
    )
    return JSONResponse(document, media_type="application/ld+json")

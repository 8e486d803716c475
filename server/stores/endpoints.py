"""Store routes: import a layout (admin), read a store (staff)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from server.auth.deps import AdminDep, StaffDep
from server.db import SessionDep
from server.ingest_web.body import read_body
from server.stores import service
from server.stores.schemas import StoreImportReport, StorePublic

__all__ = ["router"]

router = APIRouter(tags=["stores"])

#: A layout is a few hundred rows; 2 MiB is generous and still bounds a YAML bomb's input.
LAYOUT_BODY_LIMIT = 2 * 1024 * 1024


@router.post("/v1/admin/stores/import", summary="Import a store layout (YAML or JSON)")
async def import_store(request: Request, session: SessionDep, admin: AdminDep) -> StoreImportReport:
    """Upsert a ``StoreLayout`` (zones, racks, readers, antennas, scanners) in one transaction."""
    layout = service.parse_layout(await read_body(request, LAYOUT_BODY_LIMIT))
    return await run_in_threadpool(service.import_layout, session, layout)


@router.get("/v1/stores/{store_id}", summary="A store and its zones")
def get_store(store_id: str, session: SessionDep, staff: StaffDep) -> StorePublic:
    return service.get_store(session, store_id)

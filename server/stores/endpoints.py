"""Store routes: import a layout (admin), read a store (staff), serve its layout (gateway)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from server.auth.deps import AdminDep, GatewayDep, StaffDep
from server.db import SessionDep
from server.errors import Forbidden
from server.ingest_web.body import read_body
from server.stores import service
from server.stores.schemas import StoreImportReport, StorePublic
from vitrine.contracts.layout import StoreLayout

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


@router.get(
    "/v1/stores/{store_id}/layout",
    summary="The store's layout, for its gateway",
    response_model=StoreLayout,
    responses={304: {"description": "Not modified: the `If-None-Match` tag is current"}},
)
def get_layout(
    store_id: str, request: Request, session: SessionDep, caller: GatewayDep
) -> Response:
    """The imported ``StoreLayout`` (JSON), with a strong ``ETag``.

    A ``gateway`` token reads only the store it names; ``admin`` reads any. A
    gateway polls with ``If-None-Match`` and gets ``304`` while nothing changed
    (RFC 9110 §13.1.2).
    """
    if caller.role == "gateway" and caller.store != store_id:
        raise Forbidden("this gateway token is for another store")
    body = service.layout_body(service.get_layout(session, store_id))
    etag = service.layout_etag(body)
    # no-cache: a cache may keep it but must revalidate (the gateway polls anyway).
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _none_match(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` or is ``*`` (weak comparison, §8.8.3.2)."""
    if header is None:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False

"""Admin routes of the catalogue: import products/variants (CSV or JSON) and stock."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from server.auth.deps import AdminDep
from server.catalogue import service
from server.catalogue.schemas import CatalogueImportReport, StockImportReport
from server.db import SessionDep
from server.errors import VitrineError
from server.ingest_web.body import read_body

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin/catalogue", tags=["catalogue"])

#: A chain's full catalogue (~100k variants × ~200 bytes a CSV row) fits with room to spare.
IMPORT_BODY_LIMIT = 32 * 1024 * 1024


class UnsupportedMediaType(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 415


def _format(request: Request) -> service.CatalogueFormat:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return "csv"
    if media == "application/json":
        return "json"
    raise UnsupportedMediaType("send the file as text/csv or application/json")


@router.post("/import", summary="Import products and variants (CSV or JSON)")
async def import_catalogue(
    request: Request, session: SessionDep, admin: AdminDep
) -> CatalogueImportReport:
    """Idempotent upsert of a whole catalogue file in one transaction; 422 lists every bad row."""
    fmt = _format(request)
    content = await read_body(request, IMPORT_BODY_LIMIT)
    records = service.parse_catalogue(content, fmt)
    return await run_in_threadpool(service.import_catalogue, session, records)


@router.post("/stock", summary="Import tagged items (EPC → GTIN → variant) of one store")
async def import_stock(request: Request, session: SessionDep, admin: AdminDep) -> StockImportReport:
    content = await read_body(request, IMPORT_BODY_LIMIT)
    stock = service.parse_stock(content)
    return await run_in_threadpool(service.import_stock, session, stock)

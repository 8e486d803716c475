"""Routes of the staff dashboard and the analytics page.

- ``GET /staff``, ``GET /analytics``: the pages (static HTML; no token needed to
  load them — every datum they show comes from a token-protected route).
- ``GET /web/{asset}``: their CSS and ES modules.
- ``GET /v1/web/stores``: the stores a dashboard may pick from (staff).
- ``GET /v1/web/stores/{store}/map``: zones with their rectangles, racks, live
  stock per zone (items a reader has seen) and identified shoppers per zone
  (staff; opted-in visits only, counted — never named).
- ``GET /v1/web/products``: product names and online ids for the charts (staff).
- ``GET /v1/web/stores/{store}/stream``: the live feed (:mod:`server.web.stream`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from server.auth.deps import StaffDep
from server.db import SessionDep, session_factory
from server.errors import NotFound
from server.models.catalogue import Item, ItemStatus, Product
from server.models.journeys import StoreVisit
from server.models.stores import Rack, Store, Zone
from server.settings import ServerSettings
from server.web.stream import check_origin, sse_frame, staff_feed

__all__ = ["router"]

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
#: Only these files are served: no path from the request ever reaches the filesystem.
_ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES} if STATIC.is_dir() else {}
#: Pages and assets are small and change with a release; a short cache is enough.
_CACHE = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}

router = APIRouter(tags=["web"])


def _file(name: str) -> FileResponse:
    path = _ASSETS.get(name)
    if path is None:
        raise NotFound("no such asset")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_CACHE)


@router.get("/staff", include_in_schema=False)
def staff_page() -> FileResponse:
    return _file("staff.html")


@router.get("/analytics", include_in_schema=False)
def analytics_page() -> FileResponse:
    return _file("analytics.html")


@router.get("/web/{asset}", include_in_schema=False)
def asset(asset: str) -> FileResponse:
    return _file(asset)


class StoreSummary(BaseModel):
    id: str
    name: str


class MapZone(BaseModel):
    id: str
    name: str
    type: str
    x: float
    y: float
    w: float
    h: float
    items_in_stock: int
    identified_shoppers: int


class MapRack(BaseModel):
    id: str
    zone_id: str
    name: str
    x: float
    y: float
    items_in_stock: int


class StoreMap(BaseModel):
    store_id: str
    name: str
    zones: list[MapZone]
    racks: list[MapRack]
    shoppers_in_store: int


@router.get("/v1/web/stores", summary="Stores the dashboard can show")
def list_stores(session: SessionDep, staff: StaffDep) -> list[StoreSummary]:
    rows = session.exec(select(Store).order_by(col(Store.id))).all()
    return [StoreSummary(id=s.id, name=s.name) for s in rows]


@router.get("/v1/web/stores/{store_id}/map", summary="Zones, racks, live stock and shoppers")
def store_map(store_id: str, session: SessionDep, staff: StaffDep) -> StoreMap:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound("no such store")
    # Live stock: in stock *and* read by a reader at least once (an imported item
    # nobody has read yet is a claim of the stock file, not something seen).
    in_stock = (
        (col(Item.store_id) == store_id)
        & (col(Item.status) == ItemStatus.IN_STOCK)
        & col(Item.last_seen_at).is_not(None)
    )
    per_zone = dict(
        session.exec(
            select(col(Item.zone_id), func.count()).where(in_stock).group_by(col(Item.zone_id))
        ).all()
    )
    per_rack = dict(
        session.exec(
            select(col(Item.rack_id), func.count()).where(in_stock).group_by(col(Item.rack_id))
        ).all()
    )
    open_visits = (col(StoreVisit.store_id) == store_id) & col(StoreVisit.ended_at).is_(None)
    shoppers = dict(
        session.exec(
            select(col(StoreVisit.last_zone_id), func.count())
            .where(open_visits & col(StoreVisit.profile_id).is_not(None))
            .group_by(col(StoreVisit.last_zone_id))
        ).all()
    )
    total = session.exec(select(func.count()).select_from(StoreVisit).where(open_visits)).one()
    zones = session.exec(select(Zone).where(Zone.store_id == store_id)).all()
    racks = session.exec(select(Rack).where(Rack.store_id == store_id)).all()
    return StoreMap(
        store_id=store.id,
        name=store.name,
        zones=[
            MapZone(
                id=z.id,
                name=z.name,
                type=str(z.type),
                x=z.area_x,
                y=z.area_y,
                w=z.area_w,
                h=z.area_h,
                items_in_stock=per_zone.get(z.id, 0),
                identified_shoppers=shoppers.get(z.id, 0),
            )
            for z in zones
        ],
        racks=[
            MapRack(
                id=r.id,
                zone_id=r.zone_id,
                name=r.name,
                x=r.position_x,
                y=r.position_y,
                items_in_stock=per_rack.get(r.id, 0),
            )
            for r in racks
        ],
        shoppers_in_store=total,
    )


class ProductLabel(BaseModel):
    id: str
    name: str
    online_product_id: str | None


@router.get("/v1/web/products", summary="Product names for the analytics charts")
def product_labels(session: SessionDep, staff: StaffDep) -> list[ProductLabel]:
    rows = session.exec(select(Product).order_by(col(Product.name))).all()
    return [ProductLabel(id=p.id, name=p.name, online_product_id=p.online_product_id) for p in rows]


def _store_exists(engine: Engine, store_id: str) -> bool:
    with session_factory(engine) as session:
        return session.get(Store, store_id) is not None


def _origin(request: Request) -> None:
    check_origin(request)


@router.get(
    "/v1/web/stores/{store_id}/stream",
    summary="Live staff events, device health and dead letters (text/event-stream)",
    dependencies=[Depends(_origin)],
)
async def stream(store_id: str, request: Request, staff: StaffDep) -> StreamingResponse:
    settings: ServerSettings = request.app.state.settings
    # A short session of its own, closed before streaming: a request-scoped one
    # would hold its transaction (on SQLite, the write lock) for the stream's life.
    if not await run_in_threadpool(_store_exists, request.app.state.engine, store_id):
        raise NotFound("no such store")  # also keeps MQTT wildcards out of the topics

    async def frames() -> AsyncIterator[bytes]:
        async for message in staff_feed(settings.mqtt_url, store_id):
            if await request.is_disconnected():
                break
            yield sse_frame(message)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )

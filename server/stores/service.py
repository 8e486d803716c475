"""Store layout import: a ``StoreLayout`` file (YAML or JSON) upserted in one transaction.

Rows are keyed by ``(store_id, id)`` (antennas by reader and port); rows that
the new layout no longer names are deleted, and items that sat in a dropped
zone or rack lose that placement (the next read places them again).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from sqlmodel import Session

from server.catalogue.service import ImportRejected
from server.errors import NotFound
from server.models import Antenna, Rack, Reader, Scanner, Store, Zone
from server.stores import repository
from server.stores.schemas import StoreImportReport, StorePublic, ZonePublic
from vitrine.contracts.layout import StoreLayout
from vitrine.runtime import layout_io

__all__ = ["get_layout", "get_store", "import_layout", "layout_body", "layout_etag", "parse_layout"]

log = logging.getLogger(__name__)


def parse_layout(content: bytes) -> StoreLayout:
    """A layout from YAML or JSON bytes (JSON is YAML 1.2), or :class:`ImportRejected`.

    Read by :func:`vitrine.runtime.layout_io.parse_layout`, the loader the
    gateway and the simulator use, so the three accept exactly the same files;
    its message (which line, which field) is the problem reported.
    """
    try:
        return layout_io.parse_layout(content, source="layout")
    except layout_io.LayoutFileError as error:
        raise ImportRejected([str(error)]) from None


def import_layout(session: Session, layout: StoreLayout) -> StoreImportReport:
    info = layout.store
    try:
        store = session.get(Store, info.id)
        created = store is None
        if store is None:
            session.add(
                Store(
                    id=info.id,
                    name=info.name,
                    timezone=info.timezone,
                    espresense_prefix=layout.espresense_prefix,
                )
            )
        else:
            store.name, store.timezone = info.name, info.timezone
            store.espresense_prefix = layout.espresense_prefix
        session.flush()
        zones = {z.id for z in layout.zones}
        racks = {r.id for r in layout.racks}
        repository.detach_items(session, info.id, zones, racks)
        keep: dict[type[Antenna | Scanner | Reader | Rack | Zone], set[tuple[object, ...]]] = {
            Antenna: {(r.id, a.port) for r in layout.readers for a in r.antennas},
            Scanner: {(s.id,) for s in layout.scanners},
            Reader: {(r.id,) for r in layout.readers},
            Rack: {(r,) for r in racks},
            Zone: {(z,) for z in zones},
        }
        removed = sum(
            repository.delete_missing(session, table, info.id, keep[table])
            for table in repository.LAYOUT_TABLES
        )
        session.flush()
        for z in layout.zones:
            session.merge(
                Zone(
                    store_id=info.id,
                    id=z.id,
                    name=z.name,
                    type=z.type,
                    area_x=z.area.x,
                    area_y=z.area.y,
                    area_w=z.area.w,
                    area_h=z.area.h,
                )
            )
        session.flush()
        for r in layout.racks:
            session.merge(
                Rack(
                    store_id=info.id,
                    id=r.id,
                    zone_id=r.zone,
                    name=r.name,
                    position_x=r.position[0],
                    position_y=r.position[1],
                )
            )
        for reader in layout.readers:
            session.merge(
                Reader(
                    store_id=info.id,
                    id=reader.id,
                    format=reader.format,
                    topic=reader.topic,
                    management_topic=reader.management_topic,
                )
            )
        session.flush()
        for reader in layout.readers:
            for a in reader.antennas:
                session.merge(
                    Antenna(
                        store_id=info.id,
                        reader_id=reader.id,
                        port=a.port,
                        zone_id=a.zone,
                        rack_id=a.rack,
                        position_x=a.position[0],
                        position_y=a.position[1],
                        range_m=a.range_m,
                    )
                )
        for s in layout.scanners:
            session.merge(
                Scanner(
                    store_id=info.id,
                    id=s.id,
                    room=s.room,
                    zone_id=s.zone,
                    position_x=s.position[0],
                    position_y=s.position[1],
                )
            )
        session.commit()
    except Exception:
        session.rollback()
        raise
    report = StoreImportReport(
        store_id=info.id,
        created=created,
        zones=len(layout.zones),
        racks=len(layout.racks),
        readers=len(layout.readers),
        antennas=sum(len(r.antennas) for r in layout.readers),
        scanners=len(layout.scanners),
        removed=removed,
    )
    log.info("store layout imported", extra={"store": info.id, "removed": removed})
    return report


def get_store(session: Session, store_id: str) -> StorePublic:
    store = repository.get_store(session, store_id)
    if store is None:
        raise NotFound(f"no store {store_id}")
    zones = repository.zones_of_store(session, store_id)
    return StorePublic(
        id=store.id,
        name=store.name,
        timezone=store.timezone,
        zones=[ZonePublic(id=z.id, name=z.name, type=z.type.value) for z in zones],
    )


def get_layout(session: Session, store_id: str) -> StoreLayout:
    """The store's layout as imported, in the ``StoreLayout`` contract shape.

    Rebuilt from the layout tables (the server's single copy), so it is what
    the engine and staff screens see too. Zones, racks, readers and scanners
    come back in id order and antennas in port order; everything else is the
    imported file's. The gateway reads it (``vitrine gateway run --layout-url``).
    """
    store = repository.get_store(session, store_id)
    if store is None:
        raise NotFound(f"no store {store_id}")
    antennas: dict[str, list[dict[str, Any]]] = {}
    for a in repository.antennas_of_store(session, store_id):
        antennas.setdefault(a.reader_id, []).append(
            {
                "port": a.port,
                "zone": a.zone_id,
                "rack": a.rack_id,
                "position": (a.position_x, a.position_y),
                "range_m": a.range_m,
            }
        )
    document = {
        "store": {"id": store.id, "name": store.name, "timezone": store.timezone},
        "zones": [
            {
                "id": z.id,
                "name": z.name,
                "type": z.type,
                "area": {"x": z.area_x, "y": z.area_y, "w": z.area_w, "h": z.area_h},
            }
            for z in repository.zones_of_store(session, store_id)
        ],
        "racks": [
            {
                "id": r.id,
                "zone": r.zone_id,
                "name": r.name,
                "position": (r.position_x, r.position_y),
            }
            for r in repository.racks_of_store(session, store_id)
        ],
        "readers": [
            {
                "id": r.id,
                "format": r.format,
                "topic": r.topic,
                "management_topic": r.management_topic,
                "antennas": antennas.get(r.id, []),
            }
            for r in repository.readers_of_store(session, store_id)
        ],
        "scanners": [
            {
                "id": s.id,
                "room": s.room,
                "zone": s.zone_id,
                "position": (s.position_x, s.position_y),
            }
            for s in repository.scanners_of_store(session, store_id)
        ],
        "espresense_prefix": store.espresense_prefix,
    }
    # Validated on the way out too: the rows were a valid layout when imported.
    return StoreLayout.model_validate(document)


def layout_body(layout: StoreLayout) -> bytes:
    """The JSON document served: keys sorted, so equal layouts give equal bytes."""
    return orjson.dumps(layout.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def layout_etag(body: bytes) -> str:
    """A strong entity tag (RFC 9110 §8.8.3): the first 128 bits of SHA-256 of ``body``."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

"""Store layout import: a ``StoreLayout`` file (YAML or JSON) upserted in one transaction.

Rows are keyed by ``(store_id, id)`` (antennas by reader and port); rows that
the new layout no longer names are deleted, and items that sat in a dropped
zone or rack lose that placement (the next read places them again).
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from server.catalogue.service import ImportRejected
from server.errors import NotFound
from server.models import Antenna, Rack, Reader, Scanner, Store, Zone
from server.stores import repository
from server.stores.schemas import StoreImportReport, StorePublic, ZonePublic
from vitrine.contracts.layout import StoreLayout
from vitrine.runtime import layout_io

__all__ = ["get_store", "import_layout", "parse_layout"]

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
            session.add(Store(id=info.id, name=info.name, timezone=info.timezone))
        else:
            store.name, store.timezone = info.name, info.timezone
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

"""A store and its zones as database rows, for tests that need one without a layout file."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from server.models import Store, Zone, ZoneType

__all__ = ["add_store"]


def add_store(
    session: Session, store: str, name: str, zones: Iterable[tuple[str, str, ZoneType]]
) -> None:
    """Add ``store`` and its ``(id, name, type)`` zones, each a 1 x 1 area; flushed."""
    session.add(Store(id=store, name=name))
    session.flush()
    for zone_id, zone_name, kind in zones:
        session.add(
            Zone(
                store_id=store,
                id=zone_id,
                name=zone_name,
                type=kind,
                area_x=0,
                area_y=0,
                area_w=1,
                area_h=1,
            )
        )
    session.flush()

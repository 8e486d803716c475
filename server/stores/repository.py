"""Every query of the stores feature."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import Antenna, Item, Rack, Reader, Scanner, Store, Zone

__all__ = [
    "LAYOUT_TABLES",
    "antennas_of_store",
    "delete_missing",
    "detach_items",
    "get_store",
    "list_stores",
    "racks_of_store",
    "readers_of_store",
    "scanners_of_store",
    "zones_of_store",
]

#: Children before parents: the order rows not in a new layout are deleted in.
LAYOUT_TABLES: tuple[type[Antenna | Scanner | Reader | Rack | Zone], ...] = (
    Antenna,
    Scanner,
    Reader,
    Rack,
    Zone,
)


def get_store(session: Session, store_id: str) -> Store | None:
    return session.get(Store, store_id)


def list_stores(session: Session) -> Sequence[Store]:
    return session.exec(select(Store).order_by(col(Store.id))).all()


def zones_of_store(session: Session, store_id: str) -> Sequence[Zone]:
    return session.exec(select(Zone).where(Zone.store_id == store_id).order_by(col(Zone.id))).all()


def racks_of_store(session: Session, store_id: str) -> Sequence[Rack]:
    return session.exec(select(Rack).where(Rack.store_id == store_id).order_by(col(Rack.id))).all()


def readers_of_store(session: Session, store_id: str) -> Sequence[Reader]:
    return session.exec(
        select(Reader).where(Reader.store_id == store_id).order_by(col(Reader.id))
    ).all()


def antennas_of_store(session: Session, store_id: str) -> Sequence[Antenna]:
    """Every antenna of the store's readers, by reader then port."""
    return session.exec(
        select(Antenna)
        .where(Antenna.store_id == store_id)
        .order_by(col(Antenna.reader_id), col(Antenna.port))
    ).all()


def scanners_of_store(session: Session, store_id: str) -> Sequence[Scanner]:
    return session.exec(
        select(Scanner).where(Scanner.store_id == store_id).order_by(col(Scanner.id))
    ).all()


def detach_items(session: Session, store_id: str, zones: set[str], racks: set[str]) -> None:
    """Items placed in a zone or rack that a new layout drops lose that placement."""
    session.execute(
        sa.update(Item)
        .where(col(Item.store_id) == store_id, col(Item.rack_id).is_not(None))
        .where(col(Item.rack_id).not_in(racks) if racks else sa.true())
        .values(rack_id=None)
    )
    session.execute(
        sa.update(Item)
        .where(col(Item.store_id) == store_id, col(Item.zone_id).is_not(None))
        .where(col(Item.zone_id).not_in(zones) if zones else sa.true())
        .values(zone_id=None, rack_id=None)
    )


def delete_missing(
    session: Session,
    table: type[Antenna | Scanner | Reader | Rack | Zone],
    store_id: str,
    keep: set[tuple[object, ...]],
) -> int:
    """Delete the store's rows of ``table`` whose key is not in ``keep``; return how many."""
    key_columns = [c for c in sa.inspect(table).primary_key if c.name != "store_id"]
    rows = session.execute(
        sa.select(*key_columns).where(sa.inspect(table).c.store_id == store_id)
    ).all()
    removed = 0
    for row in rows:
        key = tuple(row)
        if key not in keep:
            session.execute(
                sa.delete(table).where(
                    sa.inspect(table).c.store_id == store_id,
                    *(c == v for c, v in zip(key_columns, key, strict=True)),
                )
            )
            removed += 1
    return removed

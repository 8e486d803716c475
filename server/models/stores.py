"""Stores and their layout: zones, racks, RFID readers and antennas, BLE scanners.

These rows are ``vitrine.contracts.layout.StoreLayout`` persisted: the ids are
the layout file's ids, unique *within a store*, so every layout table is keyed
by ``(store_id, id)`` and facts (which carry store and zone ids) need no lookup
to find their zone.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import LAYOUT_ID_LENGTH, closed_enum, utc_field
from vitrine.contracts.layout import ZoneType

__all__ = ["Antenna", "Rack", "Reader", "Scanner", "Store", "Zone", "ZoneType"]

_STORE_FK = "stores.id"


class Store(SQLModel, table=True):
    __tablename__ = "stores"

    id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    name: str = Field(max_length=200)
    #: IANA zone name for opening hours and local-day analytics; times are stored UTC.
    timezone: str = Field(default="UTC", max_length=64)
    #: ``StoreLayout.espresense_prefix``: the base topic of the store's ESPresense
    #: nodes, so that ``GET /v1/stores/{id}/layout`` gives the gateway back its file.
    espresense_prefix: str = Field(
        default="espresense", max_length=512, sa_column_kwargs={"server_default": "espresense"}
    )
    created_at: datetime = utc_field(now=True)


class Zone(SQLModel, table=True):
    __tablename__ = "zones"

    store_id: str = Field(
        foreign_key=_STORE_FK, primary_key=True, max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE"
    )
    id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    name: str = Field(max_length=200)
    type: ZoneType = Field(sa_type=closed_enum(ZoneType, "zone_type"))
    # The zone's rectangle on the shop plan, metres (``layout.Rect``).
    area_x: float
    area_y: float
    area_w: float
    area_h: float


class Rack(SQLModel, table=True):
    __tablename__ = "racks"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["store_id", "zone_id"], ["zones.store_id", "zones.id"], ondelete="CASCADE"
        ),
    )

    store_id: str = Field(
        foreign_key=_STORE_FK, primary_key=True, max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE"
    )
    id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    zone_id: str = Field(max_length=LAYOUT_ID_LENGTH)
    name: str = Field(max_length=200)
    position_x: float
    position_y: float


class Reader(SQLModel, table=True):
    """An RFID reader: its payload format and the vendor topic it publishes on."""

    __tablename__ = "readers"

    store_id: str = Field(
        foreign_key=_STORE_FK, primary_key=True, max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE"
    )
    id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    #: ``layout.ReaderFormat``: zebra, impinj, speedway, llrp.
    format: str = Field(max_length=16)
    topic: str = Field(max_length=512)
    management_topic: str | None = Field(default=None, max_length=512)


class Antenna(SQLModel, table=True):
    """One antenna port of a reader, and the zone (and rack) it covers."""

    __tablename__ = "antennas"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["store_id", "reader_id"], ["readers.store_id", "readers.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id", "zone_id"], ["zones.store_id", "zones.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["store_id", "rack_id"], ["racks.store_id", "racks.id"]),
    )

    store_id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    reader_id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    port: int = Field(primary_key=True, ge=1, sa_column_kwargs={"autoincrement": False})
    zone_id: str = Field(max_length=LAYOUT_ID_LENGTH)
    rack_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)
    position_x: float
    position_y: float
    range_m: float = 3.0


class Scanner(SQLModel, table=True):
    """A BLE scanner (ESPresense node): its room name maps to a zone."""

    __tablename__ = "scanners"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["store_id", "zone_id"], ["zones.store_id", "zones.id"], ondelete="CASCADE"
        ),
        # The gateway maps ESPresense room → zone per store.
        sa.Index(None, "store_id", "room"),
    )

    store_id: str = Field(
        foreign_key=_STORE_FK, primary_key=True, max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE"
    )
    id: str = Field(primary_key=True, max_length=LAYOUT_ID_LENGTH)
    #: ESPresense room: the last level of ``espresense/devices/<id>/<room>``.
    room: str = Field(max_length=LAYOUT_ID_LENGTH)
    zone_id: str = Field(max_length=LAYOUT_ID_LENGTH)
    position_x: float
    position_y: float

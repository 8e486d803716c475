"""Store operations beside live stock: the item-observation history and click & collect.

- :class:`ItemObservation` — one row per item fact the ingest applied (EPC,
  store, zone, kind, time): the EPCIS export of a period reads every
  observation in it, not only each item's latest read. Purged with retention.
- :class:`PendingPickup` — an order waiting in a store for its customer (click
  & collect), from an online purchase whose shipping says in-store pickup or
  from the admin API; the staff arrival alert lists the profile's open ones.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import ID_LENGTH, LAYOUT_ID_LENGTH, new_id, utc_field

__all__ = ["ItemObservation", "PendingPickup"]


class ItemObservation(SQLModel, table=True):
    __tablename__ = "item_observations"
    __table_args__ = (sa.Index(None, "store_id", "occurred_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    #: The fact's ``event_id``: a replayed fact writes nothing twice.
    event_id: str = Field(max_length=128, unique=True)
    epc: str = Field(max_length=128)
    store_id: str = Field(foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE")
    # History: no foreign key (a later layout may drop the zone).
    zone_id: str = Field(max_length=LAYOUT_ID_LENGTH)
    #: ``item_arrived`` / ``item_moved`` / ``item_departed``.
    kind: str = Field(max_length=32)
    #: Sold at this read (a till): the EPCIS ``retail_selling`` step.
    sold: bool = False
    occurred_at: datetime = utc_field()


class PendingPickup(SQLModel, table=True):
    __tablename__ = "pending_pickups"
    __table_args__ = (
        sa.Index(None, "profile_id", "store_id", "collected_at"),
        sa.UniqueConstraint("store_id", "order_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    store_id: str = Field(foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE")
    profile_id: str = Field(
        foreign_key="shopper_profiles.id", max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: The online store's order id (what staff look up at the counter).
    order_id: str = Field(max_length=200)
    created_at: datetime = utc_field()
    collected_at: datetime | None = utc_field(nullable=True)

"""The omnichannel journey: online product views, store visits, the profile timeline.

Every row that arrives from a message carries that message's ``event_id`` under
a unique constraint, so a redelivered message inserts nothing the second time
(QUALITY.md, "Into the database: effectively once").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import (
    ID_LENGTH,
    LAYOUT_ID_LENGTH,
    closed_enum,
    new_id,
    open_enum,
    utc_field,
)

__all__ = [
    "Channel",
    "DeviceKind",
    "InteractionKind",
    "ProductView",
    "ProfileInteraction",
    "StoreVisit",
]

_PROFILE_FK = "shopper_profiles.id"
#: Facts' and online events' ``event_id`` (``vitrine.contracts.facts.make_event_id``).
EVENT_ID_LENGTH = 128


class ProductView(SQLModel, table=True):
    """A product (or variant) the shopper looked at online (Segment / GA4 / Shopify)."""

    __tablename__ = "product_views"
    __table_args__ = (sa.Index(None, "profile_id", "viewed_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    event_id: str = Field(max_length=EVENT_ID_LENGTH, unique=True)
    profile_id: str = Field(foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    #: NULL when the viewed product is not (yet) in the catalogue; ``sku`` keeps it.
    product_id: str | None = Field(
        default=None, foreign_key="products.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    variant_id: str | None = Field(
        default=None, foreign_key="variants.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    sku: str | None = Field(default=None, max_length=100)
    #: Where the view came from: ``segment``, ``ga4``, ``shopify``…
    platform: str = Field(max_length=32)
    viewed_at: datetime = utc_field()


class DeviceKind(StrEnum):
    #: The companion app, resolved to an install (and a profile if linked and consented).
    APP = "app"
    #: Anonymous footfall: only a salted, rotating hash identifies the device.
    ANONYMOUS = "anonymous"


class StoreVisit(SQLModel, table=True):
    """One device's stay in one store, from entering to leaving.

    With no consent the visit is anonymous footfall: ``profile_id`` is NULL and
    ``footfall_hash`` holds the gateway's rotating salted hash — never a raw
    device identifier (QUALITY.md, "Privacy"). A visit never has both.
    """

    __tablename__ = "store_visits"
    __table_args__ = (
        sa.CheckConstraint(
            "profile_id IS NULL OR footfall_hash IS NULL", name="identified_or_anonymous"
        ),
        sa.Index(None, "store_id", "started_at"),
        sa.Index(None, "profile_id", "started_at"),
        # Open visits of a store ("who is in the store now").
        sa.Index(None, "store_id", "ended_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    store_id: str = Field(foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE")
    profile_id: str | None = Field(
        default=None, foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE"
    )
    device_kind: DeviceKind = Field(sa_type=closed_enum(DeviceKind, "device_kind"))
    footfall_hash: str | None = Field(default=None, max_length=64)
    started_at: datetime = utc_field()
    ended_at: datetime | None = utc_field(nullable=True)
    # Zone ids as the layout named them at the time: history, so no foreign key
    # (a later layout may drop the zone; the visit stays true).
    entry_zone_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)
    last_zone_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)


class Channel(StrEnum):
    WEB = "web"
    STORE = "store"
    APP = "app"
    STAFF = "staff"


class InteractionKind(StrEnum):
    """The ROPO funnel's steps and what surrounds them. Open: features add kinds."""

    VIEWED = "viewed"
    VISITED = "visited"
    #: Guidance naming this product reached the shopper's phone (per card).
    GUIDED = "guided"
    LOCATED = "located"
    TOUCHED = "touched"
    TRIED_ON = "tried_on"
    BOUGHT = "bought"
    LEFT = "left"
    ASSISTED = "assisted"


class ProfileInteraction(SQLModel, table=True):
    """One touchpoint on the profile's omnichannel timeline."""

    __tablename__ = "profile_interactions"
    __table_args__ = (
        sa.Index(None, "profile_id", "occurred_at"),
        # The ROPO funnel per store and product.
        sa.Index(None, "store_id", "kind", "occurred_at"),
        sa.Index(None, "product_id", "kind"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    event_id: str = Field(max_length=EVENT_ID_LENGTH, unique=True)
    profile_id: str = Field(foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    channel: Channel = Field(sa_type=closed_enum(Channel, "channel"))
    kind: InteractionKind = Field(sa_type=open_enum(InteractionKind, "interaction_kind"))
    product_id: str | None = Field(
        default=None, foreign_key="products.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    variant_id: str | None = Field(
        default=None, foreign_key="variants.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    epc: str | None = Field(default=None, max_length=128)
    store_id: str | None = Field(
        default=None, foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH, ondelete="SET NULL"
    )
    visit_id: str | None = Field(
        default=None, foreign_key="store_visits.id", max_length=ID_LENGTH, ondelete="CASCADE"
    )
    occurred_at: datetime = utc_field()
    #: Small, kind-specific context (zone, rack, size…); no identifiers of the shopper.
    data: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)

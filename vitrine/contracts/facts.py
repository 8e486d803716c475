"""Store facts: what the gateway tells the server about the shop floor.

A fact is a frozen, versioned model with a ``kind`` discriminator and an
``event_id``. The gateway derives ``event_id`` deterministically from the
fact's content (:func:`make_event_id`), so a fact replayed after a gateway
restart carries the same id and the server's idempotent consumer drops it.

Shopper facts never carry a raw device address: ``device`` is either the
companion app's rotating pseudonymous token (``device_kind="app"``, see
:mod:`vitrine.contracts.app_token`) or a salted, rotating hash made by the
gateway for anonymous footfall (``device_kind="anonymous"``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from vitrine.contracts.ids import DeviceToken, Epc, EventId, GatewayId, Gtin, StoreId, ZoneId

__all__ = [
    "FACT_KINDS",
    "SCHEMA_VERSION",
    "Fact",
    "FactBase",
    "ItemArrived",
    "ItemDeparted",
    "ItemMoved",
    "ReadsLost",
    "ShopperDwelled",
    "ShopperEntered",
    "ShopperLeft",
    "ShopperZoneChanged",
    "dump_fact",
    "make_event_id",
    "parse_fact",
]

SCHEMA_VERSION = 1


def make_event_id(*parts: object) -> EventId:
    """A stable id from the parts that make a fact unique (32 hex digits)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return EventId(digest[:32])


class FactBase(BaseModel):
    # extra="ignore": a newer gateway may add fields; an older server still reads v1.
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    event_id: EventId
    store: StoreId
    gateway: GatewayId
    occurred_at: AwareDatetime


class _ItemFact(FactBase):
    epc: Epc
    #: GTIN-14 and serial when the EPC is an SGTIN; ``None`` for opaque tags.
    gtin: Gtin | None = None
    serial: str | None = None
    zone: ZoneId
    rack: str | None = None
    reader: str | None = None
    antenna: int | None = None
    rssi_dbm: float | None = None


class ItemArrived(_ItemFact):
    """An item is now seen in ``zone`` where it was not before (first sighting or return)."""

    kind: Literal["item_arrived"] = "item_arrived"


class ItemMoved(_ItemFact):
    """An item left ``from_zone`` and is now in ``zone``."""

    kind: Literal["item_moved"] = "item_moved"
    from_zone: ZoneId


class ItemDeparted(_ItemFact):
    """An item has not been seen in ``zone`` for the zone's departure delay."""

    kind: Literal["item_departed"] = "item_departed"


class _ShopperFact(FactBase):
    device: DeviceToken
    device_kind: Literal["app", "anonymous"]


class ShopperEntered(_ShopperFact):
    kind: Literal["shopper_entered"] = "shopper_entered"
    zone: ZoneId


class ShopperZoneChanged(_ShopperFact):
    kind: Literal["shopper_zone_changed"] = "shopper_zone_changed"
    from_zone: ZoneId
    zone: ZoneId


class ShopperDwelled(_ShopperFact):
    kind: Literal["shopper_dwelled"] = "shopper_dwelled"
    zone: ZoneId
    dwell_s: float


class ShopperLeft(_ShopperFact):
    kind: Literal["shopper_left"] = "shopper_left"
    last_zone: ZoneId | None = None


class ReadsLost(FactBase):
    """Input the gateway knows it missed: a reader's overflow or a sequence gap."""

    kind: Literal["reads_lost"] = "reads_lost"
    reader: str
    count: int | None = None
    reason: str
    first_at: datetime | None = None
    last_at: datetime | None = None


Fact = Annotated[
    ItemArrived
    | ItemMoved
    | ItemDeparted
    | ShopperEntered
    | ShopperZoneChanged
    | ShopperDwelled
    | ShopperLeft
    | ReadsLost,
    Field(discriminator="kind"),
]

FACT_KINDS: tuple[str, ...] = (
    "item_arrived",
    "item_moved",
    "item_departed",
    "shopper_entered",
    "shopper_zone_changed",
    "shopper_dwelled",
    "shopper_left",
    "reads_lost",
)

_FACT_ADAPTER: TypeAdapter[Fact] = TypeAdapter(Fact)


def parse_fact(data: bytes | str) -> Fact:
    """Validate a fact from its JSON bytes; raises ``pydantic.ValidationError``."""
    return _FACT_ADAPTER.validate_json(data)


def dump_fact(fact: FactBase) -> bytes:
    return fact.model_dump_json().encode()

"""Outbound events: what the server announces after a commit.

They travel on ``out/shopper/{shopper}/{kind}`` and ``out/staff/{kind}``.
Each is frozen, versioned, has a ``kind`` discriminator and an ``event_id``;
``seq`` is the per-stream sequence number given by the outbox, which lets a
phone resume from the last one it saw (QUALITY.md, "chain of custody").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from vitrine.contracts.ids import EventId, StoreId

__all__ = [
    "GuidanceCard",
    "GuidanceEvent",
    "InteractionEvent",
    "OfferEvent",
    "OutboundEvent",
    "StaffAlertEvent",
    "StaffTaskEvent",
    "VisitClosedEvent",
    "parse_outbound",
]

Moment = Literal["arrival", "zone", "fitting_room", "exit"]


class _Outbound(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    event_id: EventId
    store: StoreId
    created_at: AwareDatetime
    #: Per-stream sequence number (the shopper's stream, or the store's staff stream).
    seq: int | None = None


class GuidanceCard(BaseModel):
    """Where one product the shopper viewed online stands in this store."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    variant_id: str | None = None
    name: str
    size: str | None = None
    status: Literal["on_floor", "stockroom_only", "not_in_store"]
    zone: str | None = None
    zone_name: str | None = None
    rack: str | None = None
    count: int = 0
    seen_at: AwareDatetime | None = None
    #: For ``not_in_store``: the nearest store that has it, or ``None`` → order online.
    nearest_store: str | None = None


class GuidanceEvent(_Outbound):
    kind: Literal["guidance"] = "guidance"
    shopper: str
    visit_id: str
    moment: Moment
    cards: tuple[GuidanceCard, ...] = ()
    message: str | None = None


class OfferEvent(_Outbound):
    kind: Literal["offer"] = "offer"
    shopper: str
    visit_id: str
    moment: Moment
    offer_id: str
    title: str
    body: str


class StaffAlertEvent(_Outbound):
    kind: Literal["staff_alert"] = "staff_alert"
    alert_id: str
    visit_id: str
    #: What staff may see of the shopper: a display name or a pseudonym, never an alias.
    shopper_label: str
    tier: str | None = None
    zone: str | None = None
    cards: tuple[GuidanceCard, ...] = ()
    click_and_collect: tuple[str, ...] = ()


class StaffTaskEvent(_Outbound):
    kind: Literal["staff_task"] = "staff_task"
    task_id: str
    task: Literal["bring_to_floor", "assist", "fitting_room"]
    text: str
    zone: str | None = None
    variant_id: str | None = None
    visit_id: str | None = None


class InteractionEvent(_Outbound):
    kind: Literal["interaction"] = "interaction"
    shopper: str
    visit_id: str
    interaction: Literal["visited", "located", "tried_on", "bought", "left"]
    product_id: str | None = None
    variant_id: str | None = None


class VisitClosedEvent(_Outbound):
    kind: Literal["visit_closed"] = "visit_closed"
    shopper: str
    visit_id: str
    duration_s: float
    tried_on: int = 0
    bought: int = 0


OutboundEvent = Annotated[
    GuidanceEvent
    | OfferEvent
    | StaffAlertEvent
    | StaffTaskEvent
    | InteractionEvent
    | VisitClosedEvent,
    Field(discriminator="kind"),
]

_OUT_ADAPTER: TypeAdapter[OutboundEvent] = TypeAdapter(OutboundEvent)


def parse_outbound(data: bytes | str) -> OutboundEvent:
    return _OUT_ADAPTER.validate_json(data)

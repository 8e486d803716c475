"""What the engine decides: state changes to apply and events to announce.

The ingest applies a :class:`Decision` inside the fact's transaction: visit
rows, item rows, interactions, and outbound events into the outbox. Nothing
here names a raw device token: an anonymous visit carries only the footfall
hash the ingest computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from server.engine.context import Visit
from vitrine.contracts.events import OutboundEvent

__all__ = ["Decision", "Interaction", "ItemChange", "VisitClose", "VisitOpen"]

#: ``guided``: a product card reached the phone (analytics: guidance delivered vs acted
#: upon); recorded on the timeline only, never announced as an ``interaction`` event.
InteractionName = Literal["visited", "guided", "located", "tried_on", "bought", "left"]


@dataclass(frozen=True, slots=True)
class VisitOpen:
    """A new visit. Exactly one of ``profile_id`` (consented) and ``footfall_hash``."""

    visit_id: str
    started_at: datetime
    zone: str
    device_kind: Literal["app", "anonymous"]
    profile_id: str | None = None
    footfall_hash: str | None = None


@dataclass(frozen=True, slots=True)
class VisitClose:
    visit_id: str
    ended_at: datetime
    last_zone: str | None


@dataclass(frozen=True, slots=True)
class ItemChange:
    """The item's new place and status; ``zone=None``: no longer read anywhere."""

    epc: str
    zone: str | None
    rack: str | None
    sold: bool
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Interaction:
    """A touchpoint for the profile's timeline (only decided with ``journey_profile``)."""

    event_id: str
    profile_id: str
    visit_id: str
    kind: InteractionName
    occurred_at: datetime
    product_id: str | None = None
    variant_id: str | None = None
    epc: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything one fact changes. Empty by default: "nothing to do" is a decision."""

    visit_open: VisitOpen | None = None
    #: New per-visit state of every visit the fact touched (the device's own,
    #: or the shopper's present at a fitting room/till), zone included.
    visits: tuple[Visit, ...] = ()
    visit_close: VisitClose | None = None
    item: ItemChange | None = None
    interactions: tuple[Interaction, ...] = ()
    events: tuple[OutboundEvent, ...] = ()
    #: Why nothing happened, for logs and tests ("unknown zone", "no consent"…).
    note: str | None = None

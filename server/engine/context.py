"""What the engine knows when a fact arrives: a frozen snapshot, loaded by the ingest.

Everything here is a plain value (no session, no clock): the engine is a pure
function of ``(fact, Context, now)`` (STYLE.md, "Pure core").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vitrine.contracts.events import Moment
from vitrine.contracts.layout import ZoneType

__all__ = [
    "Consents",
    "Context",
    "EngineSettings",
    "ItemState",
    "OfferRule",
    "Presence",
    "Shopper",
    "StockLine",
    "ViewedProduct",
    "Visit",
    "ZoneInfo",
]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The engine's tuning constants; each default says why it has its value."""

    #: Online views older than this are not "what they came for": 30 days covers
    #: the usual consideration period of a fashion purchase without resurfacing
    #: last season's browsing.
    view_window: timedelta = timedelta(days=30)
    #: Cards on one arrival guidance: what fits one phone screen without scrolling.
    max_cards: int = 6
    #: Offers pushed per visit: quiet by default (PRODUCT.md, "avoid the big
    #: brother feeling") — one welcome and at most one more.
    max_offer_pushes_per_visit: int = 2
    #: Staff alerts per shopper per visit: staff need to know once that someone
    #: came in; a shopper who steps out and back in is not a new arrival.
    max_staff_alerts_per_visit: int = 1
    #: A stock reading older than this is still shown, but ranked after fresh
    #: ones: an item unread for a day may have been sold or misplaced.
    stale_after: timedelta = timedelta(hours=24)
    #: An open visit older than this is over (its exit was missed: the phone's
    #: battery died, a gateway restarted): a store's longest opening day, so a
    #: shopper back the next day gets a fresh arrival, not a "zone change".
    max_visit: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Consents:
    """The shopper's answer per purpose (ARCHITECTURE.md, "consent"); default: none."""

    guidance: bool = False
    staff_recognition: bool = False
    journey_profile: bool = False

    @property
    def any(self) -> bool:
        return self.guidance or self.staff_recognition or self.journey_profile


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    id: str
    name: str
    type: ZoneType


@dataclass(frozen=True, slots=True)
class ViewedProduct:
    """One product viewed online (the latest view of it), with the size viewed if known."""

    product_id: str
    name: str
    viewed_at: datetime
    category: str | None = None
    variant_id: str | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class StockLine:
    """In-stock items of this store of one variant at one place (zone, rack)."""

    product_id: str
    variant_id: str
    size: str | None
    zone: str
    rack: str | None
    count: int
    #: The freshest read of these items.
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class OfferRule:
    """One entry of the next-best-action library; rules are data (``server.offers``).

    Empty ``segments``/``tiers``/``categories`` mean "any". ``max_per_profile``
    caps deliveries to one profile over the library's cap window (the ingest
    counts them into :attr:`Shopper.offer_history`).
    """

    offer_id: str
    title: str
    body: str
    moments: frozenset[Moment]
    priority: int = 0
    segments: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    min_visits: int = 0
    max_per_profile: int | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Shopper:
    """An identified shopper: only built when they granted at least one purpose."""

    profile_id: str
    #: What staff may see: a display name or a pseudonym, never an alias.
    label: str
    consents: Consents
    tier: str | None = None
    known_size: str | None = None
    #: Derived segments (``first_visit``/``returning``, ``tier:<t>``…).
    segments: frozenset[str] = frozenset()
    views: tuple[ViewedProduct, ...] = ()
    click_and_collect: tuple[str, ...] = ()
    #: Closed visits of this profile before this one (any store).
    visits_before: int = 0
    #: offer id → deliveries to this profile in the cap window.
    offer_history: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Visit:
    """An open visit and the engine's per-visit memory (caps, once-only guidance)."""

    visit_id: str
    started_at: datetime
    zone: str | None
    profile_id: str | None = None
    proximity_done: frozenset[str] = frozenset()
    tasks_done: frozenset[str] = frozenset()
    offers_sent: frozenset[str] = frozenset()
    staff_alerts: int = 0
    offer_pushes: int = 0
    tried_on: int = 0
    bought: int = 0


@dataclass(frozen=True, slots=True)
class Presence:
    """An identified shopper whose open visit is in the zone an item fact concerns."""

    visit: Visit
    shopper: Shopper


@dataclass(frozen=True, slots=True)
class ItemState:
    """What the server knows of an item before the fact (``None`` fields: unknown)."""

    epc: str
    product_id: str | None = None
    variant_id: str | None = None
    sold: bool = False
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """The snapshot the engine decides on. Only what the fact's kind needs is filled in."""

    store: str
    zones: Mapping[str, ZoneInfo]
    settings: EngineSettings = EngineSettings()
    #: Shopper facts: the shopper, if identified *and* consenting to something.
    shopper: Shopper | None = None
    #: Shopper facts without an identified shopper: the keyed hash that counts
    #: the device as footfall (never the device token itself).
    footfall_hash: str | None = None
    #: The device's open visit in this store, if any.
    visit: Visit | None = None
    #: This store's in-stock items, by variant and place.
    stock: tuple[StockLine, ...] = ()
    #: (product id, size or None) → another store holding it (the nearest known).
    elsewhere: Mapping[tuple[str, str | None], str] = field(default_factory=dict)
    offers: tuple[OfferRule, ...] = ()
    #: Item facts: the item as known before the fact.
    item: ItemState | None = None
    #: Item facts: identified shoppers whose visit is in the fact's zone.
    present: tuple[Presence, ...] = ()

    def zone_type(self, zone: str | None) -> ZoneType | None:
        info = self.zones.get(zone) if zone is not None else None
        return info.type if info is not None else None

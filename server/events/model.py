"""What every online-event normaliser produces.

A storefront tracker (Segment, GA4, Shopify Web Pixels, or the retailer's own
stack through the native format) says "this shopper viewed/bought these
products". The normalisers in :mod:`server.events` turn each vendor's payload
into one :class:`NormalisedEvent`; the server later resolves ``shopper_keys``
to a profile and ``products`` to catalogue variants.

Outcomes of normalising one input event::

    NormalisedEvent   understood: a product view or a purchase
    Skipped           well formed but not something Vitrine uses (a page view)
    Rejected          malformed; carries the same reason as EventRejected

Errors::

    EventRejected(reason)   raised by the strict API (:func:`normalise`)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from vitrine.contracts.ids import EventId

__all__ = [
    "EVENT_TYPES",
    "PLATFORMS",
    "EventRejected",
    "EventType",
    "NormalisedEvent",
    "NormalisedProduct",
    "Outcome",
    "Platform",
    "Rejected",
    "Skipped",
]

Platform = Literal["segment", "ga4", "shopify", "native"]
EventType = Literal["product_viewed", "purchase"]
PLATFORMS: tuple[Platform, ...] = ("segment", "ga4", "shopify", "native")
EVENT_TYPES: tuple[EventType, ...] = ("product_viewed", "purchase")


class EventRejected(ValueError):  # noqa: N818 - the name the server API and issue 6 use
    """A payload that cannot be understood; ``reason`` says exactly what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NormalisedProduct(BaseModel):
    """One product line as the platform described it (not yet resolved to the catalogue).

    At least one of ``product_id``, ``variant_id``, ``sku`` or ``name`` is set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The online store's product id (Segment ``product_id``, GA4 ``item_id``,
    #: Shopify ``product.id`` without its ``gid://`` prefix).
    product_id: str | None = None
    #: The online store's variant id (Shopify ``productVariant.id``); Segment and GA4 have none.
    variant_id: str | None = None
    sku: str | None = None
    name: str | None = None
    #: Free text naming the variant, e.g. ``"M / Black"``; size and colour live here.
    variant: str | None = None
    price: Decimal | None = None
    quantity: int | None = None
    #: ISO 4217 code, upper-case, or ``None`` when the platform sent none.
    currency: str | None = None


class NormalisedEvent(BaseModel):
    """One online product view or purchase, whatever platform sent it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform
    event_type: EventType
    #: The platform's own id (Segment ``messageId``, Shopify event ``id``, native
    #: ``event_id``) or, when it sent none, a hash of the normalised content, so a
    #: replayed event carries the same id and is stored once.
    event_id: EventId
    #: ``namespace:value`` identifiers of the shopper, strongest (a login) first.
    shopper_keys: tuple[str, ...]
    event_time: AwareDatetime | None
    products: tuple[NormalisedProduct, ...]
    #: Purchases only: the platform's order/transaction id and the order's revenue.
    order_id: str | None = None
    revenue: Decimal | None = None
    #: Purchases only, click & collect: the store the order is to be collected
    #: in, as the platform named it (a Vitrine store id or store name), when its
    #: shipping method is a store pickup (docs/online-events.md, "Click & collect").
    pickup_store: str | None = None

    def to_json_dict(self) -> dict[str, object]:
        """The JSON shape printed by ``vitrine views parse`` (decimals as strings)."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed event Vitrine has no use for (page views, cart events, …)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A malformed event inside a batch; the others in the batch are unaffected."""

    reason: str


Outcome = NormalisedEvent | Skipped | Rejected

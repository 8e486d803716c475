"""Field coercions shared by the platform normalisers.

Every helper takes the raw JSON value and a ``where`` path (``properties.price``)
and either returns the clean value or raises :class:`EventRejected` naming the
path, so an integrator can find the offending field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from server.events.model import (
    EventRejected,
    EventType,
    NormalisedEvent,
    NormalisedProduct,
    Platform,
)
from vitrine.contracts.facts import make_event_id
from vitrine.contracts.ids import EventId

__all__ = [
    "JsonObject",
    "as_array",
    "as_object",
    "at",
    "currency",
    "decimal",
    "describe",
    "email_sha256",
    "identifier",
    "is_store_pickup",
    "make_event",
    "quantity",
    "require_product",
    "text",
    "timestamp",
    "timestamp_micros",
]

JsonObject = Mapping[str, object]

#: ISO 4217 alphabetic codes are three letters; platforms send them in either case.
_CURRENCY = re.compile(r"[A-Za-z]{3}")
#: A lower-case SHA-256 hex digest, as retailers send pre-hashed e-mails.
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Shopify's Storefront API ids, e.g. ``gid://shopify/ProductVariant/45737128657113``;
#: Web Pixels send the bare number, so the prefix is dropped to keep one spelling.
_SHOPIFY_GID = re.compile(r"gid://shopify/[A-Za-z]+/(\d+)")
#: Longest string value carried into an id or name; anything longer is a mistake
#: (the longest real ids are Shopify GIDs and GA4 client ids, well under 100).
_MAX_TEXT = 1000
#: Upper bound on a money amount: far above any retail order, and it keeps a
#: ``NUMERIC`` column and the JSON output sane when a payload sends ``1E+999999``.
_MAX_AMOUNT = Decimal(10) ** 12
#: Upper bound on a quantity: no basket holds a billion units of one product.
_MAX_QUANTITY = 10**9
#: Longest decimal string parsed: money and epoch microseconds need under 30 characters.
_MAX_NUMBER_TEXT = 64
#: ``timestamp_micros`` beyond year 9999 cannot be a datetime.
_MAX_MICROS = 253_402_300_800 * 1_000_000


def at(where: str, field: str) -> str:
    """Extend a field path: ``at("batch[2]", "properties.price")``."""
    return f"{where}.{field}" if where else field


def describe(value: object) -> str:
    """A short, log-safe rendering of a bad value for a rejection reason."""
    if isinstance(value, str):
        return repr(value[:40] + "…") if len(value) > 40 else repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "an array" if isinstance(value, list) else "an object"


def as_object(value: object, where: str) -> JsonObject:
    if not isinstance(value, Mapping):
        raise EventRejected(f"{where}: expected an object, got {describe(value)}")
    return value


def as_array(value: object, where: str) -> Sequence[object]:
    if not isinstance(value, list):
        raise EventRejected(f"{where}: expected an array, got {describe(value)}")
    return value


def text(value: object, where: str) -> str | None:
    """A free-text field: stripped; empty or absent is ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventRejected(f"{where}: expected a string, got {describe(value)}")
    value = value.strip()
    if len(value) > _MAX_TEXT:
        raise EventRejected(f"{where}: longer than {_MAX_TEXT} characters")
    return value or None


def identifier(value: object, where: str) -> str | None:
    """An id that platforms send as a string or a number (Shopify, GA4 ``item_id``)."""
    if isinstance(value, bool):
        raise EventRejected(f"{where}: expected an id, got {describe(value)}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise EventRejected(f"{where}: expected an id, got {describe(value)}")
        return str(int(value))
    found = text(value, where)
    if found is None:
        return None
    gid = _SHOPIFY_GID.fullmatch(found)
    return gid.group(1) if gid else found


def decimal(value: object, where: str) -> Decimal | None:
    """A money amount: a JSON number or a decimal string (``"49.90"``), never negative."""
    amount = _number(value, where)
    if amount is not None and amount > _MAX_AMOUNT:
        raise EventRejected(f"{where}: {describe(value)} is implausibly large")
    return amount


def _number(value: object, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventRejected(f"{where}: expected a decimal number, got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise EventRejected(f"{where}: {describe(value)} is not a finite number")
    if isinstance(value, str) and len(value) > _MAX_NUMBER_TEXT:
        raise EventRejected(f"{where}: {describe(value)} is not a decimal number")
    try:
        # str() first: Decimal(0.1) would carry the binary expansion of the float.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise EventRejected(f"{where}: {describe(value)} is not a decimal number") from None
    if not amount.is_finite():
        raise EventRejected(f"{where}: {describe(value)} is not a finite number")
    if amount < 0:
        raise EventRejected(f"{where}: {describe(value)} is negative")
    return amount


def _whole(value: object, where: str, limit: int) -> int | None:
    amount: int | Decimal | None
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    else:
        amount = _number(value, where)
    if amount is None:
        return None
    if isinstance(amount, Decimal):
        # Compare before converting: int(Decimal("1E+999999999")) would not finish.
        if amount > limit:
            raise EventRejected(f"{where}: {describe(value)} is implausibly large")
        if amount != amount.to_integral_value():
            raise EventRejected(f"{where}: {describe(value)} is not a whole number")
    whole = int(amount)
    if whole < 0:
        raise EventRejected(f"{where}: {describe(value)} is negative")
    if whole > limit:
        raise EventRejected(f"{where}: {describe(value)} is implausibly large")
    return whole


def quantity(value: object, where: str) -> int | None:
    """A whole, non-negative count; ``"2"`` and ``2.0`` are accepted (dataLayer pushes)."""
    return _whole(value, where, _MAX_QUANTITY)


def currency(value: object, where: str) -> str | None:
    """An ISO 4217 code, upper-cased (Segment's own example sends ``'usd'``)."""
    code = text(value, where)
    if code is None:
        return None
    if not _CURRENCY.fullmatch(code):
        raise EventRejected(f"{where}: {describe(value)} is not a three-letter currency code")
    return code.upper()


def timestamp(value: object, where: str, *, naive_is_utc: bool) -> datetime | None:
    """An ISO 8601 time, converted to UTC.

    Vendors document their timestamps as ISO 8601 in UTC (Segment, Shopify), so a
    missing offset there means UTC; the native format requires the offset.
    """
    raw = text(value, where)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise EventRejected(f"{where}: {describe(value)} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise EventRejected(f"{where}: {describe(value)} has no UTC offset")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise EventRejected(f"{where}: {describe(value)} is out of range") from None


def timestamp_micros(value: object, where: str) -> datetime | None:
    """GA4 Measurement Protocol ``timestamp_micros``: Unix epoch microseconds (number or string)."""
    micros = _whole(value, where, _MAX_MICROS)
    if micros is None:
        return None
    # Integer arithmetic: a float division would lose the microseconds.
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def email_sha256(value: object, where: str, *, hashed: bool) -> str | None:
    """A shopper key from an e-mail: SHA-256 of the trimmed, lower-cased address.

    The clear address is never kept; a pre-hashed value must be 64 hex digits.
    """
    raw = text(value, where)
    if raw is None:
        return None
    if hashed:
        digest = raw.lower()
        if not _SHA256.fullmatch(digest):
            raise EventRejected(f"{where}: not a SHA-256 hex digest")
        return digest
    if "@" not in raw:
        raise EventRejected(f"{where}: not an e-mail address")
    return hashlib.sha256(raw.lower().encode()).hexdigest()


def require_product(product: NormalisedProduct, where: str) -> NormalisedProduct:
    if not (product.product_id or product.variant_id or product.sku or product.name):
        raise EventRejected(f"{where}: no product id, variant id, sku or name")
    return product


#: How shipping methods say "collect it in a shop": Segment's ``shipping_method``
#: and GA4's ``shipping_tier`` are free text the retailer's checkout fills in
#: (Segment's examples: "Fedex"; Google's: "Ground", "Air"); these are the
#: usual names of buy-online-pick-up-in-store, matched case-insensitively.
_PICKUP_WORDS = re.compile(
    r"(?<![a-z])(?:pick[\s_-]?up|click[\s_]*(?:&|and|n|\+)[\s_]*collect"
    r"|collect(?:ion)?[\s_-]+in[\s_-]?store|bopis|retrait[\s_-]+en[\s_-]+magasin)(?![a-z])",
    re.IGNORECASE,
)


def is_store_pickup(method: str | None) -> bool:
    """Whether a free-text shipping method names a store pickup (click & collect)."""
    return method is not None and _PICKUP_WORDS.search(method) is not None


def make_event(
    *,
    platform: Platform,
    event_type: EventType,
    event_id: str | None,
    shopper_keys: list[str],
    event_time: datetime | None,
    products: list[NormalisedProduct],
    where: str,
    order_id: str | None = None,
    revenue: Decimal | None = None,
    pickup_store: str | None = None,
) -> NormalisedEvent:
    """Assemble the event; derive ``event_id`` from the content when the platform sent none."""
    if not products:
        raise EventRejected(f"{where}: no products")
    keys = tuple(dict.fromkeys(shopper_keys))  # de-duplicated, order kept
    content = {
        "platform": platform,
        "event_type": event_type,
        "shopper_keys": list(keys),
        "event_time": event_time.isoformat() if event_time else None,
        "products": [p.model_dump(mode="json") for p in products],
        "order_id": order_id,
        "revenue": str(revenue) if revenue is not None else None,
    }
    if pickup_store is not None:
        # Only when set: the content hash (GA4's event id) of every other event is unchanged.
        content["pickup_store"] = pickup_store
    if event_id is None:
        event_id = make_event_id(platform, json.dumps(content, sort_keys=True))
    return NormalisedEvent(
        platform=platform,
        event_type=event_type,
        event_id=EventId(event_id),
        shopper_keys=keys,
        event_time=event_time,
        products=tuple(products),
        order_id=order_id,
        revenue=revenue,
        pickup_store=pickup_store if event_type == "purchase" else None,
    )

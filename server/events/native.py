"""Vitrine's native online-event format, for retailers with their own storefront stack.

One JSON object per event (send several as a JSON array or NDJSON)::

    {
      "type": "product_viewed",              # or "purchase"
      "event_id": "web-0001",                # optional; your unique id, for idempotency
      "occurred_at": "2024-05-01T10:15:00+02:00",   # ISO 8601 with a UTC offset
      "shopper": {"user_id": "...", "anonymous_id": "...", "email_sha256": "..."},
      "currency": "EUR",                     # optional default for the products
      "products": [{"sku": "TEE-BLK-M", "product_id": "...", "variant_id": "...",
                    "name": "...", "variant": "M / Black", "price": "49.90",
                    "quantity": 1, "currency": "EUR"}],
      "order_id": "...", "revenue": "..."    # purchases only
    }

Unlike the vendor formats, unknown fields are rejected: this format is ours, so
a misspelt field is a mistake worth reporting rather than data to ignore.
The full description is in ``docs/online-events.md``.
"""

from __future__ import annotations

from server.events._fields import (
    JsonObject,
    as_array,
    as_object,
    at,
    currency,
    decimal,
    describe,
    email_sha256,
    identifier,
    make_event,
    quantity,
    require_product,
    text,
    timestamp,
)
from server.events.model import EventRejected, EventType, NormalisedEvent, NormalisedProduct

__all__ = ["NATIVE_TYPES", "looks_like_native", "parse_native"]

NATIVE_TYPES: tuple[EventType, ...] = ("product_viewed", "purchase")
_EVENT_FIELDS = frozenset(
    {"type", "event_id", "occurred_at", "shopper", "currency", "products", "order_id", "revenue"}
)
_SHOPPER_FIELDS = frozenset({"user_id", "anonymous_id", "email", "email_sha256"})
_PRODUCT_FIELDS = frozenset(NormalisedProduct.model_fields)


def looks_like_native(obj: JsonObject) -> bool:
    return obj.get("type") in NATIVE_TYPES or "shopper" in obj or "occurred_at" in obj


def parse_native(obj: JsonObject, where: str) -> list[NormalisedEvent]:
    _known(obj, _EVENT_FIELDS, where)
    kind = obj.get("type")
    if kind == "product_viewed":
        event_type: EventType = "product_viewed"
    elif kind == "purchase":
        event_type = "purchase"
    else:
        raise EventRejected(
            f"{at(where, 'type')}: {describe(kind)} is not 'product_viewed' or 'purchase'"
        )
    occurred_at = timestamp(obj.get("occurred_at"), at(where, "occurred_at"), naive_is_utc=False)
    if occurred_at is None:
        raise EventRejected(f"{at(where, 'occurred_at')}: missing")

    shopper_where = at(where, "shopper")
    shopper = as_object(obj.get("shopper"), shopper_where)
    _known(shopper, _SHOPPER_FIELDS, shopper_where)
    keys = []
    user_id = identifier(shopper.get("user_id"), at(shopper_where, "user_id"))
    if user_id:
        keys.append(f"user_id:{user_id}")
    for digest in (
        email_sha256(shopper.get("email_sha256"), at(shopper_where, "email_sha256"), hashed=True),
        email_sha256(shopper.get("email"), at(shopper_where, "email"), hashed=False),
    ):
        if digest:
            keys.append(f"email_sha256:{digest}")
    anonymous_id = identifier(shopper.get("anonymous_id"), at(shopper_where, "anonymous_id"))
    if anonymous_id:
        keys.append(f"anonymous_id:{anonymous_id}")
    if not keys:
        raise EventRejected(f"{shopper_where}: no user_id, anonymous_id, email or email_sha256")

    default_currency = currency(obj.get("currency"), at(where, "currency"))
    products_where = at(where, "products")
    products = []
    for i, raw in enumerate(as_array(obj.get("products"), products_where)):
        line_where = f"{products_where}[{i}]"
        line = as_object(raw, line_where)
        _known(line, _PRODUCT_FIELDS, line_where)
        products.append(
            require_product(
                NormalisedProduct(
                    product_id=identifier(line.get("product_id"), at(line_where, "product_id")),
                    variant_id=identifier(line.get("variant_id"), at(line_where, "variant_id")),
                    sku=identifier(line.get("sku"), at(line_where, "sku")),
                    name=text(line.get("name"), at(line_where, "name")),
                    variant=text(line.get("variant"), at(line_where, "variant")),
                    price=decimal(line.get("price"), at(line_where, "price")),
                    quantity=quantity(line.get("quantity"), at(line_where, "quantity")),
                    currency=currency(line.get("currency"), at(line_where, "currency"))
                    or default_currency,
                ),
                line_where,
            )
        )

    order_id = identifier(obj.get("order_id"), at(where, "order_id"))
    revenue = decimal(obj.get("revenue"), at(where, "revenue"))
    if event_type == "product_viewed" and (order_id is not None or revenue is not None):
        raise EventRejected(f"{where or 'event'}: order_id/revenue only belong to a purchase")
    return [
        make_event(
            platform="native",
            event_type=event_type,
            event_id=identifier(obj.get("event_id"), at(where, "event_id")),
            shopper_keys=keys,
            event_time=occurred_at,
            products=products,
            where=products_where,
            order_id=order_id,
            revenue=revenue,
        )
    ]


def _known(obj: JsonObject, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise EventRejected(f"{where or 'event'}: unknown field {describe(unknown[0])}")

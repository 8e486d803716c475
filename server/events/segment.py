"""Segment ``track`` calls: "Product Viewed" and "Order Completed".

Built to Segment's public docs (``segmentio/segment-docs``):

- the Track spec (``src/connections/spec/track.md``) and common fields: ``type``,
  ``event``, ``properties``, ``userId`` / ``anonymousId`` (one is required),
  ``messageId``, ``timestamp``, ``originalTimestamp``, ``sentAt``;
- the HTTP Tracking API batch envelope ``{"batch": [...]}``;
- the V2 Ecommerce spec (``src/connections/spec/ecommerce/v2.md``): "Product
  Viewed" carries one product's ``product_id, sku, name, variant, price,
  quantity, currency`` at the top of ``properties`` (the spec's own example sends
  ``currency: 'usd'``); "Order Completed" carries ``order_id``, ``revenue`` /
  ``total`` / ``value``, ``currency`` and ``products[]``. The v1 names "Viewed
  Product" and "Completed Order" are the documented aliases. Click & collect:
  ``shipping_method`` (the spec's "Checkout Step Viewed/Completed" property,
  which checkouts carry on to the order) naming a store pickup, and
  ``affiliation`` naming the store.
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
    identifier,
    is_store_pickup,
    make_event,
    quantity,
    require_product,
    text,
    timestamp,
)
from server.events.model import (
    EventRejected,
    EventType,
    NormalisedEvent,
    NormalisedProduct,
    Skipped,
)

__all__ = ["looks_like_segment", "parse_segment"]

_VIEW_EVENTS = frozenset({"Product Viewed", "Viewed Product"})
_PURCHASE_EVENTS = frozenset({"Order Completed", "Completed Order"})
#: Segment's other call types: well formed, nothing to do with products.
_OTHER_CALLS = frozenset({"page", "screen", "identify", "group", "alias"})


def looks_like_segment(obj: JsonObject) -> bool:
    """A Segment message or batch, told apart from the native ``type`` values."""
    if "batch" in obj:
        return True
    kind = obj.get("type")
    if not (kind is None or isinstance(kind, str)):
        return False
    if kind == "track" or kind in _OTHER_CALLS:
        return True
    # The single-call HTTP endpoint (/v1/track) takes a body without ``type``.
    return kind is None and "properties" in obj and ("userId" in obj or "anonymousId" in obj)


def parse_segment(obj: JsonObject, where: str) -> list[NormalisedEvent | Skipped]:
    """One Segment message; a ``{"batch": [...]}`` envelope is split by the caller."""
    kind = obj.get("type", "track")
    if isinstance(kind, str) and kind in _OTHER_CALLS:
        return [Skipped(f"{where or 'event'}: Segment {kind} call")]
    if kind != "track":
        raise EventRejected(f"{at(where, 'type')}: {describe(kind)} is not a Segment call type")
    name = text(obj.get("event"), at(where, "event"))
    if name is None:
        raise EventRejected(f"{at(where, 'event')}: missing track event name")
    event_type: EventType
    if name in _VIEW_EVENTS:
        event_type = "product_viewed"
    elif name in _PURCHASE_EVENTS:
        event_type = "purchase"
    else:
        return [
            Skipped(f"{where or 'event'}: Segment track {name!r} is not a product view or purchase")
        ]

    keys: list[str] = []
    user_id = identifier(obj.get("userId"), at(where, "userId"))
    anonymous_id = identifier(obj.get("anonymousId"), at(where, "anonymousId"))
    if user_id:
        keys.append(f"userId:{user_id}")
    if anonymous_id:
        keys.append(f"anonymousId:{anonymous_id}")
    if not keys:
        raise EventRejected(f"{where or 'event'}: neither userId nor anonymousId")

    event_time = None
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        event_time = timestamp(obj.get(field), at(where, field), naive_is_utc=True)
        if event_time is not None:
            break

    props_where = at(where, "properties")
    props = as_object(obj.get("properties", {}), props_where)
    default_currency = currency(props.get("currency"), at(props_where, "currency"))
    pickup_store = None
    if event_type == "product_viewed":
        products = [_product(props, props_where, default_currency)]
        order_id = None
        revenue = None
    else:
        # Click & collect: the V2 spec's checkout ``shipping_method``, carried on the
        # order, names a store pickup; ``affiliation`` ("store or affiliation from
        # which this transaction occurred") names the store.
        method = text(props.get("shipping_method"), at(props_where, "shipping_method"))
        if is_store_pickup(method):
            pickup_store = text(props.get("affiliation"), at(props_where, "affiliation"))
        lines_where = at(props_where, "products")
        lines = as_array(props.get("products", []), lines_where)
        products = [
            _product(
                as_object(line, f"{lines_where}[{i}]"), f"{lines_where}[{i}]", default_currency
            )
            for i, line in enumerate(lines)
        ]
        order_id = identifier(props.get("order_id"), at(props_where, "order_id"))
        revenue = None
        for field in ("revenue", "total", "value"):
            revenue = decimal(props.get(field), at(props_where, field))
            if revenue is not None:
                break

    return [
        make_event(
            platform="segment",
            event_type=event_type,
            event_id=identifier(obj.get("messageId"), at(where, "messageId")),
            shopper_keys=keys,
            event_time=event_time,
            products=products,
            where=where or "event",
            order_id=order_id,
            revenue=revenue,
            pickup_store=pickup_store,
        )
    ]


def _product(props: JsonObject, where: str, default_currency: str | None) -> NormalisedProduct:
    return require_product(
        NormalisedProduct(
            product_id=identifier(props.get("product_id"), at(where, "product_id")),
            sku=identifier(props.get("sku"), at(where, "sku")),
            name=text(props.get("name"), at(where, "name")),
            variant=text(props.get("variant"), at(where, "variant")),
            price=decimal(props.get("price"), at(where, "price")),
            quantity=quantity(props.get("quantity"), at(where, "quantity")),
            currency=currency(props.get("currency"), at(where, "currency")) or default_currency,
        ),
        where,
    )

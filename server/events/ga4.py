"""Google Analytics 4 ``view_item`` and ``purchase``, in the three shapes they travel in.

Built to Google's public references:

- GA4 event reference (developers.google.com/analytics/devguides/collection/ga4/
  reference/events): ``view_item`` params ``currency, value, items[]``;
  ``purchase`` params ``transaction_id, value, currency, items[]``; each item has
  ``item_id`` or ``item_name`` (one is required) and optionally ``item_variant,
  price, quantity`` among others. Click & collect: ``shipping_tier`` (documented
  on ``add_shipping_info``; checkouts carry it on to the purchase) naming a
  store pickup, the store in the items' ``location_id`` or ``affiliation``.
- gtag.js: ``gtag("event", "view_item", {...})``, given here as the JSON array
  ``["event", "view_item", {...}]``.
- Google Tag Manager dataLayer pushes: ``{"event": "view_item", "ecommerce":
  {...}}`` — real stores send ``price`` and ``quantity`` as strings and may
  omit ``currency`` (WIRE-FORMATS §7); ``{"ecommerce": null}`` is the documented
  "clear the previous ecommerce object" push.
- Measurement Protocol (developers.google.com/analytics/devguides/collection/
  protocol/ga4/sending-events): ``{client_id | app_instance_id, user_id?,
  timestamp_micros?, events: [{name, params, timestamp_micros?}]}``.

Browser-side shapes carry no shopper id of their own; a forwarder may add
``client_id`` / ``user_id`` beside ``event`` (dataLayer) or in the params (gtag).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from server.events._fields import (
    JsonObject,
    as_array,
    as_object,
    at,
    currency,
    decimal,
    identifier,
    is_store_pickup,
    make_event,
    quantity,
    require_product,
    text,
    timestamp_micros,
)
from server.events.model import (
    EventRejected,
    EventType,
    NormalisedEvent,
    NormalisedProduct,
    Outcome,
    Rejected,
    Skipped,
)

__all__ = ["is_gtag_command", "looks_like_ga4", "parse_ga4", "parse_gtag"]

_EVENT_TYPES: dict[str, EventType] = {"view_item": "product_viewed", "purchase": "purchase"}


def is_gtag_command(value: Sequence[object]) -> bool:
    """``["event", name, params?]`` — the arguments of a ``gtag()`` call."""
    return len(value) in (2, 3) and value[0] == "event" and isinstance(value[1], str)


def looks_like_ga4(obj: JsonObject) -> bool:
    if isinstance(obj.get("events"), list):
        return True  # Measurement Protocol body
    if "name" in obj and "params" in obj:
        return True  # one Measurement Protocol event
    if "event" in obj and "properties" not in obj and "type" not in obj:
        return True  # dataLayer push
    return set(obj) == {"ecommerce"}  # dataLayer "clear ecommerce" push


def parse_ga4(obj: JsonObject, where: str) -> list[Outcome]:
    """A Measurement Protocol body, one MP event, or a dataLayer push."""
    if "events" in obj:
        return _measurement_protocol(obj, where)
    if "name" in obj:
        keys = _keys(obj.get("user_id"), obj.get("client_id"), None, where)
        return [_event(obj.get("name"), obj.get("params", {}), keys, None, where, "params")]
    if "event" not in obj:
        if set(obj) == {"ecommerce"}:
            return [Skipped(f"{where or 'event'}: GA4 dataLayer ecommerce reset")]
        raise EventRejected(f"{where or 'event'}: not a GA4 event (no name, event or events)")
    keys = _keys(obj.get("user_id"), obj.get("client_id"), None, where)
    return [_event(obj.get("event"), obj.get("ecommerce", {}), keys, None, where, "ecommerce")]


def parse_gtag(command: Sequence[object], where: str) -> list[Outcome]:
    """``["event", "view_item", {...}]`` as gtag.js receives it."""
    params = as_object(command[2], f"{where}[2]") if len(command) == 3 else {}
    keys = _keys(params.get("user_id"), params.get("client_id"), None, f"{where}[2]")
    return [_event(command[1], params, keys, None, where, "[2]")]


def _measurement_protocol(obj: JsonObject, where: str) -> list[Outcome]:
    keys = _keys(obj.get("user_id"), obj.get("client_id"), obj.get("app_instance_id"), where)
    if not keys:
        # The MP docs make client_id (web) or app_instance_id (app) mandatory.
        raise EventRejected(f"{where or 'event'}: Measurement Protocol body without client_id")
    body_time = timestamp_micros(obj.get("timestamp_micros"), at(where, "timestamp_micros"))
    outcomes: list[Outcome] = []
    events_where = at(where, "events")
    for i, raw in enumerate(as_array(obj["events"], events_where)):
        item_where = f"{events_where}[{i}]"
        try:
            event = as_object(raw, item_where)
            own_time = timestamp_micros(
                event.get("timestamp_micros"), at(item_where, "timestamp_micros")
            )
            outcomes.append(
                _event(
                    event.get("name"),
                    event.get("params", {}),
                    keys,
                    own_time or body_time,
                    item_where,
                    "params",
                )
            )
        except EventRejected as error:
            outcomes.append(Rejected(error.reason))
    return outcomes


def _keys(user_id: object, client_id: object, app_instance_id: object, where: str) -> list[str]:
    keys = []
    for name, raw in (
        ("user_id", user_id),
        ("client_id", client_id),
        ("app_instance_id", app_instance_id),
    ):
        value = identifier(raw, at(where, name))
        if value:
            keys.append(f"{name}:{value}")
    return keys


def _event(
    raw_name: object,
    raw_params: object,
    keys: list[str],
    event_time: datetime | None,
    where: str,
    params_field: str,
) -> NormalisedEvent | Skipped:
    name = text(raw_name, at(where, "name"))
    if name is None:
        raise EventRejected(f"{at(where, 'name')}: missing event name")
    event_type = _EVENT_TYPES.get(name)
    if event_type is None:
        return Skipped(f"{where or 'event'}: GA4 event {name!r} is not a product view or purchase")
    params_where = (
        f"{where}{params_field}" if params_field.startswith("[") else at(where, params_field)
    )
    params = as_object(raw_params if raw_params is not None else {}, params_where)
    event_currency = currency(params.get("currency"), at(params_where, "currency"))
    items_where = at(params_where, "items")
    items = as_array(params.get("items", []), items_where)
    products = [
        _item(as_object(item, f"{items_where}[{i}]"), f"{items_where}[{i}]", event_currency)
        for i, item in enumerate(items)
    ]
    order_id = None
    revenue = None
    pickup_store = None
    if event_type == "purchase":
        order_id = identifier(params.get("transaction_id"), at(params_where, "transaction_id"))
        if order_id is None:
            raise EventRejected(f"{at(params_where, 'transaction_id')}: missing (required)")
        revenue = decimal(params.get("value"), at(params_where, "value"))
        pickup_store = _pickup_store(params, items, params_where, items_where)
    return make_event(
        platform="ga4",
        event_type=event_type,
        event_id=None,  # GA4 has no event id; the content hash makes replays idempotent
        shopper_keys=keys,
        event_time=event_time,
        products=products,
        where=items_where,
        order_id=order_id,
        revenue=revenue,
        pickup_store=pickup_store,
    )


def _pickup_store(
    params: JsonObject, items: Sequence[object], params_where: str, items_where: str
) -> str | None:
    """Click & collect: ``shipping_tier`` (``add_shipping_info``'s parameter, carried
    on the purchase) names a store pickup; the store is the items' ``location_id``
    ("the physical store location") or else ``affiliation`` ("a brick and mortar
    store location")."""
    tier = text(params.get("shipping_tier"), at(params_where, "shipping_tier"))
    if not is_store_pickup(tier):
        return None
    for i, item in enumerate(items):
        if isinstance(item, dict):
            where = f"{items_where}[{i}]"
            location = identifier(item.get("location_id"), at(where, "location_id"))
            if location:
                return location
    return text(params.get("affiliation"), at(params_where, "affiliation"))


def _item(item: JsonObject, where: str, event_currency: str | None) -> NormalisedProduct:
    product = NormalisedProduct(
        product_id=identifier(item.get("item_id"), at(where, "item_id")),
        name=text(item.get("item_name"), at(where, "item_name")),
        variant=text(item.get("item_variant"), at(where, "item_variant")),
        price=decimal(item.get("price"), at(where, "price")),
        quantity=quantity(item.get("quantity"), at(where, "quantity")),
        currency=event_currency,
    )
    if not (product.product_id or product.name):
        raise EventRejected(f"{where}: neither item_id nor item_name")
    return require_product(product, where)

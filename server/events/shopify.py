"""Shopify Web Pixels ``product_viewed`` and ``checkout_completed``.

Built to Shopify's Web Pixels API standard events
(shopify.dev/docs/api/web-pixels-api/standard-events) and the ``pixels.d.ts``
types Shopify publishes with Checkout Kit:

- every event: ``id`` (the customer-event id), ``name``, ``clientId`` (Shopify's
  client-side shopper id), ``timestamp`` (ISO 8601), ``data``, ``context``, ``seq``;
- ``product_viewed``: ``data.productVariant{id, sku, title, price{amount,
  currencyCode}, product{id, title, vendor, type, url}}`` — ids are numeric
  strings (WIRE-FORMATS §7, captured from a test store);
- ``checkout_completed``: ``data.checkout{currencyCode, email, totalPrice{amount},
  order{id, customer{id}}, lineItems[]{quantity, title, variant{id, sku, title,
  price, product{id, title}}}, delivery{selectedDeliveryOptions[]{type, title}}}``;
  a selected option of ``type: "pickup"`` is click & collect at the location
  its ``title`` names (the "More data in web pixels" changelog, June 2024).

The logged-in customer's id is not in the event itself: a pixel reads it from
``init.data.customer`` and a forwarder adds it as ``customer.id`` beside
``data`` (or inside ``data``); Checkout also carries ``order.customer.id``.
Shopify names a variant-less product's only variant "Default Title"; that
title says nothing about size or colour, so it becomes ``variant: null``.
"""

from __future__ import annotations

from server.events._fields import (
    JsonObject,
    as_array,
    as_object,
    at,
    currency,
    decimal,
    email_sha256,
    identifier,
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

__all__ = ["looks_like_shopify", "parse_shopify"]

_EVENT_TYPES: dict[str, EventType] = {
    "product_viewed": "product_viewed",
    "checkout_completed": "purchase",
}
#: Shopify's title for the single variant of a product without options.
_DEFAULT_VARIANT_TITLE = "Default Title"


def looks_like_shopify(obj: JsonObject) -> bool:
    return "clientId" in obj or ("name" in obj and "data" in obj)


def parse_shopify(obj: JsonObject, where: str) -> list[NormalisedEvent | Skipped]:
    name = text(obj.get("name"), at(where, "name"))
    if name is None:
        raise EventRejected(f"{at(where, 'name')}: missing event name")
    event_type = _EVENT_TYPES.get(name)
    if event_type is None:
        return [Skipped(f"{where or 'event'}: Shopify {name!r} is not a product view or purchase")]
    data_where = at(where, "data")
    data = as_object(obj.get("data"), data_where)

    customer_ids: list[object] = []
    for holder, holder_where in ((obj, where), (data, data_where)):
        if "customer" in holder and holder["customer"] is not None:
            customer = as_object(holder["customer"], at(holder_where, "customer"))
            customer_ids.append(identifier(customer.get("id"), at(holder_where, "customer.id")))

    order_id = None
    revenue = None
    email_key = None
    pickup_store = None
    if event_type == "product_viewed":
        variant_where = at(data_where, "productVariant")
        variant = as_object(data.get("productVariant"), variant_where)
        products = [_variant(variant, variant_where, quantity_value=None, line_title=None)]
    else:
        checkout_where = at(data_where, "checkout")
        checkout = as_object(data.get("checkout"), checkout_where)
        checkout_currency = currency(
            checkout.get("currencyCode"), at(checkout_where, "currencyCode")
        )
        lines_where = at(checkout_where, "lineItems")
        products = []
        for i, raw in enumerate(as_array(checkout.get("lineItems", []), lines_where)):
            line_where = f"{lines_where}[{i}]"
            line = as_object(raw, line_where)
            product = _variant(
                as_object(line.get("variant"), at(line_where, "variant")),
                at(line_where, "variant"),
                quantity_value=quantity(line.get("quantity"), at(line_where, "quantity")),
                line_title=text(line.get("title"), at(line_where, "title")),
            )
            if product.currency is None and checkout_currency is not None:
                product = product.model_copy(update={"currency": checkout_currency})
            products.append(product)
        if checkout.get("order") is not None:
            order_where = at(checkout_where, "order")
            order = as_object(checkout["order"], order_where)
            order_id = identifier(order.get("id"), at(order_where, "id"))
            if order.get("customer") is not None:
                customer = as_object(order["customer"], at(order_where, "customer"))
                customer_ids.append(identifier(customer.get("id"), at(order_where, "customer.id")))
        if checkout.get("totalPrice") is not None:
            total = as_object(checkout["totalPrice"], at(checkout_where, "totalPrice"))
            revenue = decimal(total.get("amount"), at(checkout_where, "totalPrice.amount"))
        email_key = email_sha256(checkout.get("email"), at(checkout_where, "email"), hashed=False)
        pickup_store = _pickup_location(checkout, checkout_where)

    keys = [f"shopify_customer_id:{c}" for c in customer_ids if c]
    if email_key:
        keys.append(f"email_sha256:{email_key}")
    client_id = identifier(obj.get("clientId"), at(where, "clientId"))
    if client_id:
        keys.append(f"shopify_client_id:{client_id}")

    return [
        make_event(
            platform="shopify",
            event_type=event_type,
            event_id=identifier(obj.get("id"), at(where, "id")),
            shopper_keys=keys,
            event_time=timestamp(obj.get("timestamp"), at(where, "timestamp"), naive_is_utc=True),
            products=products,
            where=where or "event",
            order_id=order_id,
            revenue=revenue,
            pickup_store=pickup_store,
        )
    ]


def _pickup_location(checkout: JsonObject, where: str) -> str | None:
    """The location of a ``"pickup"`` delivery option (its ``title``), if one was chosen.

    ``checkout.delivery.selectedDeliveryOptions[]{type, title, handle, description,
    cost}``; ``type`` is ``"pickup"`` (the shop's own location: click & collect),
    ``"pickupPoint"`` (a carrier's point, not a shop), ``"shipping"`` or ``"local"``.
    """
    if checkout.get("delivery") is None:
        return None
    delivery_where = at(where, "delivery")
    delivery = as_object(checkout["delivery"], delivery_where)
    options_where = at(delivery_where, "selectedDeliveryOptions")
    for i, raw in enumerate(as_array(delivery.get("selectedDeliveryOptions") or [], options_where)):
        option_where = f"{options_where}[{i}]"
        option = as_object(raw, option_where)
        if text(option.get("type"), at(option_where, "type")) == "pickup":
            title = text(option.get("title"), at(option_where, "title"))
            if title:
                return title
    return None


def _variant(
    variant: JsonObject, where: str, *, quantity_value: int | None, line_title: str | None
) -> NormalisedProduct:
    product: JsonObject = {}
    if variant.get("product") is not None:
        product = as_object(variant["product"], at(where, "product"))
    amount = None
    code = None
    if variant.get("price") is not None:
        price = as_object(variant["price"], at(where, "price"))
        amount = decimal(price.get("amount"), at(where, "price.amount"))
        code = currency(price.get("currencyCode"), at(where, "price.currencyCode"))
    title = text(variant.get("title"), at(where, "title"))
    return require_product(
        NormalisedProduct(
            product_id=identifier(product.get("id"), at(where, "product.id")),
            variant_id=identifier(variant.get("id"), at(where, "id")),
            sku=text(variant.get("sku"), at(where, "sku")),
            name=text(product.get("title"), at(where, "product.title")) or line_title,
            variant=None if title == _DEFAULT_VARIANT_TITLE else title,
            price=amount,
            quantity=quantity_value,
            currency=code,
        ),
        where,
    )

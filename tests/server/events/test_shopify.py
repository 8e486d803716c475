"""Shopify Web Pixels product_viewed / checkout_completed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.events import EventRejected, NormalisedProduct, Skipped, normalise, normalise_each
from tests.server.events.payloads import (
    SHOPIFY_CHECKOUT_COMPLETED,
    SHOPIFY_PAGE_VIEWED,
    SHOPIFY_PRODUCT_VIEWED,
    clone,
)


def test_product_viewed_as_captured_on_a_test_store() -> None:
    [event] = normalise(SHOPIFY_PRODUCT_VIEWED)

    assert event.platform == "shopify"
    assert event.event_type == "product_viewed"
    assert event.event_id == "sh-test-event-0001"
    assert event.shopper_keys == ("shopify_client_id:test-shopify-client-0001",)
    assert event.event_time == datetime(2023, 11, 8, 8, 30, tzinfo=UTC)
    assert event.products == (
        NormalisedProduct(
            product_id="8950526378201",
            variant_id="45737128657113",
            name="apple",
            variant="单一产地",
            price=Decimal(0),
            currency="CNY",
        ),
    )


def test_a_forwarded_customer_id_comes_first() -> None:
    payload = clone(SHOPIFY_PRODUCT_VIEWED) | {"customer": {"id": "7700000000001"}}
    assert normalise(payload)[0].shopper_keys == (
        "shopify_customer_id:7700000000001",
        "shopify_client_id:test-shopify-client-0001",
    )


def test_checkout_completed_is_a_purchase() -> None:
    [event] = normalise(SHOPIFY_CHECKOUT_COMPLETED, "shopify")

    assert event.event_type == "purchase"
    assert event.order_id == "5500000000001"
    assert event.revenue == Decimal("109.8")
    email_hash = hashlib.sha256(b"shopper@example.com").hexdigest()
    assert event.shopper_keys == (
        "shopify_customer_id:7700000000001",
        f"email_sha256:{email_hash}",
        "shopify_client_id:test-shopify-client-0001",
    )
    assert event.products == (
        NormalisedProduct(
            product_id="8950526370001",
            variant_id="45737128650001",  # gid://shopify/ProductVariant/ prefix dropped
            sku="TEE-BLK-M",
            name="Basic tee",
            variant="M / Black",
            price=Decimal("49.9"),
            quantity=2,
            currency="EUR",
        ),
        NormalisedProduct(
            product_id="8950526370002",
            variant_id="45737128650002",
            sku="TOTE",
            name="Tote bag",
            variant=None,  # "Default Title" names no size or colour
            price=Decimal(10),
            quantity=1,
            currency="EUR",  # from checkout.currencyCode
        ),
    )
    assert "Example.com" not in event.model_dump_json()


def test_page_viewed_is_skipped() -> None:
    assert normalise_each(SHOPIFY_PAGE_VIEWED) == [
        Skipped("event: Shopify 'page_viewed' is not a product view or purchase")
    ]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("data",), None, "data: expected an object, got null"),
        (
            ("data", "productVariant", "price", "amount"),
            "free",
            "data.productVariant.price.amount: 'free' is not a decimal number",
        ),
        (
            ("data", "productVariant"),
            {"price": {"amount": 1}},
            "data.productVariant: no product id, variant id, sku or name",
        ),
        (("timestamp",), 1699432200, "timestamp: expected a string, got 1699432200"),
        (("name",), None, "name: missing event name"),
    ],
)
def test_malformed_pixels_are_rejected(path: tuple[str, ...], value: object, reason: str) -> None:
    payload = clone(SHOPIFY_PRODUCT_VIEWED)
    holder = payload
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    with pytest.raises(EventRejected) as caught:
        normalise(payload, "shopify")
    assert caught.value.reason == reason


def test_a_bad_checkout_email_is_rejected_without_echoing_it() -> None:
    payload = clone(SHOPIFY_CHECKOUT_COMPLETED)
    payload["data"]["checkout"]["email"] = "not-an-address"
    with pytest.raises(EventRejected) as caught:
        normalise(payload)
    assert caught.value.reason == "data.checkout.email: not an e-mail address"

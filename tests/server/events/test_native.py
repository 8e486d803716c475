"""Vitrine's native format (docs/online-events.md)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.events import EventRejected, NormalisedProduct, normalise
from tests.server.events.payloads import NATIVE_PRODUCT_VIEWED, NATIVE_PURCHASE, clone


def test_product_viewed() -> None:
    [event] = normalise(NATIVE_PRODUCT_VIEWED, "native")

    assert event.platform == "native"
    assert event.event_id == "web-test-0001"
    assert event.shopper_keys == ("user_id:test-user-0001", "anonymous_id:test-anon-0001")
    assert event.event_time == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
    assert event.products == (
        NormalisedProduct(
            sku="TEE-BLK-M", variant="M / Black", price=Decimal("49.90"), currency="EUR"
        ),
    )


def test_purchase_hashes_a_clear_email() -> None:
    [event] = normalise(NATIVE_PURCHASE)
    digest = hashlib.sha256(b"shopper@example.com").hexdigest()
    assert event.shopper_keys == (f"email_sha256:{digest}",)
    assert (event.order_id, event.revenue) == ("WEB-TEST-1", Decimal("49.90"))
    assert len(event.event_id) == 32  # no event_id sent: content hash


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "page_viewed"}, "type: 'page_viewed' is not 'product_viewed' or 'purchase'"),
        (
            {"occurred_at": "2024-05-01T10:15:00"},
            "occurred_at: '2024-05-01T10:15:00' has no UTC offset",
        ),
        ({"occurred_at": None}, "occurred_at: missing"),
        ({"shopper": {}}, "shopper: no user_id, anonymous_id, email or email_sha256"),
        ({"shopper": {"userid": "x"}}, "shopper: unknown field 'userid'"),
        ({"shopper": {"email_sha256": "abc"}}, "shopper.email_sha256: not a SHA-256 hex digest"),
        ({"colour": "black"}, "event: unknown field 'colour'"),
        ({"products": [{"skuu": "A"}]}, "products[0]: unknown field 'skuu'"),
        ({"products": None}, "products: expected an array, got null"),
        ({"order_id": "1"}, "event: order_id/revenue only belong to a purchase"),
        (
            {"products": [{"sku": "A", "price": 1e13}]},
            "products[0].price: 10000000000000.0 is implausibly large",
        ),
    ],
)
def test_malformed_native_events_are_rejected(change: dict[str, object], reason: str) -> None:
    with pytest.raises(EventRejected) as caught:
        normalise(clone(NATIVE_PRODUCT_VIEWED) | change)
    assert caught.value.reason == reason

"""Segment "Product Viewed" / "Order Completed", built to segment-docs' examples."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.events import (
    EventRejected,
    NormalisedProduct,
    Rejected,
    Skipped,
    normalise,
    normalise_each,
)
from tests.server.events.payloads import (
    SEGMENT_ORDER_COMPLETED,
    SEGMENT_PAGE_VIEWED,
    SEGMENT_PRODUCT_VIEWED,
    clone,
)


def test_product_viewed_from_the_spec_example() -> None:
    [event] = normalise(SEGMENT_PRODUCT_VIEWED, "segment")

    assert event.platform == "segment"
    assert event.event_type == "product_viewed"
    assert event.event_id == "ajs-test-message-0001"
    assert event.shopper_keys == ("userId:test-user-0001", "anonymousId:test-anon-0001")
    assert event.event_time == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
    assert event.products == (
        NormalisedProduct(
            product_id="507f1f77bcf86cd799439011",
            sku="G-32",
            name="Monopoly: 3rd Edition",
            variant="200 pieces",
            price=Decimal("18.99"),
            quantity=1,
            currency="USD",  # the spec example sends 'usd'
        ),
    )
    assert event.order_id is None


def test_order_completed_is_a_purchase_with_every_line() -> None:
    [event] = normalise(SEGMENT_ORDER_COMPLETED)

    assert event.event_type == "purchase"
    assert event.order_id == "50314b8e9bcf000000000000"
    assert event.revenue == Decimal("25.0")  # revenue wins over total and value
    assert [(p.sku, p.price, p.quantity, p.currency) for p in event.products] == [
        ("45790-32", Decimal(19), 1, "USD"),
        ("46493-32", Decimal(3), 2, "USD"),
    ]
    assert event.shopper_keys == ("anonymousId:test-anon-0002",)


def test_time_falls_back_to_original_timestamp_then_sent_at() -> None:
    payload = clone(SEGMENT_PRODUCT_VIEWED)
    del payload["timestamp"]
    assert normalise(payload)[0].event_time == datetime(2024, 5, 1, 10, 14, 59, tzinfo=UTC)
    del payload["originalTimestamp"]
    assert normalise(payload)[0].event_time == datetime(2024, 5, 1, 10, 15, 1, tzinfo=UTC)
    del payload["sentAt"]
    assert normalise(payload)[0].event_time is None


def test_batch_envelope_keeps_order_and_isolates_a_bad_message() -> None:
    bad = clone(SEGMENT_PRODUCT_VIEWED)
    bad["properties"]["price"] = "$18.99"
    outcomes = normalise_each(
        {"batch": [SEGMENT_PRODUCT_VIEWED, SEGMENT_PAGE_VIEWED, bad, SEGMENT_ORDER_COMPLETED]}
    )

    assert [type(o).__name__ for o in outcomes] == [
        "NormalisedEvent",
        "Skipped",
        "Rejected",
        "NormalisedEvent",
    ]
    assert outcomes[1] == Skipped(
        "batch[1]: Segment track 'Page Viewed' is not a product view or purchase"
    )
    assert outcomes[2] == Rejected("batch[2].properties.price: '$18.99' is not a decimal number")


def test_other_call_types_are_skipped() -> None:
    outcomes = normalise_each({"type": "page", "anonymousId": "test-anon-0001", "name": "Home"})
    assert outcomes == [Skipped("event: Segment page call")]


def test_the_single_call_http_body_needs_no_type() -> None:
    payload = clone(SEGMENT_PRODUCT_VIEWED)
    del payload["type"]
    assert normalise(payload)[0].platform == "segment"


def test_message_id_absent_gives_a_stable_content_hash() -> None:
    payload = clone(SEGMENT_PRODUCT_VIEWED)
    del payload["messageId"]
    first = normalise(payload)[0].event_id
    assert first == normalise(clone(payload))[0].event_id
    payload["properties"]["sku"] = "G-33"
    assert normalise(payload)[0].event_id != first


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"userId": None, "anonymousId": None},
            "event: neither userId nor anonymousId",
        ),
        ({"properties": {"price": 3}}, "properties: no product id, variant id, sku or name"),
        ({"properties": "Monopoly"}, "properties: expected an object, got 'Monopoly'"),
        ({"type": "trak"}, "type: 'trak' is not a Segment call type"),
        ({"event": None}, "event: missing track event name"),
        ({"timestamp": "yesterday"}, "timestamp: 'yesterday' is not an ISO 8601 time"),
        (
            {"properties": {"sku": "G-32", "currency": "dollars"}},
            "properties.currency: 'dollars' is not a three-letter currency code",
        ),
        (
            {"properties": {"sku": "G-32", "quantity": 1.5}},
            "properties.quantity: 1.5 is not a whole number",
        ),
        ({"properties": {"sku": "G-32", "price": -1}}, "properties.price: -1 is negative"),
        ({"properties": {"sku": True}}, "properties.sku: expected an id, got true"),
    ],
)
def test_malformed_messages_are_rejected_with_the_field(
    change: dict[str, object], reason: str
) -> None:
    payload = clone(SEGMENT_PRODUCT_VIEWED) | change
    with pytest.raises(EventRejected) as caught:
        normalise(payload, "segment")
    assert caught.value.reason == reason


def test_an_order_without_products_is_rejected() -> None:
    payload = clone(SEGMENT_ORDER_COMPLETED)
    payload["properties"]["products"] = []
    with pytest.raises(EventRejected, match=r"^event: no products$"):
        normalise(payload)

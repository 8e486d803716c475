"""Shape detection, mixed arrays, and the promise that only EventRejected escapes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.events import (
    EventRejected,
    NormalisedEvent,
    Rejected,
    Skipped,
    detect_platform,
    normalise,
    normalise_each,
)
from tests.server.events.payloads import (
    GA4_DATALAYER_VIEW_ITEM,
    GA4_GTAG_VIEW_ITEM,
    GA4_MP_BODY,
    NATIVE_PRODUCT_VIEWED,
    SEGMENT_PRODUCT_VIEWED,
    SHOPIFY_CHECKOUT_COMPLETED,
    SHOPIFY_PRODUCT_VIEWED,
)


@pytest.mark.parametrize(
    ("payload", "platform"),
    [
        (SEGMENT_PRODUCT_VIEWED, "segment"),
        ({"batch": []}, "segment"),
        (GA4_MP_BODY, "ga4"),
        (GA4_DATALAYER_VIEW_ITEM, "ga4"),
        ({"name": "view_item", "params": {}}, "ga4"),
        (SHOPIFY_PRODUCT_VIEWED, "shopify"),
        (SHOPIFY_CHECKOUT_COMPLETED, "shopify"),
        (NATIVE_PRODUCT_VIEWED, "native"),
        ({"sku": "A"}, None),
    ],
)
def test_detect_platform_by_shape(payload: dict[str, Any], platform: str | None) -> None:
    assert detect_platform(payload) == platform


def test_an_array_mixes_platforms_in_order() -> None:
    events = normalise(
        [SEGMENT_PRODUCT_VIEWED, GA4_GTAG_VIEW_ITEM, SHOPIFY_PRODUCT_VIEWED, NATIVE_PRODUCT_VIEWED]
    )
    assert [e.platform for e in events] == ["segment", "ga4", "shopify", "native"]


def test_a_forced_format_does_not_guess() -> None:
    with pytest.raises(EventRejected, match=r"^type: 'standard' is not a Segment call type$"):
        normalise(SHOPIFY_PRODUCT_VIEWED, "segment")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("hello", "input: expected a JSON object or array, got 'hello'"),
        (
            {"sku": "A", "price": 3},
            "event: not a Segment, GA4, Shopify or native event (keys: 'price', 'sku')",
        ),
        ([[SEGMENT_PRODUCT_VIEWED]], "[0]: nested arrays are not accepted"),
        ({"batch": {}}, "batch: expected an array, got an object"),
        ({"batch": [3]}, "batch[0]: expected an object, got 3"),
    ],
)
def test_unusable_shapes_are_rejected(payload: object, reason: str) -> None:
    assert normalise_each(payload) == [Rejected(reason)]


def test_strict_api_drops_skips_and_raises_on_rejects() -> None:
    assert normalise([{"ecommerce": None}]) == []
    with pytest.raises(EventRejected, match=r"^\[1\]: "):
        normalise([SEGMENT_PRODUCT_VIEWED, {"sku": "A"}])


def test_events_are_frozen() -> None:
    [event] = normalise(SEGMENT_PRODUCT_VIEWED)
    with pytest.raises(ValueError, match="frozen"):
        event.order_id = "x"  # type: ignore[misc]


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_keys = st.sampled_from(
    [
        "type",
        "event",
        "name",
        "params",
        "properties",
        "userId",
        "anonymousId",
        "batch",
        "events",
        "client_id",
        "ecommerce",
        "items",
        "item_id",
        "price",
        "quantity",
        "currency",
        "clientId",
        "data",
        "productVariant",
        "product",
        "id",
        "checkout",
        "lineItems",
        "variant",
        "shopper",
        "occurred_at",
        "products",
        "sku",
        "timestamp",
        "timestamp_micros",
        "order",
        "amount",
        "transaction_id",
    ]
) | st.text(max_size=6)
_names = st.sampled_from(
    [
        "track",
        "Product Viewed",
        "Order Completed",
        "view_item",
        "purchase",
        "product_viewed",
        "checkout_completed",
        "event",
    ]
)
_json = st.recursive(
    _scalars | _names,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_arbitrary_json_never_raises_anything_but_event_rejected(value: object) -> None:
    outcomes = normalise_each(value)
    assert all(isinstance(o, NormalisedEvent | Skipped | Rejected) for o in outcomes)
    for outcome in outcomes:
        if isinstance(outcome, NormalisedEvent):
            outcome.to_json_dict()
    with contextlib.suppress(EventRejected):
        normalise(value)

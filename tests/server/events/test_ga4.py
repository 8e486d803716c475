"""GA4 view_item / purchase: gtag, dataLayer and Measurement Protocol shapes."""

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
    GA4_DATALAYER_VIEW_ITEM,
    GA4_GTAG_VIEW_ITEM,
    GA4_MP_BODY,
    GA4_PURCHASE_PARAMS,
    clone,
)

DOCS_ITEM = NormalisedProduct(
    product_id="SKU_12345",
    name="Stan and Friends Tee",
    variant="green",
    price=Decimal("9.99"),
    quantity=1,
    currency="USD",
)


def test_gtag_view_item_from_the_reference_example() -> None:
    [event] = normalise(GA4_GTAG_VIEW_ITEM, "ga4")

    assert event.platform == "ga4"
    assert event.event_type == "product_viewed"
    assert event.products == (DOCS_ITEM,)
    assert event.shopper_keys == ()  # the browser call names nobody
    assert event.event_time is None


def test_datalayer_push_with_string_price_and_no_currency() -> None:
    [event] = normalise(GA4_DATALAYER_VIEW_ITEM)

    assert event.products == (
        NormalisedProduct(
            product_id="TEE-BLK",
            name="Basic tee",
            variant="M / Black",
            price=Decimal("49.90"),
            quantity=1,
            currency=None,
        ),
    )


def test_datalayer_push_may_carry_forwarded_ids() -> None:
    payload = clone(GA4_DATALAYER_VIEW_ITEM) | {
        "client_id": "123456.7654321",
        "user_id": "test-user-0001",
    }
    [event] = normalise(payload)
    assert event.shopper_keys == ("user_id:test-user-0001", "client_id:123456.7654321")


def test_measurement_protocol_body() -> None:
    outcomes = normalise_each(GA4_MP_BODY)

    view, page, purchase = outcomes
    assert page == Skipped("events[1]: GA4 event 'page_view' is not a product view or purchase")
    assert not isinstance(view, Skipped | Rejected)
    assert not isinstance(purchase, Skipped | Rejected)
    assert view.shopper_keys == ("user_id:test-user-0001", "client_id:123456.7654321")
    assert view.event_time == datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
    assert view.products == (DOCS_ITEM,)
    assert purchase.event_type == "purchase"
    assert purchase.order_id == "T_12345"
    assert purchase.revenue == Decimal("25.42")
    assert [p.product_id for p in purchase.products] == ["SKU_12345", "SKU_12346"]


def test_event_level_timestamp_micros_beats_the_body_and_may_be_a_string() -> None:
    body = clone(GA4_MP_BODY)
    body["events"][0]["timestamp_micros"] = "1714558500123456"
    view = normalise(body)[0]
    assert view.event_time == datetime(2024, 5, 1, 10, 15, 0, 123456, tzinfo=UTC)


def test_identical_mp_events_share_an_event_id_and_different_ones_do_not() -> None:
    events = normalise(GA4_MP_BODY)
    again = normalise(clone(GA4_MP_BODY))
    assert [e.event_id for e in events] == [e.event_id for e in again]
    assert events[0].event_id != events[1].event_id


def test_one_bad_mp_event_leaves_the_others() -> None:
    body = clone(GA4_MP_BODY)
    body["events"][0]["params"]["items"][0]["quantity"] = "many"
    outcomes = normalise_each(body)
    assert outcomes[0] == Rejected(
        "events[0].params.items[0].quantity: 'many' is not a decimal number"
    )
    assert not isinstance(outcomes[2], Rejected)


def test_datalayer_clear_push_and_other_events_are_skipped() -> None:
    assert normalise_each({"ecommerce": None}) == [Skipped("event: GA4 dataLayer ecommerce reset")]
    assert normalise_each({"event": "gtm.js", "gtm.start": 1714558500000}) == [
        Skipped("event: GA4 event 'gtm.js' is not a product view or purchase")
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {"events": [{"name": "view_item", "params": {}}]},
            "event: Measurement Protocol body without client_id",
        ),
        (
            {"event": "view_item", "ecommerce": {"items": [{"price": 3}]}},
            "ecommerce.items[0]: neither item_id nor item_name",
        ),
        ({"event": "view_item", "ecommerce": {"items": []}}, "ecommerce.items: no products"),
        (
            {"event": "purchase", "ecommerce": {"items": [{"item_id": "A"}]}},
            "ecommerce.transaction_id: missing (required)",
        ),
        (
            {"client_id": "1.2", "timestamp_micros": -5, "events": []},
            "timestamp_micros: -5 is negative",
        ),
        (["event", "view_item", "SKU_1"], "[2]: expected an object, got 'SKU_1'"),
    ],
)
def test_malformed_ga4_is_rejected(payload: object, reason: str) -> None:
    with pytest.raises(EventRejected) as caught:
        normalise(payload)
    assert caught.value.reason == reason


def test_purchase_from_the_reference_example_via_datalayer() -> None:
    [event] = normalise({"event": "purchase", "ecommerce": GA4_PURCHASE_PARAMS})
    assert (event.order_id, event.revenue) == ("T_12345", Decimal("25.42"))
    assert {p.currency for p in event.products} == {"USD"}

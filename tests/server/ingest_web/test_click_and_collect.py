"""Click & collect: an online order whose shipping method is a store pickup waits in that store.

Payloads are the vendor samples of ``tests/server/events/payloads.py`` (built to
the vendors' docs) with the pickup fields the vendors define added:
Shopify Web Pixels ``checkout.delivery.selectedDeliveryOptions[]{type, title}``
(pixels.d.ts ``DeliveryOption``, type ``"pickup" | "pickupPoint" | "shipping" |
"local"``), Segment's checkout ``shipping_method`` and ``affiliation``, GA4's
``shipping_tier`` (``add_shipping_info``) and item ``location_id``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, col, select

from server.events import NormalisedEvent, normalise_each
from server.ingest_web import service
from server.models import PendingPickup, ProfileInteraction
from server.stores.pickups import collect_pickup
from tests.server.events import payloads
from tests.server.ingest_web.fixtures import load_demo
from tests.server.ingest_web.support import bearer, client_on

NOW = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
STORE = "demo-rivoli"
STORE_NAME = "Vitrine Demo - Rue de Rivoli"


def _shopify(option_type: str, title: str = STORE_NAME) -> dict[str, Any]:
    event = payloads.clone(payloads.SHOPIFY_CHECKOUT_COMPLETED)
    event["data"]["checkout"]["delivery"] = {
        "selectedDeliveryOptions": [
            {
                "type": option_type,
                "title": title,
                "handle": "test-delivery-handle-1",
                "description": "Ready in 2 hours",
                "cost": {"amount": 0, "currencyCode": "EUR"},
                "costAfterDiscounts": {"amount": 0, "currencyCode": "EUR"},
            }
        ]
    }
    return dict(event)


def _segment(message_id: str, shipping_method: str, affiliation: str) -> dict[str, Any]:
    event = payloads.clone(payloads.SEGMENT_ORDER_COMPLETED)
    event["messageId"] = message_id
    event["properties"] |= {"shipping_method": shipping_method, "affiliation": affiliation}
    return dict(event)


def _ga4(shipping_tier: str, location_id: str | None) -> dict[str, Any]:
    params = payloads.clone(payloads.GA4_PURCHASE_PARAMS)
    params["shipping_tier"] = shipping_tier
    if location_id is not None:
        for item in params["items"]:
            item["location_id"] = location_id
    return {
        "client_id": "123456.7654321",
        "timestamp_micros": 1714558500000000,
        "events": [{"name": "purchase", "params": params}],
    }


def _pickups(session: Session) -> list[PendingPickup]:
    return list(session.exec(select(PendingPickup).order_by(col(PendingPickup.order_id))))


def _ingest(session: Session, event: object) -> tuple[int, int]:
    report = service.ingest(session, json.dumps(event).encode(), NOW)
    assert report.rejected == 0, report.results
    return report.accepted, report.duplicate


def test_a_shopify_pickup_checkout_waits_in_the_named_store_once(session: Session) -> None:
    load_demo(session)
    event = _shopify("pickup")
    assert _ingest(session, event) == (1, 0)
    [pickup] = _pickups(session)
    buyer = session.exec(select(ProfileInteraction.profile_id)).first()
    assert (pickup.store_id, pickup.order_id, pickup.profile_id) == (STORE, "5500000000001", buyer)
    assert pickup.collected_at is None
    # Redelivered (a pixel's retry): a duplicate, and still one order waiting.
    assert _ingest(session, event) == (0, 1)
    assert len(_pickups(session)) == 1
    # Staff see it where they see the admin's, and collecting it works the same.
    with client_on(session) as client:
        listed = client.get(f"/v1/stores/{STORE}/pickups", headers=bearer("staff"))
        assert listed.status_code == 200, listed.text
        assert [p["order_id"] for p in listed.json()] == ["5500000000001"]
    assert collect_pickup(session, STORE, "5500000000001", NOW).collected_at == NOW


@pytest.mark.parametrize("option_type", ["shipping", "local", "pickupPoint"])
def test_a_shopify_checkout_delivered_elsewhere_waits_nowhere(
    session: Session, option_type: str
) -> None:
    load_demo(session)
    assert _ingest(session, _shopify(option_type)) == (1, 0)
    assert _pickups(session) == []


def test_a_segment_pickup_order_by_store_id_is_kept_once_across_message_ids(
    session: Session,
) -> None:
    load_demo(session)
    assert _ingest(session, _segment("ajs-cc-1", "Store pickup", STORE)) == (1, 0)
    # The same order sent again under a new messageId (a tracker's retry): still one pickup.
    assert _ingest(session, _segment("ajs-cc-2", "Store pickup", STORE)) == (1, 0)
    [pickup] = _pickups(session)
    assert (pickup.store_id, pickup.order_id) == (STORE, "50314b8e9bcf000000000000")


def test_a_segment_order_shipped_or_for_an_unknown_store_waits_nowhere(session: Session) -> None:
    load_demo(session)
    assert _ingest(session, _segment("ajs-cc-3", "Fedex", STORE)) == (1, 0)
    # Spec sample's own affiliation: not a store of ours. The purchase still counts.
    assert _ingest(session, _segment("ajs-cc-4", "click & collect", "Google Store")) == (1, 0)
    assert _pickups(session) == []
    assert session.exec(select(ProfileInteraction)).all()


def test_a_ga4_pickup_purchase_waits_in_the_items_location(session: Session) -> None:
    load_demo(session)
    event = _ga4("Click & Collect", STORE)
    assert _ingest(session, event) == (1, 0)
    assert _ingest(session, event) == (0, 1)  # GA4 has no id: the content hash dedupes
    [pickup] = _pickups(session)
    assert (pickup.store_id, pickup.order_id) == (STORE, "T_12345")


def test_a_ga4_purchase_by_ground_waits_nowhere(session: Session) -> None:
    load_demo(session)
    assert _ingest(session, _ga4("Ground", STORE)) == (1, 0)
    assert _pickups(session) == []


def test_store_names_match_without_case_and_pickup_store_only_on_pickups() -> None:
    def one(value: object) -> NormalisedEvent:
        [event] = normalise_each(value)
        assert isinstance(event, NormalisedEvent)
        return event

    assert one(_shopify("pickup", "vitrine demo - rue de rivoli")).pickup_store == (
        "vitrine demo - rue de rivoli"
    )
    assert one(_ga4("In-store pickup", None)).pickup_store is None  # no store named
    assert one(payloads.clone(payloads.SEGMENT_ORDER_COMPLETED)).pickup_store is None
    assert one(payloads.clone(payloads.SHOPIFY_CHECKOUT_COMPLETED)).pickup_store is None


def test_a_pickup_named_by_the_store_name_in_another_case(session: Session) -> None:
    load_demo(session)
    assert _ingest(session, _shopify("pickup", STORE_NAME.upper())) == (1, 0)
    assert [p.store_id for p in _pickups(session)] == [STORE]

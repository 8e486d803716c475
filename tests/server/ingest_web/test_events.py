"""POST /v1/events on both backends: vendor payloads resolved to the catalogue and a profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, func, select

from server.ingest_web import service
from server.models import ProductView, ProfileAlias, ProfileInteraction, ShopperProfile
from tests.server.events import payloads
from tests.server.ingest_web.fixtures import load_demo, variant
from tests.server.ingest_web.support import bearer, client_on

NOW = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def _segment_view(sku: str, message_id: str, **envelope: Any) -> dict[str, Any]:
    event = payloads.clone(payloads.SEGMENT_PRODUCT_VIEWED)
    event["properties"] |= {"sku": sku, "product_id": "unknown-507f", "variant": None}
    event["messageId"] = message_id
    event.update(envelope)
    return dict(event)


def _count(session: Session, table: Any) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


def test_a_segment_view_is_stored_against_a_profile_once(session: Session) -> None:
    load_demo(session)
    body = json.dumps(_segment_view("LSX00-WHI-M", "m-1")).encode()
    report = service.ingest(session, body, NOW)
    assert (report.accepted, report.results[0].unresolved_products) == (1, 0)
    view = session.exec(select(ProductView)).one()
    assert view.variant_id == variant(session, "LSX00-WHI-M").id and view.platform == "segment"
    assert session.exec(select(ProfileInteraction)).one().kind.value == "viewed"
    again = service.ingest(session, body, NOW)
    assert (again.accepted, again.duplicate) == (0, 1)
    assert _count(session, ProductView) == 1


def test_a_bad_event_does_not_reject_the_good_ones_in_its_batch(session: Session) -> None:
    load_demo(session)
    batch = {
        "batch": [
            _segment_view("LSX00-WHI-S", "m-2"),
            {"type": "track", "event": "Product Viewed", "properties": {"sku": "X"}},
            payloads.clone(payloads.SEGMENT_PAGE_VIEWED),
        ]
    }
    with client_on(session) as client:
        response = client.post("/v1/events", json=batch, headers=bearer("ingest"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "skipped"]
        assert body["results"][1]["reason"]
        assert (body["accepted"], body["rejected"], body["skipped"]) == (1, 1, 1)
        bad = client.post("/v1/events", content=b"{nope", headers=bearer("ingest"))
        assert bad.status_code == 422 and bad.json()["rejected"] == 1
        assert client.post("/v1/events", json=batch).status_code == 401
        huge = b"[" + b" " * (2 * 1024 * 1024) + b"]"
        assert client.post("/v1/events", content=huge, headers=bearer("ingest")).status_code == 413


def test_ga4_and_shopify_views_resolve_by_gtin_and_online_variant_id(session: Session) -> None:
    load_demo(session)
    wanted = variant(session, "LSX00-WHI-L")
    assert wanted.gtin14 is not None and wanted.online_variant_id is not None
    ga4 = payloads.clone(payloads.GA4_MP_BODY)
    ga4["events"] = ga4["events"][:1]
    ga4["events"][0]["params"]["items"] = [
        {"item_id": wanted.gtin14, "price": "49.90", "quantity": "1"}
    ]
    shopify = payloads.clone(payloads.SHOPIFY_PRODUCT_VIEWED)
    shopify["data"]["productVariant"]["id"] = wanted.online_variant_id
    report = service.ingest(session, json.dumps([ga4, shopify]).encode(), NOW)
    assert [r.status for r in report.results] == ["accepted", "accepted"], report
    views = session.exec(select(ProductView)).all()
    assert {v.variant_id for v in views} == {wanted.id}


def test_a_datalayer_push_without_any_shopper_key_is_rejected_with_the_reason(
    session: Session,
) -> None:
    report = service.ingest(session, json.dumps(payloads.GA4_DATALAYER_VIEW_ITEM).encode(), NOW)
    assert report.rejected == 1 and "shopper" in (report.results[0].reason or "")


def test_login_merges_the_anonymous_profile_into_the_known_one(session: Session) -> None:
    load_demo(session)
    anon = _segment_view("LSX00-WHI-M", "m-10", userId=None, anonymousId="test-anon-77")
    service.ingest(session, json.dumps(anon).encode(), NOW)
    known = _segment_view("LSX00-WHI-S", "m-11", userId="test-user-77", anonymousId="test-anon-99")
    service.ingest(session, json.dumps(known).encode(), NOW)
    assert _count(session, ShopperProfile) == 2
    login = _segment_view("LSX00-WHI-L", "m-12", userId="test-user-77", anonymousId="test-anon-77")
    service.ingest(session, json.dumps(login).encode(), NOW)
    assert _count(session, ShopperProfile) == 1
    profile = session.exec(select(ShopperProfile)).one()
    assert {v.profile_id for v in session.exec(select(ProductView)).all()} == {profile.id}
    assert _count(session, ProductView) == 3
    kinds = {(a.kind.value, a.value) for a in session.exec(select(ProfileAlias)).all()}
    assert ("web_user_id", "test-user-77") in kinds and ("anonymous_id", "test-anon-77") in kinds


def test_a_known_profile_is_never_merged_into_another_known_one(session: Session) -> None:
    load_demo(session)
    for user, message in (("test-user-a", "m-20"), ("test-user-b", "m-21")):
        event = _segment_view("LSX00-WHI-M", message, userId=user, anonymousId="test-shared")
        service.ingest(session, json.dumps(event).encode(), NOW)
    assert _count(session, ShopperProfile) == 2


def test_purchases_are_stored_as_web_bought_interactions(session: Session) -> None:
    load_demo(session)
    order = payloads.clone(payloads.SEGMENT_ORDER_COMPLETED)
    for line in order["properties"]["products"]:
        line["sku"] = "LSX00-WHI-M"
    report = service.ingest(session, json.dumps(order).encode(), NOW)
    assert report.accepted == 1
    bought = session.exec(select(ProfileInteraction)).all()
    assert {(i.channel.value, i.kind.value) for i in bought} == {("web", "bought")}
    assert all(i.data and i.data["order_id"] == "50314b8e9bcf000000000000" for i in bought)
    assert _count(session, ProductView) == 0

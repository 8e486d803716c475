"""Timeline, consents, the ROPO funnel and the EPCIS export over one shopper's journey."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from server.analytics import service as analytics
from server.epcis.service import export_observations
from server.ingest_web import service as events
from server.models import (
    Channel,
    DeviceKind,
    InteractionKind,
    Item,
    ProfileAlias,
    ProfileInteraction,
    StoreVisit,
)
from tests.server.events import payloads
from tests.server.ingest_web.fixtures import load_demo, variant
from tests.server.ingest_web.support import bearer, client_on

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _journey(session: Session) -> tuple[str, str]:
    load_demo(session)
    view = payloads.clone(payloads.SEGMENT_PRODUCT_VIEWED)
    view |= {"userId": "test-user-j", "messageId": "j-1", "timestamp": T0.isoformat()}
    view["properties"]["sku"] = "LSX00-WHI-M"
    events.ingest(session, json.dumps(view).encode(), T0)
    pid = session.exec(select(ProfileAlias).where(ProfileAlias.value == "test-user-j")).one()
    shirt = variant(session, "LSX00-WHI-M")
    visit = StoreVisit(
        store_id="demo-rivoli",
        profile_id=pid.profile_id,
        device_kind=DeviceKind.APP,
        started_at=T0 + timedelta(days=1),
        ended_at=T0 + timedelta(days=1, minutes=20),
        entry_zone_id="entrance",
    )
    session.add(visit)
    session.flush()
    for minutes, kind in ((2, InteractionKind.LOCATED), (9, InteractionKind.TRIED_ON)):
        session.add(
            ProfileInteraction(
                event_id=f"j-store-{minutes}",
                profile_id=pid.profile_id,
                channel=Channel.STORE,
                kind=kind,
                product_id=shirt.product_id,
                variant_id=shirt.id,
                store_id="demo-rivoli",
                visit_id=visit.id,
                occurred_at=T0 + timedelta(days=1, minutes=minutes),
            )
        )
    order = payloads.clone(payloads.SEGMENT_ORDER_COMPLETED)
    order |= {"userId": "test-user-j", "timestamp": (T0 + timedelta(days=2)).isoformat()}
    order["properties"]["products"] = order["properties"]["products"][:1]
    order["properties"]["products"][0]["sku"] = "LSX00-WHI-M"
    events.ingest(session, json.dumps(order).encode(), T0 + timedelta(days=2))
    session.commit()
    return pid.profile_id, shirt.product_id


def test_the_timeline_is_one_ordered_journey(session: Session) -> None:
    pid, _ = _journey(session)
    with client_on(session) as client:
        response = client.get(f"/v1/profiles/{pid}/timeline", headers=bearer("staff"))
        assert response.status_code == 200, response.text
        steps = [(e["channel"], e["kind"]) for e in response.json()["entries"]]
        assert steps == [
            ("web", "viewed"),
            ("store", "located"),
            ("store", "tried_on"),
            ("web", "bought"),
        ]
        page = client.get(f"/v1/profiles/{pid}/timeline?limit=2", headers=bearer("staff")).json()
        assert [e["kind"] for e in page["entries"]] == ["tried_on", "bought"]
        assert page["next_before"] is not None


def test_consents_update_and_keep_their_history(session: Session) -> None:
    pid, _ = _journey(session)
    url = f"/v1/profiles/{pid}/consents"
    with client_on(session) as client:
        for granted in (True, False):
            body = {"changes": [{"purpose": "staff_recognition", "granted": granted}]}
            assert client.put(url, json=body, headers=bearer()).status_code == 200
        read = client.get(url, headers=bearer("staff")).json()
        current = {c["purpose"]: c["granted"] for c in read["current"]}
        assert current == {"guidance": False, "staff_recognition": False, "journey_profile": False}
        assert [h["granted"] for h in read["history"]] == [True, False]
        assert read["history"][0]["actor"] == "ops-1"


def test_the_funnel_counts_each_ropo_step(session: Session) -> None:
    _, product = _journey(session)
    report = analytics.funnel(
        session, start=T0, end=T0 + timedelta(days=7), store="demo-rivoli", product=product
    )
    (row,) = report.rows
    assert (row.viewed_online, row.visited, row.located, row.tried_on) == (1, 1, 1, 1)
    assert (row.bought_in_store, row.bought_online_after_visit) == (0, 1)
    footfall = analytics.footfall(
        session, store="demo-rivoli", start=T0, end=T0 + timedelta(days=7)
    )
    assert (footfall.visits, footfall.mean_dwell_s) == (1, 1200.0)


def test_epcis_export_has_object_events_with_pure_identity_uris(session: Session) -> None:
    load_demo(session)
    item = session.get(Item, "3034257BF40000C0000003E8")
    assert item is not None
    item.last_seen_at = T0
    session.commit()
    document = export_observations(session, "demo-rivoli", T0, T0 + timedelta(hours=1), T0)
    assert document["schemaVersion"] == "2.0" and document["type"] == "EPCISDocument"
    (event,) = document["epcisBody"]["eventList"]
    assert event["epcList"] == ["urn:epc:id:sgtin:0614141.000003.1000"]
    assert (event["action"], event["eventTimeZoneOffset"]) == ("OBSERVE", "+02:00")
    assert event["readPoint"]["id"].endswith(":zone:floor-women")

"""Export, erasure and purge on both backends; erasure is checked by scanning EVERY table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from server.ingest_web import service as events
from server.models import (
    AppInstall,
    Channel,
    ConsentPurpose,
    DeviceKind,
    InteractionKind,
    OutboxMessage,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StoreVisit,
    metadata,
)
from server.privacy import service
from server.profiles import service as profiles
from server.profiles.schemas import ConsentChange, ConsentUpdate
from tests.server.events import payloads
from tests.server.ingest_web.fixtures import load_demo
from tests.server.ingest_web.support import bearer, client_on

NOW = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
USER, ANON = "test-user-erase-me", "test-anon-erase-me"


def _shopper(session: Session) -> str:
    """A profile with a view, a visit, interactions, consents, an install, outbox rows."""
    load_demo(session)
    view = payloads.clone(payloads.SEGMENT_PRODUCT_VIEWED)
    view |= {"userId": USER, "anonymousId": ANON, "messageId": "erase-1"}
    view["properties"]["sku"] = "LSX00-WHI-M"
    events.ingest(session, json.dumps(view).encode(), NOW)
    pid = session.exec(select(ProfileAlias).where(ProfileAlias.value == USER)).one().profile_id
    profiles.update_consents(
        session,
        pid,
        ConsentUpdate(changes=[ConsentChange(purpose=ConsentPurpose.GUIDANCE, granted=True)]),
        actor="ops-1",
        now=NOW,
    )
    visit = StoreVisit(
        store_id="demo-rivoli", profile_id=pid, device_kind=DeviceKind.APP, started_at=NOW
    )
    session.add(visit)
    session.add(AppInstall(profile_id=pid, secret=b"k" * 32))
    session.flush()
    session.add(
        ProfileInteraction(
            event_id="erase-visit-1",
            profile_id=pid,
            channel=Channel.STORE,
            kind=InteractionKind.VISITED,
            store_id="demo-rivoli",
            visit_id=visit.id,
            occurred_at=NOW,
        )
    )
    for stream, body in (
        (f"shopper:{pid}", b"{}"),
        ("staff:demo-rivoli", f'{{"p":"{pid}"}}'.encode()),
    ):
        session.add(OutboxMessage(stream=stream, stream_seq=1, topic="t", payload=body))
    session.add(OutboxMessage(stream="staff:other", stream_seq=1, topic="t", payload=b"{}"))
    session.commit()
    return pid


def _every_value(session: Session) -> list[str]:
    values: list[str] = []
    for table in metadata.sorted_tables:
        for row in session.execute(sa.select(table)).all():
            for value in row:
                if isinstance(value, bytes):
                    values.append(value.decode("utf-8", "replace"))
                elif value is not None:
                    values.append(json.dumps(value, default=str))
    return values


def test_erasure_leaves_no_row_naming_the_shopper(session: Session) -> None:
    pid = _shopper(session)
    needles = (pid, USER, ANON)
    assert any(n in v for v in _every_value(session) for n in needles)  # the scan can fail
    report = service.erase_profile(session, pid)
    assert report.deleted["outbox"] == 2 and report.deleted["product_views"] == 1
    leftovers = [v for v in _every_value(session) for n in needles if n in v]
    assert leftovers == []
    assert session.exec(select(OutboxMessage)).one().stream == "staff:other"
    assert session.get(ShopperProfile, pid) is None


def test_export_lists_everything_held_but_no_secret(session: Session) -> None:
    pid = _shopper(session)
    with client_on(session) as client:
        assert client.get(f"/v1/profiles/{pid}/export", headers=bearer("staff")).status_code == 403
        response = client.get(f"/v1/profiles/{pid}/export", headers=bearer())
        assert response.status_code == 200
        body = response.json()
        assert {a["value"] for a in body["aliases"]} == {USER, ANON}
        assert len(body["product_views"]) == 1 and len(body["consent_history"]) == 1
        assert body["app_installs"] and "secret" not in body["app_installs"][0]
        assert len(body["pending_messages"]) == 1
        assert client.delete(f"/v1/profiles/{pid}", headers=bearer()).status_code == 200
        assert client.get(f"/v1/profiles/{pid}/export", headers=bearer()).status_code == 404


def test_purge_removes_only_rows_older_than_the_retention(session: Session) -> None:
    pid = _shopper(session)
    report = service.purge(session, timedelta(days=30), NOW + timedelta(days=31))
    assert report.deleted["product_views"] == 1 and report.deleted["profile_interactions"] == 2
    kept = service.purge(session, timedelta(days=30), NOW + timedelta(days=1))
    assert kept.deleted["product_views"] == 0
    assert profiles.current_consents(session, pid) == {ConsentPurpose.GUIDANCE}

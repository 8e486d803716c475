"""Webhooks on both backends: fed by the ingest's transaction, signed, retried, given up.

The receiver is a real HTTP server (``http.server`` on a free loopback port)
that verifies ``Vitrine-Signature`` the way docs/server-api.md tells a CRM to.
The worker runs rounds under an injected clock, so backoff is tested without
waiting for it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.ingest.service import IngestConfig, process_fact
from server.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from server.models.journeys import InteractionKind
from server.webhooks import service
from server.webhooks.schemas import EndpointIn
from server.webhooks.signing import sign, verify
from server.webhooks.worker import WebhookSettings, WebhookWorker, backoff
from tests.server.ingest.support import Seeded, seed
from tests.server.ingest_web.support import SECRET as TOKEN_KEY
from tests.server.ingest_web.support import bearer
from vitrine.contracts.facts import ShopperEntered, make_event_id
from vitrine.contracts.ids import GatewayId, StoreId

SECRET = "whsec-test-0123456789abcdef"
FAST = WebhookSettings(
    base_delay=timedelta(seconds=10), max_delay=timedelta(seconds=40), max_attempts=4
)


@dataclass
class Receiver:
    """Answers ``fail_first`` requests with 503, then 200; keeps what it verified."""

    url: str
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    requests: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify(
                SECRET,
                self.headers["Vitrine-Timestamp"],
                body,
                self.headers["Vitrine-Signature"],
                now=datetime.now(UTC).timestamp(),
                tolerance_s=10**9,  # the worker's clock is injected in these tests
            )
            with lock:
                state.requests += 1
                failing = state.requests <= state.fail_first
                if not ok:
                    state.bad_signatures += 1
                elif not failing:
                    payload = orjson.loads(body)
                    assert payload["event_id"] == self.headers["Vitrine-Event-Id"]
                    state.received.append(payload)
            self.send_response(401 if not ok else 503 if failing else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _arrive(engine: Engine, s: Seeded, at: datetime) -> None:
    """The ingest's unit of work for one arrival (visited + guided interactions)."""
    fact = ShopperEntered(
        event_id=make_event_id(s.store, "webhook-test", at.isoformat()),
        store=StoreId(s.store),
        gateway=GatewayId("gw-1"),
        occurred_at=at,
        device=s.token(at),
        device_kind="app",
        zone="entrance",
    )
    with Session(engine) as session:
        assert process_fact(session, fact, IngestConfig(footfall_key=b"k"), at) is not None
        session.commit()


def _endpoint(engine: Engine, url: str, kinds: list[InteractionKind]) -> str:
    with Session(engine) as session:
        created = service.create_endpoint(
            session, EndpointIn.model_validate({"url": url, "event_kinds": kinds, "secret": SECRET})
        )
    return created.id


def _deliveries(engine: Engine, endpoint_id: str) -> list[WebhookDelivery]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(col(WebhookDelivery.created_at))
            ).all()
        )


def _deactivate(engine: Engine, endpoint_id: str) -> None:
    with Session(engine) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        row.active = False
        session.add(row)
        session.commit()


@given(body=st.binary(max_size=200), ts=st.integers(min_value=0, max_value=2**40))
def test_a_signature_verifies_and_any_change_breaks_it(body: bytes, ts: int) -> None:
    signature = sign(SECRET, ts, body)
    assert signature.startswith("v1=")
    assert verify(SECRET, str(ts), body, signature, now=ts)
    assert not verify(SECRET, str(ts), body + b"x", signature, now=ts)
    assert not verify(SECRET, str(ts + 1), body, signature, now=ts)
    assert not verify("another-secret-000", str(ts), body, signature, now=ts)
    assert not verify(SECRET, str(ts), body, signature, now=ts + 301)  # replayed later


def test_backoff_doubles_then_caps() -> None:
    assert [backoff(n, FAST).total_seconds() for n in range(1, 6)] == [10, 20, 40, 40, 40]
    assert backoff(500, WebhookSettings()) == timedelta(hours=1)


def test_interactions_are_delivered_signed_and_only_the_kinds_wanted(
    committed_engine: Engine, receiver: Receiver
) -> None:
    s = seed(committed_engine)
    endpoint = _endpoint(committed_engine, receiver.url, [InteractionKind.VISITED])
    try:
        now = datetime.now(UTC)
        _arrive(committed_engine, s, now)
        # Owed in the fact's transaction: one ``visited`` (``guided`` is not wanted).
        [owed] = _deliveries(committed_engine, endpoint)
        assert owed.status == DeliveryStatus.PENDING and owed.attempts == 0
        with httpx.Client(timeout=5) as client:
            worker = WebhookWorker(committed_engine, FAST, client=client, clock=lambda: now)
            assert worker.run_once() >= 1
        [got] = receiver.received
        assert (got["kind"], got["profile_id"], got["store_id"]) == (
            "visited",
            s.profile_id,
            s.store,
        )
        assert receiver.bad_signatures == 0
        [done] = _deliveries(committed_engine, endpoint)
        assert (done.status, done.attempts, done.last_status) == (DeliveryStatus.DELIVERED, 1, 204)
    finally:
        _deactivate(committed_engine, endpoint)


def test_a_failing_receiver_gets_retries_with_backoff_then_the_delivery_is_dead(
    committed_engine: Engine, receiver: Receiver
) -> None:
    s = seed(committed_engine)
    endpoint = _endpoint(committed_engine, receiver.url, [InteractionKind.VISITED])
    try:
        t0 = datetime.now(UTC)
        clock = [t0]
        _arrive(committed_engine, s, t0)
        receiver.fail_first = 2
        with httpx.Client(timeout=5) as client:
            worker = WebhookWorker(committed_engine, FAST, client=client, clock=lambda: clock[0])
            worker.run_once()  # attempt 1: 503
            [row] = _deliveries(committed_engine, endpoint)
            assert (row.attempts, row.last_status) == (1, 503)
            assert row.next_attempt_at == t0 + timedelta(seconds=10)
            clock[0] = t0 + timedelta(seconds=9)
            worker.run_once()  # not due yet: nothing sent
            assert receiver.requests == 1
            clock[0] = t0 + timedelta(seconds=10)
            worker.run_once()  # attempt 2: 503, next in 20 s
            [row] = _deliveries(committed_engine, endpoint)
            assert row.next_attempt_at == clock[0] + timedelta(seconds=20)
            clock[0] += timedelta(seconds=20)
            worker.run_once()  # attempt 3: delivered
        [row] = _deliveries(committed_engine, endpoint)
        assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 3)
        assert len(receiver.received) == 1

        # A receiver that never answers 2xx: dead after max_attempts, then left alone.
        s2 = seed(committed_engine)
        receiver.fail_first = 10**6
        _arrive(committed_engine, s2, t0)
        with httpx.Client(timeout=5) as client:
            worker = WebhookWorker(committed_engine, FAST, client=client, clock=lambda: clock[0])
            for _ in range(FAST.max_attempts + 2):
                worker.run_once()
                clock[0] += FAST.max_delay
        dead = [d for d in _deliveries(committed_engine, endpoint) if d.profile_id == s2.profile_id]
        assert [(d.status, d.attempts) for d in dead] == [(DeliveryStatus.DEAD, FAST.max_attempts)]
    finally:
        _deactivate(committed_engine, endpoint)


def test_an_unreachable_receiver_is_retried(committed_engine: Engine) -> None:
    s = seed(committed_engine)
    with socket.socket() as sock:  # a port nobody listens on once closed: refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = _endpoint(committed_engine, f"http://127.0.0.1:{port}/x", [])
    try:
        now = datetime.now(UTC)
        _arrive(committed_engine, s, now)
        with httpx.Client(timeout=2) as client:
            WebhookWorker(committed_engine, FAST, client=client, clock=lambda: now).run_once()
        rows = _deliveries(committed_engine, endpoint)
        # Every kind wanted: visited and one guided per card.
        assert sorted(orjson.loads(r.body)["kind"] for r in rows) == ["guided", "guided", "visited"]
        assert all(r.status == DeliveryStatus.PENDING and r.attempts == 1 for r in rows)
        assert all(r.last_status is None and r.last_error for r in rows)
    finally:
        _deactivate(committed_engine, endpoint)


def test_admin_crud_shows_the_secret_once(committed_engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import ServerSettings

    settings = ServerSettings(secret_key=TOKEN_KEY)
    app = create_app(settings, engine=committed_engine)
    with TestClient(app) as client:
        made = client.post(
            "/v1/admin/webhooks",
            json={"url": "https://crm.example/hooks", "event_kinds": ["bought"]},
            headers=bearer(),
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert len(body["secret"]) >= 32
        path = f"/v1/admin/webhooks/{body['id']}"
        got = client.get(path, headers=bearer()).json()
        assert "secret" not in got and got["event_kinds"] == ["bought"]
        changed = client.put(
            path,
            json={"url": "https://crm.example/v2", "event_kinds": [], "active": False},
            headers=bearer(),
        )
        assert changed.json()["url"] == "https://crm.example/v2" and not changed.json()["active"]
        assert client.get(f"{path}/deliveries", headers=bearer()).json() == []
        bad = client.post("/v1/admin/webhooks", json={"url": "not a url"}, headers=bearer())
        assert bad.status_code == 422
        assert client.get(path, headers=bearer("staff")).status_code == 403
        assert client.delete(path, headers=bearer()).status_code == 204
        assert client.get(path, headers=bearer()).status_code == 404


def test_web_views_are_owed_to_webhooks_like_store_interactions(
    committed_engine: Engine, receiver: Receiver
) -> None:
    from server.ingest_web.service import ingest

    endpoint = _endpoint(committed_engine, receiver.url, [InteractionKind.VIEWED])
    try:
        view = {
            "type": "track",
            "event": "Product Viewed",
            "userId": "user-webhook-test-1",
            "messageId": "msg-webhook-test-1",
            "timestamp": "2026-11-24T10:00:00Z",
            "properties": {"product_id": "p-1", "sku": "SKU-NOT-IN-CATALOGUE", "price": 10},
        }
        with Session(committed_engine) as session:
            report = ingest(session, orjson.dumps(view), datetime.now(UTC))
            session.commit()
        assert report.accepted == 1
        [owed] = _deliveries(committed_engine, endpoint)
        assert orjson.loads(owed.body)["kind"] == "viewed"
    finally:
        _deactivate(committed_engine, endpoint)

"""``kill -9`` of a ``vitrine mobile-api run`` instance while events stream to phones.

Real processes: two mobile_api instances, A and B, on one broker and one
PostgreSQL database; the server's :class:`~server.outbox.OutboxPublisher` (the
one ``vitrine server ingest`` runs) puts committed outbox rows on the bus from
the test process (one process start fewer on a loaded machine). Four phones
sign in over REST and open ``/v1/me/stream`` on A (real WebSocket clients,
the ``websockets`` package); the test plays the engine, committing guidance
events to each shopper's outbox stream at a steady pace. When the phones hold about a third of their
events, A is killed with SIGKILL; two phones fail over to B at once, two wait
for A to be restarted. Each reconnects with the last ``seq`` it processed, as
docs/mobile-api.md tells a phone to.

The contract (docs/mobile-api.md, "Resume"): everything after ``last_seq`` is
replayed from the outbox in order, then live messages follow, duplicates
dropped by seq; a ``reset`` only when the resume point is gone (it is not
here). So each phone must receive seqs 1..N exactly once, in order — checked
with the queue checker — its resume answered ``ready`` with its own
``last_seq``, and, after a sentinel event, nothing but the sentinel.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import Engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server import migrate
from server.db import make_engine, session_factory
from server.outbox import OutboxPublisher, enqueue_event
from tests.mobile_api.conftest import IDENTITY_SECRET, Phone, sign_in
from tests.reliability.checker import check
from tests.reliability.procs import http_status, wait_until
from tests.support.services import Broker, free_port
from vitrine.contracts.events import GuidanceEvent
from vitrine.contracts.ids import EventId, StoreId
from vitrine.runtime.mqtt import parse_mqtt_url
from vitrine.runtime.supervise import Child, ProcessGroup, vitrine_command

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

PHONES = 4
#: Events per phone, committed at EMIT_INTERVAL_S per round of all phones:
#: ~3 s of stream, so the kill, the failover and the restart happen mid-stream.
EVENTS = 40
EMIT_INTERVAL_S = 0.075
#: Generous per-frame deadline on a loaded 2-core machine (never a sleep).
RECV_TIMEOUT_S = 20.0
STORE = StoreId("kill-store")


@pytest.fixture
def database(postgres_database: object) -> Iterator[str]:
    url: str = postgres_database()  # type: ignore[operator]
    migrate.upgrade(url)
    yield url


class GuidanceWriter:
    """Plays the engine: commits guidance events to shoppers' outbox streams."""

    def __init__(self, engine: Engine, publisher: OutboxPublisher) -> None:
        self.engine = engine
        self.publisher = publisher

    def emit(self, shopper: str) -> None:
        event = GuidanceEvent(
            event_id=EventId(uuid.uuid4().hex),
            store=STORE,
            created_at=datetime.now(UTC),
            shopper=shopper,
            visit_id="v-kill",
            moment="arrival",
            message="hello",
        )
        with session_factory(self.engine) as session:
            enqueue_event(session, event)
            session.commit()
        self.publisher.wake()  # as the ingest does after a commit that wrote outbox rows

    def stream(self, shoppers: list[str], rounds: int, stop: threading.Event) -> None:
        for _ in range(rounds):
            if stop.is_set():
                return
            for shopper in shoppers:
                self.emit(shopper)
            # The producer's pace (a store's guidance rate), not a wait for an outcome.
            time.sleep(EMIT_INTERVAL_S)


@dataclass
class PhoneRun:
    """One phone's view of the stream: every frame, every (re)connection."""

    phone: Phone
    received: list[int] = field(default_factory=list)
    hellos: list[dict[str, Any]] = field(default_factory=list)
    resumed_with: list[int | None] = field(default_factory=list)
    drops: int = 0

    @property
    def last_seq(self) -> int | None:
        return self.received[-1] if self.received else None


async def _open(url: str, token: str, last_seq: int | None) -> tuple[ClientConnection, Any]:
    ws = await connect(url, open_timeout=RECV_TIMEOUT_S)
    await ws.send(orjson.dumps({"type": "auth", "token": token, "last_seq": last_seq}).decode())
    return ws, orjson.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))


async def _reconnect(run: PhoneRun, url: str, deadline: float) -> ClientConnection:
    """Reconnect with the last seq processed; retry while the instance is down."""
    while True:
        try:
            ws, hello = await _open(url, run.phone.access, run.last_seq)
        except (OSError, ConnectionClosed, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # a phone's reconnect back-off
            continue
        run.hellos.append(hello)
        run.resumed_with.append(run.last_seq)
        return ws


async def _phone(run: PhoneRun, first: str, failover: str, want: int) -> None:
    """Receive until ``want`` events; after a drop, resume on ``failover``."""
    deadline = time.monotonic() + 60
    ws = await _reconnect(run, first, deadline)
    while len(run.received) < want:
        try:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        except ConnectionClosed:
            run.drops += 1
            ws = await _reconnect(run, failover, deadline)
            continue
        assert frame["type"] == "event", frame  # a reset here would be a silent-gap bug
        assert frame["event"]["seq"] == frame["seq"], frame
        run.received.append(frame["seq"])
    await ws.close()


def _instance(group: ProcessGroup, name: str, port: int) -> Child:
    child = group.start(
        name, vitrine_command("mobile-api", "run", "--host", "127.0.0.1", "--port", str(port))
    )
    group.wait_until(child, lambda: http_status(port) == 200)
    return child


def test_mobile_api_kill_9_phones_resume_every_event_once_in_order(
    database: str, mosquitto: Broker, tmp_path: Path
) -> None:
    engine = make_engine(database)
    group = ProcessGroup(
        tmp_path / "logs",
        {
            "VITRINE_DATABASE_URL": database,
            "VITRINE_MQTT_URL": mosquitto.url,
            "VITRINE_MOBILE_SECRET_KEY": "fault-test-mobile-key-not-for-production",
            "VITRINE_MOBILE_IDENTITY_SECRET": IDENTITY_SECRET,
            "VITRINE_LOG_LEVEL": "WARNING",
        },
    )
    port_a, port_b = free_port(), free_port()
    url_a = f"ws://127.0.0.1:{port_a}/v1/me/stream"
    url_b = f"ws://127.0.0.1:{port_b}/v1/me/stream"
    publisher = OutboxPublisher(
        engine, parse_mqtt_url(mosquitto.url), client_id=f"mk-outbox-{uuid.uuid4().hex[:6]}"
    )
    writer = GuidanceWriter(engine, publisher)
    stop = threading.Event()
    try:
        publisher.start()
        instance_a = _instance(group, "mobile-a", port_a)
        _instance(group, "mobile-b", port_b)
        runs = [PhoneRun(sign_in(f"http://127.0.0.1:{port_a}")) for _ in range(PHONES)]
        shoppers = [r.phone.profile_id for r in runs]

        async def scenario() -> int:
            # Phones 0, 1 fail over to B; phones 2, 3 come back to A once it restarts.
            phones = [
                asyncio.create_task(_phone(r, url_a, url_b if i < 2 else url_a, EVENTS))
                for i, r in enumerate(runs)
            ]
            await asyncio.to_thread(
                wait_until, lambda: all(len(r.hellos) == 1 for r in runs), "phones on A"
            )
            flow = threading.Thread(target=writer.stream, args=(shoppers, EVENTS, stop))
            flow.start()
            await asyncio.to_thread(
                wait_until,
                lambda: sum(len(r.received) for r in runs) >= PHONES * EVENTS // 3,
                "a third of the events on the phones",
            )
            instance_a.process.kill()
            instance_a.process.wait(10)
            killed_at = sum(len(r.received) for r in runs)
            await asyncio.to_thread(_instance, group, "mobile-a2", port_a)
            await asyncio.wait_for(asyncio.gather(*phones), 90)
            await asyncio.to_thread(flow.join, 30)
            return killed_at

        killed_at = asyncio.run(scenario())
        sentinels = asyncio.run(_sentinel(runs, writer, url_a, url_b))
    finally:
        stop.set()
        codes = group.stop()
        publisher.stop()
        engine.dispose()
    assert codes == {"mobile-b": 0, "mobile-a2": 0, "mobile-a": -9}, codes

    for i, r in enumerate(runs):
        verdict = check(range(1, EVENTS + 1), r.received)
        assert verdict.ok, (i, verdict.summary())
        assert r.received == sorted(r.received), (i, r.received)
        assert r.drops >= 1, f"phone {i} was never cut off"
        # Each (re)connection answered ``ready`` at the phone's own last seq: no reset.
        assert r.hellos == [
            {"type": "ready", "seq": 0 if s is None else s} for s in r.resumed_with
        ], (i, r.hellos, r.resumed_with)
    assert sentinels == [EVENTS + 1] * PHONES, sentinels
    print(
        f"mobile_api kill -9 after {killed_at}/{PHONES * EVENTS} events on the phones: "
        f"resumed at {[r.resumed_with[1:] for r in runs]}; every phone 1..{EVENTS} once, "
        "in order, then only the sentinel"
    )


async def _sentinel(
    runs: list[PhoneRun], writer: GuidanceWriter, url_a: str, url_b: str
) -> list[int]:
    """One more event per phone: the next frame after the stream must be exactly it."""
    got = []
    for i, r in enumerate(runs):
        ws, hello = await _open(url_b if i < 2 else url_a, r.phone.access, r.last_seq)
        assert hello == {"type": "ready", "seq": EVENTS}, hello
        await asyncio.to_thread(writer.emit, r.phone.profile_id)
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        got.append(frame["seq"])
        await ws.close()
    return got

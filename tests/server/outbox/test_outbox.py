"""The outbox: sequence numbers per stream, and nothing lost while the broker is away."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.ingest.service import IngestConfig, handle_fact_message
from server.models import OutboxMessage
from server.outbox import OutboxPublisher, enqueue_event, stream_and_topic
from server.outbox import publisher as publisher_module
from tests.server.ingest.support import DEADLINE_S, seed
from tests.support.services import free_port, start_mosquitto
from vitrine.contracts.events import GuidanceEvent, StaffTaskEvent, parse_outbound
from vitrine.contracts.facts import ShopperEntered, dump_fact, make_event_id
from vitrine.contracts.ids import EventId, GatewayId, StoreId
from vitrine.contracts.topics import fact_topic
from vitrine.runtime.mqtt import MqttTarget

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _guidance(n: int, shopper: str = "p-1", store: str = "lyon-1") -> GuidanceEvent:
    return GuidanceEvent(
        event_id=EventId(f"{n:032x}"),
        store=StoreId(store),
        created_at=NOW,
        shopper=shopper,
        visit_id="v-1",
        moment="arrival",
    )


def test_each_stream_gets_its_own_gapless_sequence(session: Session) -> None:
    stream = f"p-{uuid.uuid4().hex[:8]}"
    rows = [enqueue_event(session, _guidance(n, shopper=stream)) for n in range(3)]
    other = enqueue_event(session, _guidance(9, shopper=f"{stream}-other"))
    task = StaffTaskEvent(
        event_id=EventId("f" * 32),
        store=StoreId("lyon-1"),
        created_at=NOW,
        task_id="t-1",
        task="bring_to_floor",
        text="Bring size M of Wool coat to the floor",
    )
    staff = enqueue_event(session, task)
    assert [r.stream_seq for r in rows] == [1, 2, 3]
    assert other.stream_seq == 1
    assert (staff.stream, staff.topic) == stream_and_topic(task)
    assert staff.topic == "vitrine/v1/lyon-1/out/staff/staff_task"
    # The payload carries its sequence number, for a client's resume.
    assert [parse_outbound(r.payload).seq for r in rows] == [1, 2, 3]
    assert rows[0].topic == f"vitrine/v1/lyon-1/out/shopper/{stream}/guidance"


def test_a_rolled_back_transaction_announces_nothing(session: Session) -> None:
    stream_event = _guidance(1, shopper=f"p-{uuid.uuid4().hex[:8]}")
    nested = session.begin_nested()
    enqueue_event(session, stream_event)
    nested.rollback()
    stream, _ = stream_and_topic(stream_event)
    assert session.exec(select(OutboxMessage).where(OutboxMessage.stream == stream)).all() == []


class _Phone:
    """A persistent-session subscriber: the broker keeps its messages while it is away."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: list[bytes] = []
        self.enough = threading.Event()
        self.want = 0
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"phone-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.got.append(bytes(message.payload))
        if len(self.got) >= self.want:
            self.enough.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_rows_committed_while_the_broker_is_down_are_published_when_it_returns(
    committed_engine: Engine, tmp_path: Path
) -> None:
    s = seed(committed_engine)
    port = free_port()
    workdir = tmp_path / "broker"
    with start_mosquitto(workdir, port):
        phone = _Phone(port, f"vitrine/v1/{s.store}/out/#")
        assert phone.subscribed.wait(DEADLINE_S)
        publisher = OutboxPublisher(
            committed_engine,
            MqttTarget("127.0.0.1", port),
            client_id=f"outbox-{uuid.uuid4().hex[:8]}",
        )
        publisher.start()
    try:
        # The broker is down: the engine commits the arrival and its outbox rows.
        at = datetime.now(UTC)
        fact = ShopperEntered(
            event_id=make_event_id("outbox-test", s.store),
            store=StoreId(s.store),
            gateway=GatewayId("gw-1"),
            occurred_at=at,
            device=s.token(at),
            device_kind="app",
            zone="entrance",
        )
        outcome = handle_fact_message(
            committed_engine,
            fact_topic(StoreId(s.store), fact.kind),
            dump_fact(fact),
            IngestConfig(footfall_key=b"k"),
        )
        assert outcome == "applied"
        with Session(committed_engine) as db:
            waiting = db.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.topic).contains(s.store))
                .where(col(OutboxMessage.published_at).is_(None))
                .order_by(col(OutboxMessage.seq))
            ).all()
        kinds = [json.loads(r.payload)["kind"] for r in waiting]
        assert kinds == ["guidance", "staff_alert", "staff_task", "interaction"]
        phone.want = len(waiting)
        publisher.wake()

        with start_mosquitto(workdir, port):
            assert phone.enough.wait(DEADLINE_S + 5), f"got {len(phone.got)} of {phone.want}"
            assert [json.loads(p)["kind"] for p in phone.got] == kinds
            deadline = datetime.now(UTC) + timedelta(seconds=DEADLINE_S)
            while datetime.now(UTC) < deadline:
                with Session(committed_engine) as db:
                    left = [db.get(OutboxMessage, r.seq) for r in waiting]
                if all(r is not None and r.published_at is not None for r in left):
                    break
                threading.Event().wait(0.05)  # poll interval
            else:
                raise AssertionError("rows not marked published")
            publisher.stop()
            phone.close()
    finally:
        publisher.stop()


class _HeldMarks:
    """``sqlalchemy`` as the publisher module sees it, with ``update`` (the mark) held.

    The mark's statement is built before its session touches the database, so
    holding it here holds no connection and no lock (SQLite's writer lock
    included): other writers commit freely meanwhile.
    """

    def __init__(self) -> None:
        self.marking = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(sa, name)

    def update(self, table: Any) -> object:
        self.marking.set()
        self.release.wait(DEADLINE_S)
        return sa.update(table)


@contextmanager
def _publishing(
    engine: Engine, workdir: Path, store: str
) -> Iterator[tuple[_Phone, OutboxPublisher]]:
    """A broker, a phone on ``store``'s outbound topics and a running publisher."""
    port = free_port()
    with start_mosquitto(workdir, port):
        phone = _Phone(port, f"vitrine/v1/{store}/out/#")
        assert phone.subscribed.wait(DEADLINE_S)
        publisher = OutboxPublisher(
            engine,
            MqttTarget("127.0.0.1", port),
            client_id=f"outbox-{uuid.uuid4().hex[:8]}",
        )
        publisher.start()
        try:
            yield phone, publisher
        finally:
            publisher.stop()
            phone.close()


def _commit_guidance(engine: Engine, n: int, shopper: str, store: str) -> int:
    with Session(engine) as db:
        row = enqueue_event(db, _guidance(n, shopper=shopper, store=store))
        db.commit()
        assert row.seq is not None
        return row.seq


def test_a_new_row_is_sent_while_the_previous_rows_mark_is_being_written(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender does not wait for the previous rows' PUBACKs and marks (pipelined)."""
    held = _HeldMarks()
    monkeypatch.setattr(publisher_module, "sa", held)
    store = f"pipe-{uuid.uuid4().hex[:8]}"
    shopper = f"p-{uuid.uuid4().hex[:8]}"
    with _publishing(committed_engine, tmp_path / "broker", store) as (phone, publisher):
        try:
            phone.want = 1
            first = _commit_guidance(committed_engine, 1, shopper, store)
            publisher.wake()
            assert phone.enough.wait(DEADLINE_S), "the first row was not sent"
            # Its PUBACK came; its mark is now being written (and held there).
            assert held.marking.wait(DEADLINE_S), "the first row was never marked"
            phone.enough.clear()
            phone.want = 2
            _commit_guidance(committed_engine, 2, shopper, store)
            publisher.wake()
            assert phone.enough.wait(DEADLINE_S), "the second row waited for the first's mark"
            assert [parse_outbound(p).seq for p in phone.got] == [1, 2]
            with Session(committed_engine) as db:
                row = db.get(OutboxMessage, first)
                assert row is not None and row.published_at is None  # still held
        finally:
            held.release.set()
    # Released, the marks are written: nothing is left to send again.
    with Session(committed_engine) as db:
        left = db.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.topic).contains(store))
            .where(col(OutboxMessage.published_at).is_(None))
        ).all()
    assert left == []


def test_a_row_committed_after_a_later_seq_was_sent_is_still_sent(
    committed_engine: Engine, backend: str, tmp_path: Path
) -> None:
    """PostgreSQL hands out ``seq`` at insert: a row may commit after a higher one was sent.

    The sender skips what it handed to the broker rather than reading after the
    last seq it sent, so that row is found (docs/database.md, docs/engine.md).
    SQLite has one writer at a time, so there a lower seq never commits later.
    """
    if backend != "postgres":
        pytest.skip("SQLite serialises writers: seq order is commit order")
    store = f"hole-{uuid.uuid4().hex[:8]}"
    with (
        _publishing(committed_engine, tmp_path / "broker", store) as (phone, publisher),
        Session(committed_engine) as slow,
    ):
        early = enqueue_event(slow, _guidance(1, shopper="p-early", store=store))
        assert early.seq is not None  # taken, not committed
        phone.want = 1
        late = _commit_guidance(committed_engine, 2, "p-late", store)
        assert late > early.seq
        publisher.wake()
        assert phone.enough.wait(DEADLINE_S), "the later row was not sent"
        phone.enough.clear()
        phone.want = 2
        slow.commit()
        publisher.wake()
        assert phone.enough.wait(DEADLINE_S), "the row committed late was never sent"
        assert [json.loads(p)["shopper"] for p in phone.got] == ["p-late", "p-early"]


class _RefusingClient:
    """Paho's answer to a publish in the instant the connection drops: rc NO_CONN
    (its ``is_published`` then raises for good); every later publish is taken."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, mqtt.MQTTMessageInfo]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> mqtt.MQTTMessageInfo:
        info = mqtt.MQTTMessageInfo(len(self.sent) + 1)
        if not self.sent:
            info.rc = mqtt.MQTT_ERR_NO_CONN
        self.sent.append((topic, info))
        return info


def test_a_publish_paho_refused_is_sent_again_instead_of_wedging_the_publisher(
    committed_engine: Engine,
) -> None:
    store = f"refused-{uuid.uuid4().hex[:8]}"
    seq = _commit_guidance(committed_engine, 1, f"p-{uuid.uuid4().hex[:8]}", store)
    publisher = OutboxPublisher(
        committed_engine, MqttTarget("127.0.0.1", 1), client_id=f"outbox-{uuid.uuid4().hex[:8]}"
    )
    client = _RefusingClient()
    publisher._client = client  # type: ignore[assignment]
    publisher._connected.set()
    assert publisher.drain_once() >= 1  # refused by paho
    assert publisher.mark_once() == 0  # was: RuntimeError in every round, for good
    assert publisher.drain_once() >= 1  # sent again
    mine = [info for topic, info in client.sent if store in topic]
    assert len(mine) == 2
    mine[1]._set_as_published()  # its PUBACK
    for _, info in client.sent[len(mine) :]:
        info._set_as_published()
    assert publisher.mark_once() >= 1
    with Session(committed_engine) as db:
        row = db.get(OutboxMessage, seq)
        assert row is not None and row.published_at is not None

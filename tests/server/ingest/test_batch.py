"""The batch path: a worker's waiting facts in one transaction, acked after its commit.

The consumer's :meth:`~server.ingest.consumer.FactConsumer.process` is driven
directly with a batch, as its worker thread would after taking the facts
waiting in its queue; the acknowledgements it sends to paho are recorded.
The database's refusals are real: a trigger that refuses one serial number
(a constraint error, as PostgreSQL gives for a value a column cannot hold),
and an outage is the driver's own error raised at the cursor while the
"database" is away.
"""

from __future__ import annotations

import itertools
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server import migrate
from server.db import make_engine
from server.ingest import consumer as consumer_module
from server.ingest.consumer import FactConsumer, _take_waiting, ends_batch
from server.ingest.service import (
    CONSUMER,
    IngestConfig,
    handle_fact_batch,
    handle_fact_message,
)
from server.models import Item, ItemObservation, OutboxMessage, ProcessedEvent, StoreVisit
from tests.server.ingest.support import Seeded, committed_engine_fixture, seed
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemMoved,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
    dump_fact,
    make_event_id,
)
from vitrine.contracts.ids import Epc, GatewayId, Gtin, StoreId
from vitrine.contracts.topics import fact_topic
from vitrine.runtime.mqtt import MqttTarget

CONFIG = IngestConfig(footfall_key=b"batch-test-footfall-key")
#: The serial number the test trigger refuses.
REFUSED = "refused-by-the-database"


@pytest.fixture(scope="module")
def committed_engine(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    for engine in committed_engine_fixture(backend, request, tmp_path_factory):
        _refuse_serial(engine)
        yield engine


def _refuse_serial(engine: Engine) -> None:
    """A trigger refusing an item with serial :data:`REFUSED`: a real constraint error."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_serial BEFORE INSERT ON items "
                f"WHEN NEW.serial = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_serial() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.serial = '{REFUSED}' THEN RAISE EXCEPTION 'refused' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_serial BEFORE INSERT ON items "
                "FOR EACH ROW EXECUTE FUNCTION refuse_serial()"
            )


class Recording(FactConsumer):
    """The consumer, its acknowledgements recorded (never connected to a broker)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(
            engine,
            MqttTarget("127.0.0.1", 1),
            CONFIG,
            client_id=f"test-batch-{uuid.uuid4().hex[:8]}",
            on_committed=self._woken,
            batch_max=200,  # batches are off by default (consumer.BATCH_MAX); tested here
        )
        self.acked: list[int] = []
        self.wakes = 0

    def _acknowledge(self, generation: int, mid: int, qos: int, outcome: str) -> None:
        self.acked.append(mid)
        super()._acknowledge(generation, mid, qos, outcome)

    def _woken(self) -> None:
        self.wakes += 1


class Facts:
    """Facts of one store, as the gateway publishes them."""

    def __init__(self, s: Seeded) -> None:
        self.s = s
        self.store = StoreId(s.store)
        self.t = datetime.now(UTC) - timedelta(minutes=5)
        self.token = s.token(self.t)
        self.n = 0

    def _base(self) -> dict[str, Any]:
        self.n += 1
        return {
            "event_id": make_event_id(self.store, "batch", self.n),
            "store": self.store,
            "gateway": GatewayId("gw-1"),
            "occurred_at": self.t + timedelta(seconds=self.n),
        }

    def arrived(self, epc: str, zone: str = "women", serial: str | None = None) -> ItemArrived:
        return ItemArrived(
            **self._base(),
            epc=Epc(epc),
            gtin=Gtin(self.s.gtin_a_m),
            serial=serial,
            zone=zone,
            rack="r3" if zone == "women" else None,
        )

    def moved(self, epc: str, frm: str, zone: str) -> ItemMoved:
        return ItemMoved(
            **self._base(), epc=Epc(epc), gtin=Gtin(self.s.gtin_a_m), from_zone=frm, zone=zone
        )

    def entered(self) -> ShopperEntered:
        return ShopperEntered(**self._base(), device=self.token, device_kind="app", zone="entrance")

    def to(self, frm: str, zone: str) -> ShopperZoneChanged:
        return ShopperZoneChanged(
            **self._base(), device=self.token, device_kind="app", from_zone=frm, zone=zone
        )

    def left(self) -> ShopperLeft:
        return ShopperLeft(**self._base(), device=self.token, device_kind="app", last_zone="exit")

    def epc(self, i: int) -> str:
        return f"30399{self.store[-8:].upper()}{i:011X}"


def _work(facts: list[Fact]) -> list[tuple[int, int, int, str, bytes]]:
    """Facts as delivered on connection 0 (never live here: the acks are counted, not sent)."""
    return [
        (0, mid, 1, fact_topic(f.store, f.kind), dump_fact(f)) for mid, f in enumerate(facts, 1)
    ]


def _applied(engine: Engine, facts: list[Fact]) -> set[str]:
    ids = [f.event_id for f in facts]
    with Session(engine) as db:
        return set(
            db.exec(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == CONSUMER, col(ProcessedEvent.event_id).in_(ids)
                )
            )
        )


def test_a_batch_is_one_transaction_in_order_then_acked(committed_engine: Engine) -> None:
    s = seed(committed_engine)
    f = Facts(s)
    epc = f.epc(1)
    facts: list[Fact] = [
        f.arrived(epc),
        f.entered(),
        f.moved(epc, "women", "fit-1"),
        f.to("entrance", "women"),
        f.moved(epc, "fit-1", "back"),
        f.left(),
    ]
    consumer = Recording(committed_engine)
    consumer.process(_work(facts))
    assert consumer.acked == [1, 2, 3, 4, 5, 6]
    assert consumer.counts == {"applied": 6}
    assert consumer.batches == 1
    assert consumer.wakes == 1
    with Session(committed_engine) as db:
        item = db.get(Item, epc)
        assert item is not None and item.zone_id == "back"
        zones = db.exec(
            select(ItemObservation.zone_id)
            .where(ItemObservation.epc == epc)
            .order_by(col(ItemObservation.occurred_at))
        ).all()
        assert zones == ["women", "fit-1", "back"]
        visit = db.exec(select(StoreVisit).where(StoreVisit.profile_id == s.profile_id)).one()
        assert visit.ended_at is not None and visit.last_zone_id == "exit"
        kinds = [
            m.topic.rsplit("/", 1)[1]
            for m in db.exec(
                select(OutboxMessage)
                .where(OutboxMessage.stream == f"shopper:{s.profile_id}")
                .order_by(col(OutboxMessage.stream_seq))
            )
        ]
        assert kinds[0] == "guidance" and "visit_closed" in kinds
    # Redelivered after the commit (a crash before the acks reached the broker):
    # every fact is a duplicate, nothing is written twice.
    again = Recording(committed_engine)
    again.process(_work(facts))
    assert again.counts == {"duplicate": 6} and again.acked == [1, 2, 3, 4, 5, 6]
    assert again.wakes == 0


def test_a_bad_fact_in_a_batch_is_dead_lettered_alone(committed_engine: Engine) -> None:
    s = seed(committed_engine)
    f = Facts(s)
    facts: list[Fact] = [
        f.arrived(f.epc(1)),
        f.arrived(f.epc(2)),
        f.arrived(f.epc(3), serial=REFUSED),
        f.arrived(f.epc(4)),
        f.entered(),
    ]
    work = _work(facts)
    invalid = (0, 6, 1, fact_topic(f.store, "item_arrived"), b'{"not": "a fact"}')
    consumer = Recording(committed_engine)
    consumer.process([*work[:2], invalid, *work[2:]])

    assert consumer.batches == 0  # the batch rolled back; its facts went one by one
    assert consumer.acked == [1, 2, 6, 3, 4, 5]
    assert consumer.counts == {"applied": 4, "dead_letter": 2}
    assert _applied(committed_engine, facts) == {facts[i].event_id for i in (0, 1, 3, 4)}
    with Session(committed_engine) as db:
        assert db.get(Item, f.epc(3)) is None
        observed = db.exec(
            select(ItemObservation.epc).where(ItemObservation.store_id == s.store)
        ).all()
        assert sorted(observed) == sorted([f.epc(1), f.epc(2), f.epc(4)])  # once each
        letters = db.exec(
            select(OutboxMessage).where(OutboxMessage.stream == f"deadletter:{s.store}")
        ).all()
        assert len(letters) == 2
        assert sum(b"processing failed" in m.payload for m in letters) == 1
        assert sum(b"invalid fact" in m.payload for m in letters) == 1
        guidance = db.exec(
            select(OutboxMessage).where(
                OutboxMessage.stream == f"shopper:{s.profile_id}",
                col(OutboxMessage.topic).endswith("/guidance"),
            )
        ).all()
        assert len(guidance) == 1


def test_a_batch_during_a_database_outage_is_held_then_applied_once(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "DB_RETRY_INITIAL_S", 0.01)
    monkeypatch.setattr(consumer_module, "DB_RETRY_MAX_S", 0.05)
    s = seed(committed_engine)
    f = Facts(s)
    facts: list[Fact] = [*(f.arrived(f.epc(i)) for i in range(5)), f.entered()]
    consumer = Recording(committed_engine)
    attempts = 0
    acked_while_away: list[list[int]] = []

    def away(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The database is away for the first three attempts, at the batch's
        # commit (everything written, nothing committed).
        nonlocal attempts
        if statement.startswith(("COMMIT", "INSERT INTO processed_events")) and attempts < 3:
            attempts += 1
            acked_while_away.append(list(consumer.acked))
            raise sa_exc.OperationalError(statement, None, ConnectionError("database away"))

    sa.event.listen(committed_engine, "before_cursor_execute", away)
    try:
        consumer.process(_work(facts))
    finally:
        sa.event.remove(committed_engine, "before_cursor_execute", away)
    assert attempts == 3
    assert acked_while_away == [[], [], []]
    assert consumer.batches == 1  # the batch itself was retried, not split
    assert consumer.acked == [1, 2, 3, 4, 5, 6]
    assert consumer.counts == {"applied": 6}
    assert _applied(committed_engine, facts) == {x.event_id for x in facts}
    with Session(committed_engine) as db:
        assert (
            len(db.exec(select(StoreVisit).where(StoreVisit.profile_id == s.profile_id)).all()) == 1
        )


def test_stopping_during_an_outage_leaves_the_batch_unacked(committed_engine: Engine) -> None:
    s = seed(committed_engine)
    f = Facts(s)
    facts: list[Fact] = [f.arrived(f.epc(i)) for i in range(3)]
    consumer = Recording(committed_engine)

    def away(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        consumer._stop.set()  # a SIGTERM while the database is away
        raise sa_exc.OperationalError(statement, None, ConnectionError("database away"))

    sa.event.listen(committed_engine, "before_cursor_execute", away)
    try:
        consumer.process(_work(facts))
    finally:
        sa.event.remove(committed_engine, "before_cursor_execute", away)
    assert consumer.acked == [] and not consumer.counts
    assert _applied(committed_engine, facts) == set()


def test_a_worker_takes_what_is_waiting_and_never_waits() -> None:
    work: queue.Queue[tuple[int, int, int, str, bytes] | None] = queue.Queue()
    one = (0, 1, 1, "t", b"")
    assert _take_waiting(work, one, 200) == ([one], False)  # alone, at once
    for mid in range(2, 300):
        work.put((0, mid, 1, "t", b""))
    batch, stopping = _take_waiting(work, one, 200)
    assert [w[1] for w in batch] == list(range(1, 201)) and not stopping
    work.put(None)
    batch, stopping = _take_waiting(work, (0, 0, 1, "t", b""), 200)
    assert [w[1] for w in batch] == [0, *range(201, 300)] and stopping


# -- equivalence: any interleaving, any batching, duplicates → the one-by-one state --------

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOW = AT + timedelta(minutes=10)
#: Columns filled from a random id or the wall clock, not from the facts.
UNSTABLE = {
    ("item_observations", "id"),
    ("profile_interactions", "id"),
    ("outbox", "created_at"),
}


@pytest.fixture(scope="module")
def template() -> Iterator[tuple[Path, Seeded]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        engine = make_engine(f"sqlite:///{path}")
        seeded = seed(engine)
        engine.dispose()  # the last connection checkpoints the WAL into the file
        yield path, seeded


def _pool(s: Seeded) -> list[tuple[str, bytes]]:
    f = Facts(s)
    f.t = AT
    f.token = s.token(AT + timedelta(seconds=10))
    e1, e2 = f.epc(1), s.epcs_a_m[0]
    facts: list[Fact] = [
        f.arrived(e1),
        f.moved(e1, "women", "fit-1"),
        f.moved(e2, "women", "fit-1"),
        f.entered(),
        f.to("entrance", "fit-1"),
        f.moved(e2, "fit-1", "till-1"),
        f.to("fit-1", "till-1"),
        f.left(),
    ]
    messages = [(fact_topic(x.store, x.kind), dump_fact(x)) for x in facts]
    messages.append((fact_topic(f.store, "item_arrived"), b"not json"))
    stray = dump_fact(f.arrived(e1)).replace(s.store.encode(), b"no-such-store")
    messages.append((fact_topic(StoreId("no-such-store"), "item_arrived"), stray))
    return messages


def _state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            columns = [
                c["name"]
                for c in sa.inspect(conn).get_columns(name)
                if (name, c["name"]) not in UNSTABLE
            ]
            rows: list[Any] = list(
                conn.execute(
                    sa.select(*[sa.column(c) for c in columns]).select_from(sa.table(name))
                )
            )
            state[name] = sorted(tuple(map(repr, r)) for r in rows)
    return state


def test_a_shopper_fact_ends_its_batch_and_item_facts_still_batch() -> None:
    """A phone waits on the shopper fact's commit, not on the item facts behind it."""
    store = StoreId("lyon-1")
    item, shopper = fact_topic(store, "item_arrived"), fact_topic(store, "shopper_entered")
    work: queue.Queue[tuple[int, int, int, str, bytes] | None] = queue.Queue()
    for mid in range(2, 6):
        work.put((0, mid, 1, item, b""))
    work.put((0, 6, 1, shopper, b""))
    for mid in range(7, 300):
        work.put((0, mid, 1, item, b""))
    batch, _ = _take_waiting(work, (0, 1, 1, item, b""), 200)
    assert [w[1] for w in batch] == [1, 2, 3, 4, 5, 6]  # the facts before it still go first
    first = work.get_nowait()
    assert first is not None
    batch, _ = _take_waiting(work, first, 200)
    assert [w[1] for w in batch] == list(range(7, 207))  # the opening's burst: full batches
    alone, _ = _take_waiting(work, (0, 0, 1, shopper, b""), 200)
    assert [w[1] for w in alone] == [0]
    assert ends_batch(fact_topic(store, "shopper_left"))
    assert not ends_batch(fact_topic(store, "item_departed"))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_batching_of_any_interleaving_equals_one_by_one(
    template: tuple[Path, Seeded], data: st.DataObject
) -> None:
    path, seeded = template
    pool = _pool(seeded)
    order = data.draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=14))
    cuts = data.draw(st.lists(st.integers(1, len(order)), max_size=5, unique=True))
    bounds = [0, *sorted(cuts), len(order)]
    messages = [pool[i] for i in order]
    with tempfile.TemporaryDirectory() as tmp:
        engines = []
        for name in ("one", "batch"):
            copy = Path(tmp) / f"{name}.db"
            shutil.copy(path, copy)
            engines.append(make_engine(f"sqlite:///{copy}"))
        one, batched = engines
        try:
            expected = [handle_fact_message(one, t, p, CONFIG, NOW) for t, p in messages]
            got: list[str] = []
            for a, b in itertools.pairwise(bounds):
                if a < b:
                    got += handle_fact_batch(batched, messages[a:b], CONFIG, NOW)
            assert got == expected
            assert _state(batched) == _state(one)
        finally:
            for engine in engines:
                engine.dispose()


def test_the_worker_thread_batches_a_backlog(committed_engine: Engine) -> None:
    """A worker busy on one fact finds the rest waiting and takes them in one batch."""
    s = seed(committed_engine)
    f = Facts(s)
    facts: list[Fact] = [f.arrived(f.epc(i)) for i in range(30)]
    consumer = Recording(committed_engine)
    work: queue.Queue[tuple[int, int, int, str, bytes] | None] = queue.Queue()
    for item in _work(facts):
        work.put(item)
    work.put(None)
    worker = threading.Thread(target=consumer._work, args=(work,))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert consumer.acked == list(range(1, 31))
    assert consumer.batches == 1


def test_sqlite_commits_survive_a_power_cut(tmp_path: Path) -> None:
    """``synchronous=FULL`` on every connection: the ack after commit relies on it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        engine.dispose()

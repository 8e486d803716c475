"""The fact consumer: MQTT in, a transaction per fact or per batch, acknowledge after commit.

Chain of custody (QUALITY.md): paho's ``manual_ack=True`` so that a QoS 1 fact is
acknowledged only once its effects are committed (or it was found a duplicate,
or dead-lettered); the MQTT 5 *receive maximum* bounds how many unacknowledged
facts the broker hands us (our intake bound); a persistent session
(``clean_start=False`` with a session expiry) keeps facts published while we
are away; we subscribe again on every CONNACK (a broker that lost its state
answers ``session_present=0``).

Work is partitioned by store: each store's facts go to one worker thread, in
arrival order, so a store's facts are applied in order; several workers serve
several stores in parallel. A free worker takes every fact already waiting in
its queue (up to :data:`BATCH_MAX`, never waiting for more) and applies them in
order in one transaction, acknowledging them all after its commit
(:meth:`FactConsumer.process`, docs/engine.md "Batches"). Across machines the
same partitioning is done by the broker (shared subscriptions per shard of
stores, ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import sqlalchemy.exc as sa_exc
from sqlalchemy.engine import Engine
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from server.ingest.service import (
    IngestConfig,
    dead_letter,
    handle_fact_batch,
    handle_fact_message,
)
from vitrine.contracts.topics import TopicError, facts_subscription, parse_topic
from vitrine.runtime.mqtt import ConnectionAcks, MqttTarget, make_client

__all__ = ["FactConsumer", "ends_batch", "is_fact_error", "is_retryable"]

log = logging.getLogger(__name__)

#: Longest wait between reconnection attempts (paho doubles from 1 s up to this):
#: a restarted broker is found again within seconds.
RECONNECT_MAX_S = 5

#: Unacknowledged facts in flight to us: a few hundred milliseconds of a
#: store's offered facts at our per-fact transaction cost, so a crash re-reads
#: little and the broker, not our memory, holds a burst.
RECEIVE_MAXIMUM = 100
#: Facts waiting per worker. The receive maximum above does not bound intake
#: (Mosquitto 2.0.11 releases a whole new window on each PUBACK, docs/gateway.md),
#: so this does: when full, paho's network thread waits (TCP backpressure) and
#: the burst stays in the broker's session queue. Safe because workers never wait
#: on the network thread. 2,000 facts is seconds of a busy store.
INTAKE_QUEUE = 2_000
#: How long the broker keeps our session (subscription + queued facts) while
#: we are down: a day covers a night's outage of the server.
SESSION_EXPIRY_S = 86_400
#: Back-off after a database error on a fact: from DB_RETRY_INITIAL_S, doubled
#: per failure up to DB_RETRY_MAX_S, plus up to DB_RETRY_JITTER_S at random. The
#: first retries are quick (a failover, a dropped pooled connection heal in
#: milliseconds), the cap means a restarted database is found within ~5 s while
#: an outage costs one attempt per 5 s per worker, and the jitter keeps several
#: ingest processes from retrying in step. Measured: a fast restart of
#: PostgreSQL 15 takes ~1-2 s here (tests/reliability/test_postgres_restart.py).
DB_RETRY_INITIAL_S = 0.1
DB_RETRY_MAX_S = 5.0
DB_RETRY_JITTER_S = 0.1
#: Attempts at a fact the database refuses for its own content (a constraint,
#: a value a column cannot hold) before it is dead-lettered: the second attempt
#: settles a race on the outbox's per-stream sequence (a unique constraint);
#: a fact that fails three times would fail forever and wedge its store.
FACT_DB_ERROR_ATTEMPTS = 3
#: Facts a worker applies in one transaction at most: the facts already waiting
#: in its queue when it is free, never waiting for more (a lone fact goes alone,
#: at once). Measured on this machine (tests/server/ingest/measure_ingest.py):
#: a batch of 200 item facts commits in ~0.2-0.4 s, so a store opening's burst
#: is absorbed in a few commits while the shopper fact behind it waits at most
#: one such batch; larger batches gain little (the commit is already amortised
#: over 200) and hold more facts unacked at a crash.
#:
#:
#: (Turned off for a while: the broker SIGKILL fault test then failed with
#: batches. The cause was not batching: a faster ingest let the test kill
#: Mosquitto before its first autosave, the broker came back without the
#: ingest's session and dropped the facts published before the ingest
#: subscribed again. The gateway now holds such facts, gateway.service
#: NO_MATCHING_SUBSCRIBERS, and acks only on the delivering connection,
#: vitrine.runtime.mqtt.ConnectionAcks.)
BATCH_MAX = 200

#: The kinds of the shopper facts (``shopper_entered``, ``shopper_zone_changed``,
#: ``shopper_dwelled``, ``shopper_left``; WIRE-FORMATS.md), the last segment of
#: their topic: what a phone waits on.
SHOPPER_FACT_PREFIX = "shopper_"

#: (connection generation, mid, qos, topic, payload)
_Work = tuple[int, int, int, str, bytes]
_T = TypeVar("_T")


def is_fact_error(exc: BaseException) -> bool:
    """The database refused the fact's own content: a constraint or a value a column refuses."""
    return isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError)


def is_retryable(exc: BaseException) -> bool:
    """A database error that says nothing about the fact: retry it until it goes.

    The database away or restarting (``OperationalError``: refused, terminated by
    the administrator, "the database system is shutting down"), a broken
    connection (``InterfaceError``, a connection SQLAlchemy invalidated), no
    pooled connection in time (``sqlalchemy.exc.TimeoutError``) and any other
    DBAPI error (a schema behind the code) — everything but :func:`is_fact_error`.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and not is_fact_error(exc)


class FactConsumer:
    """Owns one MQTT client and ``workers`` threads; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        engine: Engine,
        target: MqttTarget,
        config: IngestConfig,
        *,
        client_id: str = "vitrine-server-ingest",
        workers: int = 1,
        receive_maximum: int = RECEIVE_MAXIMUM,
        subscription: str | None = None,
        on_committed: Callable[[], None] | None = None,
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._engine = engine
        self._target = target
        self._config = config
        self._subscription = subscription or facts_subscription()
        self._on_committed = on_committed
        self._client, self._props = make_client(
            client_id,
            target,
            manual_ack=True,
            receive_maximum=receive_maximum,
            session_expiry_s=SESSION_EXPIRY_S,
        )
        # Retry the broker every second at first and never less often than every
        # RECONNECT_MAX_S: a broker restart is noticed within seconds.
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._acks = ConnectionAcks(self._client)
        self._queues: list[queue.Queue[_Work | None]] = [
            queue.Queue(maxsize=INTAKE_QUEUE) for _ in range(workers)
        ]
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"ingest-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        #: Outcomes so far (``applied``, ``duplicate``, ``dead_letter``, ``dropped``).
        self.counts: Counter[str] = Counter()
        #: Transactions that committed a batch of more than one fact.
        self.batches = 0
        self._batch_max = batch_max

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self._client.connect_async(
            self._target.host, self._target.port, clean_start=False, properties=self._props
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Stop taking facts, finish the one in hand, disconnect (unacked facts stay queued)."""
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        for q in self._queues:
            # When full, a worker finds the stop flag at its next item and returns.
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)
        for thread in self._threads:
            thread.join(timeout=10)

    # -- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("broker refused the connection", extra={"reason": str(rc)})
            return
        self._acks.connected()
        if self._acks.generation > 1 and not getattr(flags, "session_present", True):
            # The broker restarted without our session (a crash before its autosave):
            # facts published before we subscribe again find no subscriber. The
            # gateway holds those (PUBACK "no matching subscribers") and sends again.
            log.warning("the broker lost our session; subscribing again")
        # Every CONNACK: a broker that lost our session has no subscription for us.
        client.subscribe(self._subscription, qos=1)
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._acks.disconnected()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        store = parts[2] if len(parts) > 2 else ""
        index = zlib.crc32(store.encode()) % len(self._queues)
        item = (
            self._acks.generation,
            message.mid,
            message.qos,
            message.topic,
            bytes(message.payload),
        )
        while not self._stop.is_set():  # stopping: leave it unacknowledged, it comes back
            try:
                self._queues[index].put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- workers --------------------------------------------------------------------------

    def _work(self, work: queue.Queue[_Work | None]) -> None:
        while True:
            item = work.get()
            if item is None:
                return
            batch, stopping = _take_waiting(work, item, self._batch_max)
            self.process(batch)
            if stopping or self._stop.is_set():
                return  # what is left unacked is redelivered later

    def process(self, batch: list[_Work]) -> None:
        """Apply ``batch`` (facts in arrival order) and acknowledge what was committed.

        One fact: :meth:`_handle`, its own transaction (the latency path). More:
        one transaction for all (:func:`handle_fact_batch`), retried as a whole
        while the database is away (nothing acked meanwhile); if it fails for
        any other reason — a fact the database refuses, a bug — each fact is
        applied again on its own, so the bad one is dead-lettered alone and the
        others applied once (a fact the batch had applied was rolled back with it).
        """
        if len(batch) > 1:
            try:
                outcomes = self._retrying(
                    handle_fact_batch,
                    self._engine,
                    [(topic, payload) for _, _, _, topic, payload in batch],
                    self._config,
                )
            except Exception as exc:
                if self._stop.is_set():
                    return  # unacked: redelivered after the restart
                log.warning(
                    "batch failed; applying its facts one by one",
                    extra={"facts": len(batch), "error": type(exc).__name__},
                )
            else:
                self.batches += 1
                for (generation, mid, qos, _, _), outcome in zip(batch, outcomes, strict=True):
                    self._acknowledge(generation, mid, qos, outcome)
                self._committed(outcomes)
                return
        for generation, mid, qos, topic, payload in batch:
            alone = self._handle(topic, payload)
            if alone is None:
                if self._stop.is_set():
                    return  # stopping with the fact uncommitted: not acked, redelivered later
                continue  # neither applied nor dead-lettered (logged): unacked, never lost
            self._acknowledge(generation, mid, qos, alone)
            self._committed([alone])

    def _acknowledge(self, generation: int, mid: int, qos: int, outcome: str) -> None:
        self.counts[outcome] += 1
        # From an earlier connection: not acked; the broker resends it if it still has it.
        self._acks.ack(generation, mid, qos)

    def _committed(self, outcomes: Sequence[str]) -> None:
        if self._on_committed is not None and any(o != "duplicate" for o in outcomes):
            self._on_committed()

    def _handle(self, topic: str, payload: bytes) -> str | None:
        """The fact's outcome once committed; ``None`` if it must stay unacknowledged
        (stopping, or not even its dead letter could be written).

        A database error is retried with back-off (:data:`DB_RETRY_INITIAL_S`…)
        for as long as it lasts, the fact held unacknowledged; only a fact the
        database refuses for its content (:func:`is_fact_error`, after
        :data:`FACT_DB_ERROR_ATTEMPTS`) or that trips a bug is dead-lettered —
        and the dead letter is itself written with the same retries.
        """
        try:
            return self._retrying(handle_fact_message, self._engine, topic, payload, self._config)
        except Exception:
            if self._stop.is_set():
                return None
            # A bug or a fact the database refuses must not wedge the store's stream.
            log.exception("fact processing failed", extra={"topic": topic})
        try:
            return self._retrying(_dead_letter_failure, self._engine, topic, payload)
        except Exception:
            if not self._stop.is_set():
                log.exception("fact not dead-lettered either; left unacknowledged")
            return None

    def _retrying(self, fn: Callable[..., _T], *args: Any) -> _T:
        retrying = Retrying(
            retry=self._should_retry,
            wait=wait_exponential_jitter(
                multiplier=DB_RETRY_INITIAL_S, max=DB_RETRY_MAX_S, jitter=DB_RETRY_JITTER_S
            ),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        return retrying(fn, *args)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # a stop cuts the wait short

    def _should_retry(self, state: RetryCallState) -> bool:
        if self._stop.is_set() or state.outcome is None or not state.outcome.failed:
            return False
        exc = state.outcome.exception()
        if exc is None:
            return False
        if is_fact_error(exc):
            # A batch is not retried for a fact error: its facts are retried one by one.
            return (
                state.fn is not handle_fact_batch and state.attempt_number < FACT_DB_ERROR_ATTEMPTS
            )
        return is_retryable(exc)


def ends_batch(topic: str) -> bool:
    """A shopper fact closes the batch it is in: a phone is waiting for its guidance.

    The facts waiting behind it go in the next transaction, so its commit (and
    the outbox rows the phone and staff wait for) does not wait for theirs. The
    facts *before* it still go first (a store's facts apply in arrival order),
    and item facts — a store opening's burst — still batch up to the maximum.
    """
    return topic.rpartition("/")[2].startswith(SHOPPER_FACT_PREFIX)


def _take_waiting(
    work: queue.Queue[_Work | None], first: _Work, limit: int
) -> tuple[list[_Work], bool]:
    """``first`` and the facts already waiting behind it, up to ``limit`` or up to
    and including a shopper fact (:func:`ends_batch`); never waits.

    Returns the batch and whether a stop marker (``None``) was taken.
    """
    batch = [first]
    while len(batch) < limit and not ends_batch(batch[-1][3]):
        try:
            item = work.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    # The error's class only: a driver's message may quote the fact's values.
    log.warning(
        "database error on a fact; retrying",
        extra={
            "error": type(exc).__name__,
            "attempt": state.attempt_number,
            "retry_in_s": round(wait, 3),
        },
    )


def _dead_letter_failure(engine: Engine, topic: str, payload: bytes) -> str:
    try:
        store = parse_topic(topic).store
    except TopicError:
        return "dropped"
    dead_letter(engine, store, topic, payload, "processing failed", datetime.now(UTC))
    return "dead_letter"

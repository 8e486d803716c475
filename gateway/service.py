"""The gateway process: vendor topics in, store facts out, over MQTT.

Shape (chirpstack-gateway-bridge's: backends face the devices, an integration
faces MQTT, one place wires them)::

    paho network thread                    worker (the caller of run())
    on_message ─ stamp receive time ─► queue ─► route ─► adapters.parse ─► Pipeline
       (bounded; when full the network        │                                  │
        thread waits: TCP backpressure)       │      facts held ◄────────────────┘
                                              ▼            │
                              inputs since the checkpoint  │
                                              └─► checkpoint: state + outbox written
                                                  (fsync, rename) ─► publish the held
                                                  facts QoS 1 ─► ack those inputs

Delivery (QUALITY.md fact 1, "no data lost"): paho runs with
``manual_ack=True``. The worker writes a checkpoint (group commit, as a
database's log writer does) as soon as its intake queue is empty — nothing more
to batch — or once ``checkpoint_inputs`` inputs wait, or at the latest
``checkpoint_interval_s`` after the first input or fact it does not cover: the
pipeline state *after* the inputs handled since the last one, plus the outbox
(the facts and dead letters those inputs and timers produced, and older ones
not yet PUBACKed). Only then are the held facts published and the inputs
acknowledged, in order. An idle or lightly loaded gateway therefore publishes a
fact about one fsync after its input; under load, what arrives during one
fsync is the next checkpoint's batch. So after a ``kill -9``:

- an input not acknowledged either is not covered by the checkpoint (none of
  its facts was published; the restarted gateway handles it afresh, whatever
  its new receive time) or is covered and its acknowledgement was lost (the
  checkpoint lists its digest; the redelivered copy, flagged DUP, is
  acknowledged and not fed twice);
- every fact published is in the checkpoint or already PUBACKed; the restart
  republishes the outbox byte for byte, same ``event_id``, so the ingest drops
  any copy.

The intake queue bounds memory: when it is full the network thread waits, which
is safe because the worker never waits on the network thread. The broker's
receive maximum cannot be the bound: Mosquitto 2.0.11 sends a whole new window
after each PUBACK. Subscriptions are renewed on every CONNACK (fact 4). One bad
message never stops the loop: it goes to ``deadletter/gateway`` with its reason
and original bytes, with device identifiers redacted for BLE reports
(:func:`gateway.pipeline.identity.redact_input`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import queue
import re
import secrets
import tempfile
import threading
import time
from collections import Counter as Multiset
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from prometheus_client import Counter, Gauge

from gateway.adapters import AdapterError, parse
from gateway.pipeline import Pipeline, SaltSource, fold_facts
from gateway.pipeline.identity import redact_input
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, RfidRead
from gateway.routing import Router
from gateway.settings import GatewaySettings
from vitrine.contracts.facts import Fact, dump_fact
from vitrine.contracts.ids import IdError
from vitrine.contracts.layout import StoreLayout
from vitrine.contracts.topics import (
    TopicError,
    deadletter_topic,
    fact_topic,
    gateway_state_topic,
    health_topic,
    parse_topic,
)
from vitrine.runtime.mqtt import ConnectionAcks, make_client, parse_mqtt_url

__all__ = ["GatewayService", "random_salt", "scrub"]

log = logging.getLogger(__name__)

MESSAGES = Counter("vitrine_gateway_messages_total", "Vendor MQTT messages received")
READS = Counter("vitrine_gateway_reads_total", "Normalised adapter outputs", ["kind"])
FACTS = Counter("vitrine_gateway_facts_total", "Facts published", ["kind"])
DEADLETTERS = Counter("vitrine_gateway_deadletters_total", "Inputs dead-lettered", ["reason"])
INTAKE_WAITS = Counter(
    "vitrine_gateway_intake_waits_total",
    "Times the network thread waited for room in the full intake queue (backpressure)",
)
QUEUE_DEPTH = Gauge("vitrine_gateway_queue_depth", "Messages waiting for the worker")
UNACKED = Gauge(
    "vitrine_gateway_unacked_inputs", "Inputs handled and not yet covered by a checkpoint"
)
OUTBOX = Gauge("vitrine_gateway_outbox", "Facts and dead letters not yet PUBACKed by the broker")
CHECKPOINTS = Counter("vitrine_gateway_checkpoints_total", "State checkpoints written")
CHECKPOINT_SECONDS = Counter(
    "vitrine_gateway_checkpoint_seconds_total", "Time spent writing checkpoints (encode + fsync)"
)
UNHEARD = Counter(
    "vitrine_gateway_facts_unheard_total",
    "Facts the broker PUBACKed with 'no matching subscribers' (dropped): held, published again",
)
CONNECTS = Counter(
    "vitrine_gateway_connects_total",
    "Connections the broker accepted, each followed by a subscription to the readers' topics",
)
REDELIVERED = Counter(
    "vitrine_gateway_redelivered_skipped_total",
    "Redelivered inputs a checkpoint already covered: acknowledged, not fed again",
)

#: PUBACK reason code 16, "No matching subscribers" (MQTT 5 §3.4.2.1): the broker
#: took the fact and dropped it, nobody holds a subscription for it. Measured
#: (tests/reliability/test_broker_restart.py): Mosquitto SIGKILLed before its
#: first autosave comes back without the ingest's session, the gateway is back
#: first and its facts go nowhere until the ingest resubscribes (up to
#: server.ingest.consumer.RECONNECT_MAX_S later). So a fact so answered is not
#: delivered: it is held in the outbox (and the state file) and published again.
NO_MATCHING_SUBSCRIBERS = 16
#: Wait before publishing held facts again, doubled while they still go unheard
#: up to UNHEARD_RETRY_MAX_S: the ingest's reconnect back-off starts at 1 s, and
#: an absent consumer then costs one publish of the outbox per 30 s, not a storm.
UNHEARD_RETRY_S = 1.0
UNHEARD_RETRY_MAX_S = 30.0
#: Timers (departures, dwells, devices that left) run once a second: the
#: shortest delay is 5 s, so facts are at most 1 s late.
TICK_S = 1.0
#: How long a clean stop waits for outstanding PUBACKs before giving up (the
#: inputs stay unacknowledged and come back at the next start).
DRAIN_TIMEOUT_S = 10.0
#: MQTT keep-alive: a dead gateway's last will fires within 1.5x this.
KEEPALIVE_S = 15
#: The state keeps the digests of (at least) the last this-many inputs a
#: checkpoint covered: their acknowledgements may never reach the broker at a
#: kill -9 (our socket is reset, and the reset discards what still waits unread
#: in the broker's receive buffer). Measured in
#: tests/reliability/test_gateway_kill.py: up to 853 covered inputs redelivered
#: in six runs. Counted in inputs, not checkpoints: a group-committing gateway
#: may checkpoint every input. 10,000 is the old bound (20 checkpoints of 500),
#: the intake queue's size, ~12x the worst measured, and ~300 KB in a snapshot.
REDELIVERY_INPUTS = 10_000

_MAC = re.compile(r"(?i)\b[0-9a-f]{2}(?:[:-]?[0-9a-f]{2}){5}\b")


def scrub(text: str) -> str:
    """Remove anything shaped like a MAC address (for dead-letter reasons and logs)."""
    return _MAC.sub("<mac>", text)


def random_salt(period: int) -> bytes:
    """A fresh 256-bit salt per period, held only in memory (never written)."""
    return secrets.token_bytes(32)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    #: MQTT DUP flag: the broker sent this PUBLISH before (a redelivery).
    dup: bool = False
    #: The connection it came on (:class:`ConnectionAcks`): acked only on that one.
    generation: int = 0


@dataclass(slots=True)
class _Out:
    """A fact or dead letter: held until a checkpoint holds it, then published."""

    topic: str
    payload: bytes
    #: None until published (or after paho refused it: published again).
    info: mqtt.MQTTMessageInfo | None = None


@dataclass(slots=True)
class _Batch:
    """One checkpoint: its journal record, and what waits for that record to be durable."""

    record: bytes
    journal: BinaryIO
    #: Facts and dead letters to publish, inputs to acknowledge, once ``durable``.
    facts: list[_Out]
    inputs: list[_Inbound]
    durable: bool = False
    error: BaseException | None = None


#: Put on the intake queue by the journal writer: "a checkpoint is durable", so a
#: worker waiting for input wakes at once to publish its facts and acknowledge.
_WAKE = _Inbound("", b"", 0, 0, datetime.fromtimestamp(0, UTC))


def input_digest(topic: str, payload: bytes) -> str:
    """Identity of an input for recognising its redelivered copy (topic + payload)."""
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=12).hexdigest()


def _is_fact(topic: str) -> bool:
    try:
        return parse_topic(topic).channel == "facts"
    except TopicError:
        return False


def _delivery(infos: Iterable[mqtt.MQTTMessageInfo]) -> bool | None:
    """True when all are PUBACKed, None while any is pending, False if paho refused one."""
    for info in infos:
        try:
            if not info.is_published():
                return None
        except (ValueError, RuntimeError):  # paho could not queue it
            return False
    return True


class GatewayService:
    """Owns the MQTT client, the intake queue, the pipeline and the state file."""

    def __init__(
        self,
        settings: GatewaySettings,
        layout: StoreLayout,
        *,
        clock: Callable[[], datetime] = _utc_now,
        salt_source: SaltSource = random_salt,
    ) -> None:
        self.settings = settings
        self.layout = layout
        self.store = layout.store.id
        self._clock = clock
        self.pipeline = Pipeline(
            layout,
            settings.gateway_id,
            salt_source=salt_source,
            app_beacon_uuid=settings.app_beacon_uuid,
        )
        self.router = Router(layout)
        #: A layout handed over by :meth:`replace_layout`, applied by the worker.
        self._next_layout: StoreLayout | None = None
        self._layout_lock = threading.Lock()
        self.state_topic = gateway_state_topic(self.pipeline.store, settings.gateway_id)
        self.deadletter = deadletter_topic(self.pipeline.store, "gateway")
        self.state_file = Path(settings.state_dir) / f"gateway-{settings.gateway_id}.json"
        self.journal_file = self.state_file.with_suffix(".journal")
        #: The snapshot's generation; journal records of another one are stale.
        self._generation = 0
        self._journal: BinaryIO | None = None  # opened by save_state()
        self.connected = threading.Event()
        self._accepting = True
        self._published = threading.Condition()
        self._queue: queue.Queue[_Inbound] = queue.Queue(maxsize=settings.intake_queue)
        #: Inputs handled since the last checkpoint, in arrival order; acknowledged
        #: once the next checkpoint is written (MQTT 5 §4.6: PUBACKs in the order
        #: the PUBLISHes were received).
        self._pending: list[_Inbound] = []
        #: When the first input or fact not covered by a checkpoint came (monotonic).
        self._dirty_since: float | None = None
        #: The checkpoint the journal writer is appending and fsyncing (one at a time).
        self._inflight: _Batch | None = None
        self._writer_cond = threading.Condition()
        self._writer_todo: _Batch | None = None
        self._writer: threading.Thread | None = None  # started by the first checkpoint
        self._writer_stop = False
        #: Facts and dead letters produced since the last checkpoint: not published yet.
        self._held: list[_Out] = []
        #: In the journal or snapshot, not known to be PUBACKed (published, or to
        #: publish again); pruned and carried into each new snapshot.
        self._outbox: deque[_Out] = deque()
        #: Mids the broker PUBACKed with "no matching subscribers" (network thread adds).
        self._unheard: set[int] = set()
        self._unheard_lock = threading.Lock()
        #: No fact is published before this (monotonic) time: facts went unheard.
        self._hold_until = 0.0
        self._hold_s = UNHEARD_RETRY_S
        #: Digests of the inputs the last checkpoints covered (newest last), at
        #: least REDELIVERY_INPUTS of them; ``_covered_n`` counts them.
        self._covered: deque[list[str]] = deque()
        self._covered_n = 0
        #: Some outbox entry has no live publish (restored, or refused by paho).
        self._unsent = False
        #: Restored from the state file: covered inputs whose DUP copy to skip.
        self._skip: Multiset[str] = Multiset()
        #: Handled on an earlier connection, ack not sent (ConnectionAcks): DUP copy to skip.
        #: Not saved: a checkpoint covers them, so a restart finds them in ``_covered``.
        self._stale: Multiset[str] = Multiset()
        target = parse_mqtt_url(settings.mqtt_url)
        self.client, self._connect_props = make_client(
            f"vitrine-gateway-{self.store}-{settings.gateway_id}",
            target,
            manual_ack=True,
            receive_maximum=settings.receive_maximum,
            session_expiry_s=settings.session_expiry_s,
        )
        self._target = target
        self.client.will_set(self.state_topic, b"offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self._acks = ConnectionAcks(self.client)

    def replace_layout(self, layout: StoreLayout) -> None:
        """Use ``layout`` from the next input on (thread-safe; the refresher calls it).

        The worker applies it between two inputs (:meth:`_apply_layout`): routes,
        antenna/scanner → zone maps and subscriptions change; the pipeline's
        items, devices and timers stay. A layout for another store raises
        ``ValueError``: the client id, topics and state file are the store's.
        """
        if layout.store.id != self.store:
            raise ValueError(f"a layout for store {layout.store.id}, not {self.store}")
        with self._layout_lock:
            self._next_layout = layout

    def _apply_layout(self) -> None:
        with self._layout_lock:
            layout, self._next_layout = self._next_layout, None
        if layout is None:
            return
        before = set(self.router.subscriptions)
        self.pipeline.replace_layout(layout)
        self.router = Router(layout)  # _on_connect reads it: one attribute, swapped whole
        self.layout = layout
        after = self.router.subscriptions
        added = [f for f in after if f not in before]
        removed = sorted(before - set(after))
        # Not connected: the next CONNACK subscribes the new set; a filter removed
        # meanwhile stays in the broker session and its messages are dead-lettered
        # as no_route.
        if added:
            self.client.subscribe([(f, SubscribeOptions(qos=1)) for f in added])
        if removed:
            self.client.unsubscribe(removed)
        log.info(
            "layout applied",
            extra={"store": self.store, "subscribed": added, "unsubscribed": removed},
        )

    # ------------------------------------------------------------ paho thread
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection", extra={"reason": str(reason_code)})
            return
        self._acks.connected()
        client.publish(self.state_topic, b"online", qos=1, retain=True)
        # Every CONNACK: a broker that lost its state answers session_present=0
        # and has forgotten our subscriptions (QUALITY.md fact 4).
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.router.subscriptions])
        CONNECTS.inc()  # after the SUBSCRIBE is queued: a reconnect counted is subscribed
        self.connected.set()
        log.info(
            "connected",
            extra={
                "store": self.store,
                "session_present": bool(getattr(flags, "session_present", False)),
                "subscriptions": self.router.subscriptions,
            },
        )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected.clear()
        self._acks.disconnected()
        log.warning("disconnected", extra={"store": self.store, "reason": str(reason_code)})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = _Inbound(
            msg.topic,
            bytes(msg.payload),
            msg.mid,
            msg.qos,
            self._clock(),
            bool(msg.dup),
            self._acks.generation,
        )
        waited = False
        while self._accepting:  # when stopping, leave it unacknowledged: it comes back
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not waited:
                    waited = True
                    INTAKE_WAITS.inc()
                    log.info("intake queue full: backpressure", extra={"store": self.store})

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        if getattr(reason_code, "value", 0) == NO_MATCHING_SUBSCRIBERS:
            with self._unheard_lock:
                self._unheard.add(mid)
        with self._published:
            self._published.notify_all()

    # ----------------------------------------------------------------- worker
    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then drain, save state and go offline."""
        self._restore()
        # A new generation at once: the restored journal is folded in, never replayed twice.
        self.save_state()
        self.client.connect_async(
            self._target.host,
            self._target.port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=self._connect_props,
        )
        self.client.loop_start()
        try:
            now = time.monotonic()
            next_tick, next_health = now + TICK_S, now
            next_state = now + self.settings.state_interval_s
            interval = self.settings.checkpoint_interval_s
            while not stop.is_set():
                self._apply_layout()
                try:
                    # Short while a checkpoint is owed, so it is written on time
                    # (the writer's _WAKE ends the wait when one becomes durable).
                    item = self._queue.get(timeout=0.02 if self._dirty_since else 0.2)
                except queue.Empty:
                    pass
                else:
                    if item is not _WAKE:
                        self._handle(item)
                QUEUE_DEPTH.set(self._queue.qsize())
                self._collect(wait=False)
                if self._unheard:
                    # A fact went unheard: mark it now, wherever it sits in the
                    # outbox. _collect looks at the head only, and only when a
                    # checkpoint lands; once input stops, none does, and a fact
                    # behind the head would wait for the periodic prune.
                    self._prune_outbox()
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK_S
                    self._tick()
                if self._dirty_since is not None:
                    self._group_commit(now - self._dirty_since >= interval)
                elif self._unsent and self.connected.is_set() and not self._holding(now):
                    self._republish()
                if now >= next_health and self.connected.is_set():
                    next_health = now + self.settings.health_interval_s
                    self._publish_health()
                if now >= next_state:
                    next_state = now + self.settings.state_interval_s
                    self._checkpoint()
                    self._prune_outbox()
                    self.save_state()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._accepting = False
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _WAKE:
                self._handle(item)
        self._checkpoint()
        while self._outbox and self.connected.is_set() and time.monotonic() < deadline:
            if self._unsent and not self._holding(time.monotonic()):
                self._republish()
            with self._published:
                self._published.wait(0.05)
            self._prune_outbox()
        if self._outbox:
            # Kept in the state file: the next start publishes them again.
            log.warning(
                "stopping with facts not yet PUBACKed",
                extra={"store": self.store, "count": len(self._outbox)},
            )
        self.save_state()
        self._stop_writer()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self.connected.is_set():
            info = self.client.publish(self.state_topic, b"offline", qos=1, retain=True)
            self._wait([info], deadline=time.monotonic() + 5)
        self.client.disconnect()
        self.client.loop_stop()
        log.info("stopped", extra={"store": self.store})

    def _handle(self, item: _Inbound) -> None:
        MESSAGES.inc()
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        self._pending.append(item)
        if self._already_handled(item):
            REDELIVERED.inc()
            return
        route = self.router.route(item.topic)
        reason: str | None = None
        code = "rejected"
        outputs: list[AdapterOutput] = []
        facts: list[Fact] = []
        if route is None:
            reason, code = "no reader or scanner is configured for this topic", "no_route"
        else:
            try:
                outputs = parse(route.format, item.payload, topic=item.topic, reader=route.reader)
            except AdapterError as exc:
                outputs, reason = list(exc.partial), str(exc)
            try:
                facts = self.pipeline.feed_many(outputs, item.received_at, reader=route.reader)
            except Exception as exc:  # one bad message never stops the loop
                log.exception("pipeline failed on a message", extra={"store": self.store})
                reason, code = f"internal error: {type(exc).__name__}", "internal"
        # One labelled increment per kind, not per read: the per-read lookup was 13 %
        # of the worker's time on 50-read batches (py-spy, docs/performance.md).
        kinds: dict[str, int] = {}
        for out in outputs:
            kind = _kind(out)
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in kinds.items():
            READS.labels(kind).inc(n)
        self._hold_facts(facts)
        if reason is not None:
            self._dead_letter(item, scrub(reason), code)
        UNACKED.set(self._unacked())

    def _unacked(self) -> int:
        """Inputs handled and not yet acknowledged (pending, or in the checkpoint being written)."""
        return len(self._pending) + (0 if self._inflight is None else len(self._inflight.inputs))

    def _tick(self) -> None:
        # Timer facts answer no input: held like the others, in the outbox until PUBACKed.
        facts = self.pipeline.tick(self._clock())
        if facts:
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
            self._hold_facts(facts)

    def _hold_facts(self, facts: list[Fact]) -> None:
        for fact in facts:
            self._held.append(_Out(fact_topic(self.pipeline.store, fact.kind), dump_fact(fact)))
            FACTS.labels(fact.kind).inc()

    # ------------------------------------------------------------- checkpoint
    def _group_commit(self, overdue: bool) -> None:
        """Start a checkpoint if one is due and the journal writer is free.

        Group commit: due as soon as nothing more is queued to batch with (an
        idle or lightly loaded gateway publishes a fact about one fsync after
        its input), or once ``checkpoint_inputs`` wait, or when ``overdue`` (the
        interval's bound on a queue that never empties). While the writer
        fsyncs the last one, the worker goes on handling input: what arrives
        meanwhile is the next batch. It waits for the writer only when the
        inputs not yet acknowledged (pending or in flight) reach
        ``checkpoint_inputs``, which keeps them at most that many: the bound on
        a ``kill -9``'s re-read (docs/reliability.md, finding 2).
        """
        limit = self.settings.checkpoint_inputs
        if self._inflight is not None:
            if self._unacked() < limit:
                return
            self._collect(wait=True)
        if overdue or len(self._pending) >= limit or self._queue.empty():
            self._begin_checkpoint()
            if self._unacked() >= limit:  # one more input would leave too many unacknowledged
                self._collect(wait=True)

    def _already_handled(self, item: _Inbound) -> bool:
        """A DUP copy of an input handled before whose acknowledgement never reached
        the broker: after a restart (:attr:`_skip`, its effect in the restored state
        and its facts in the outbox) or a reconnect (:attr:`_stale`)."""
        if not (self._skip or self._stale):
            return False
        if not item.dup:  # the broker has finished resending: nothing more to skip
            self._skip.clear()
            self._stale.clear()
            return False
        digest = input_digest(item.topic, item.payload)
        for seen in (self._skip, self._stale):
            if seen[digest] > 0:
                seen[digest] -= 1
                return True
        return False

    def _checkpoint(self) -> None:
        """Checkpoint everything handled so far and wait until it is published and acknowledged."""
        self._collect(wait=True)
        if self._dirty_since is not None:
            self._begin_checkpoint()
            self._collect(wait=True)

    def _begin_checkpoint(self) -> None:
        """Hand the journal writer a record that covers the pending inputs.

        Order matters: the journal record first, fsynced by the writer (a crash
        before leaves the inputs unacknowledged and their facts unpublished:
        both come back as if never handled); only then, in :meth:`_collect`, the
        held facts are published (a crash now: the restart publishes the
        journal's facts again, same bytes and ids), then the acknowledgements
        sent (a crash now: the covered inputs come back flagged DUP and are
        skipped). One record is in flight at a time, so records, publications
        and acknowledgements keep the inputs' order.
        """
        assert self._inflight is None, "one checkpoint in flight at a time"
        started = time.perf_counter()
        covered = [input_digest(i.topic, i.payload) for i in self._pending]
        record = {
            "generation": self._generation,
            "sequences": self.pipeline.sequences(),
            "facts": [[out.topic, out.payload.decode()] for out in self._held],
            "covered": covered,
        }
        assert self._journal is not None, "run() saves the state before any checkpoint"
        batch = _Batch(orjson.dumps(record) + b"\n", self._journal, self._held, self._pending)
        if covered:
            self._covered.append(covered)
            self._covered_n += len(covered)
            while self._covered_n - len(self._covered[0]) >= REDELIVERY_INPUTS:
                self._covered_n -= len(self._covered.popleft())
        self._held, self._pending, self._dirty_since = [], [], None
        self._inflight = batch
        CHECKPOINT_SECONDS.inc(time.perf_counter() - started)
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_journal, name="gateway-journal", daemon=True
            )
            self._writer.start()
        with self._writer_cond:
            self._writer_todo = batch
            self._writer_cond.notify_all()

    def _write_journal(self) -> None:
        """The journal writer thread: append and fsync each record handed over, in order.

        Off the worker because an fsync is ~1 ms on the quiet machine and ~6 ms
        loaded (docs/performance.md): on the worker, a checkpoint as soon as the
        queue empties stalled it 0.4-0.6 s per 20,000-message drain. The fsync
        releases the GIL.
        """
        while True:
            with self._writer_cond:
                while self._writer_todo is None and not self._writer_stop:
                    self._writer_cond.wait()
                batch = self._writer_todo
            if batch is None:  # stopping, and nothing left to write
                return
            started = time.perf_counter()
            try:
                batch.journal.write(batch.record)
                batch.journal.flush()
                os.fsync(batch.journal.fileno())
            except BaseException as exc:  # re-raised on the worker by _collect
                batch.error = exc
            CHECKPOINT_SECONDS.inc(time.perf_counter() - started)
            with self._writer_cond:
                batch.durable = True
                self._writer_todo = None
                self._writer_cond.notify_all()
            # A full queue: the worker is busy with input and collects on its next turn.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_WAKE)

    def _stop_writer(self) -> None:
        if self._writer is None:
            return
        with self._writer_cond:
            self._writer_stop = True
            self._writer_cond.notify_all()
        self._writer.join()
        self._writer, self._writer_stop = None, False

    def _collect(self, *, wait: bool) -> None:
        """Once the checkpoint in flight is durable: publish its facts, acknowledge its inputs."""
        batch = self._inflight
        if batch is None:
            return
        with self._writer_cond:
            while not batch.durable:
                if not wait:
                    return
                self._writer_cond.wait()
        self._inflight = None
        if batch.error is not None:
            raise batch.error
        new = batch.facts
        self._outbox.extend(new)
        CHECKPOINTS.inc()
        if not self.connected.is_set() or self._holding(time.monotonic()):
            self._unsent = self._unsent or bool(new)
        elif self._unsent:
            self._republish()  # the whole outbox: rare (after a restore or a refusal)
        else:
            for out in new:
                out.info = self.client.publish(out.topic, out.payload, qos=1)
        # PUBACKs come back in order: dropping the delivered head keeps this O(new).
        while self._outbox and self._outbox[0].info is not None:
            head = self._outbox[0]
            delivered = self._delivered(head)
            if delivered is False:
                head.info = None
                self._unsent = True
                # Marks every other entry gone unheard or refused so far, and holds.
                self._prune_outbox(unheard=int(_is_fact(head.topic)))
            if not delivered:
                break
            self._outbox.popleft()
            self._hold_s = UNHEARD_RETRY_S  # heard: the next hold starts short again
        OUTBOX.set(len(self._outbox))
        for item in batch.inputs:
            if not self._acks.ack(item.generation, item.mid, item.qos):
                # From an earlier connection, so not acked (ConnectionAcks): the broker
                # resends it flagged DUP if it still has it; that copy is skipped here
                # and acked, as after a restore.
                self._stale[input_digest(item.topic, item.payload)] += 1
        UNACKED.set(self._unacked())

    def _prune_outbox(self, unheard: int = 0) -> None:
        """Forget what the broker has PUBACKed; mark what paho refused, and facts that
        went unheard (``unheard`` more already marked), for another try."""
        keep: deque[_Out] = deque()
        waiting: set[int] = set()  # mids of entries whose PUBACK has not come yet
        for out in self._outbox:
            if out.info is not None:
                delivered = self._delivered(out)
                if delivered:
                    continue
                if delivered is False:
                    unheard += _is_fact(out.topic)
                    out.info = None
                    self._unsent = True
                else:
                    waiting.add(out.info.mid)
            keep.append(out)
        with self._unheard_lock:
            # Every other mid is no outbox entry's: a health report or the state
            # line nobody subscribes to, or a copy published again since. Kept, it
            # would mark the fact that reuses the mid (after 65,535 publishes).
            # Safe against a PUBACK racing this scan: one for an entry seen
            # waiting keeps its mid; one seen delivered had run on_publish first.
            self._unheard &= waiting
        if unheard:
            self._hold(unheard)
        self._outbox = keep
        OUTBOX.set(len(keep) + len(self._held))

    def _delivered(self, out: _Out) -> bool | None:
        """Like :func:`_delivery` for one entry, and a fact nobody was subscribed to is not."""
        assert out.info is not None
        delivered = _delivery((out.info,))
        if delivered and self._unheard:
            with self._unheard_lock:
                unheard = out.info.mid in self._unheard
                self._unheard.discard(out.info.mid)  # mids are reused: forget it once seen
            if unheard and _is_fact(out.topic):
                return False
        return delivered

    def _holding(self, now: float) -> bool:
        return now < self._hold_until

    def _hold(self, count: int) -> None:
        """Facts went unheard: publish none before the back-off has passed."""
        UNHEARD.inc(count)
        log.warning(
            "facts dropped by the broker for want of a subscriber: held and sent again",
            extra={"store": self.store, "count": count, "retry_in_s": self._hold_s},
        )
        self._hold_until = time.monotonic() + self._hold_s
        self._hold_s = min(self._hold_s * 2, UNHEARD_RETRY_MAX_S)

    def _republish(self) -> None:
        """Publish, in order, every outbox entry not published yet (or refused by paho)."""
        for out in self._outbox:
            if out.info is None:
                out.info = self.client.publish(out.topic, out.payload, qos=1)
        self._unsent = False

    def _dead_letter(self, item: _Inbound, reason: str, code: str) -> None:
        DEADLETTERS.labels(code).inc()
        # A BLE report names a phone: no MAC or fingerprint leaves the gateway (docs/privacy.md).
        route = self.router.route(item.topic)
        scanner = route is not None and route.format == "espresense"
        topic, payload = redact_input(item.topic, item.payload, scanner=scanner)
        log.warning(
            "input dead-lettered",
            extra={"store": self.store, "topic": topic, "reason": reason},
        )
        body = {
            "reason": reason,
            "topic": topic,
            "payload_b64": base64.b64encode(payload).decode(),
            "received_at": item.received_at.isoformat(),
            "gateway": self.settings.gateway_id,
        }
        self._held.append(_Out(self.deadletter, orjson.dumps(body)))

    def _wait(self, infos: list[mqtt.MQTTMessageInfo], deadline: float) -> bool:
        """Block until the broker has PUBACKed every message, or ``deadline`` passes.

        Only at shutdown, once intake has stopped: the worker never waits on the
        network thread while it may be blocked on a full intake queue.
        """
        while (delivered := _delivery(tuple(infos))) is None:
            if time.monotonic() > deadline:
                return False
            with self._published:
                self._published.wait(0.05)
        return delivered

    def _publish_health(self) -> None:
        now = self._clock().timestamp()
        for report in self.pipeline.health.reports(now):
            try:
                topic = health_topic(self.pipeline.store, report["kind"], report["device"])
            except IdError:
                continue
            try:
                body = orjson.dumps(report)
            except (TypeError, orjson.JSONEncodeError):  # one bad report never stops the loop
                log.exception("health report not encodable", extra={"store": self.store})
                continue
            self.client.publish(topic, body, qos=1, retain=True)

    # ------------------------------------------------------------------ state
    def save_state(self) -> None:
        """Write a full snapshot atomically (temp file, fsync, rename), restart the journal.

        The pipeline snapshot, the outbox (topic and bytes of every fact or dead
        letter not known to be PUBACKed) and the digests of the inputs the last
        checkpoints covered, under a new generation: journal records of the
        old one are ignored from now on, so a crash between the rename and the
        truncation replays nothing twice. ``os.replace`` is atomic on POSIX (a
        reader sees the old file or the new one); the directory is fsynced so
        the rename itself survives a power cut.
        """
        if self._held or self._pending or self._inflight is not None:
            raise RuntimeError("save_state() with inputs or facts not yet journaled")
        directory = self.state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        self._generation += 1
        state = self.pipeline.snapshot()
        state["generation"] = self._generation
        state["outbox"] = [[out.topic, out.payload.decode()] for out in self._outbox]
        state["redelivered"] = [d for batch in self._covered for d in batch] + list(
            self._skip.elements()
        )
        data = orjson.dumps(state)
        fd, tmp = tempfile.mkstemp(prefix=".gateway-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if self._journal is not None:
            self._journal.close()
        self._journal = self.journal_file.open("wb")  # truncated: the snapshot holds it all

    def _restore(self) -> None:
        """Take back the last snapshot and fold in its journal's records, in order."""
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            generation = data.get("generation")
            outbox = [(str(topic), str(body)) for topic, body in data.get("outbox", [])]
            covered: list[list[str]] = [[str(d) for d in data.get("redelivered", [])]]
            for record in self._journal_records(generation):
                facts = [(str(topic), str(body)) for topic, body in record.get("facts", [])]
                fold_facts(
                    data, (orjson.loads(body) for topic, body in facts if "/facts/" in topic)
                )
                data.setdefault("sequences", {}).update(record.get("sequences", {}))
                outbox.extend(facts)
                covered.append([str(d) for d in record.get("covered", [])])
            self.pipeline.restore(data, self._clock())
            if isinstance(generation, int):
                self._generation = generation
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.error(
                "unreadable state file ignored",
                extra={"path": str(self.state_file), "error": str(exc)},
            )
            return
        self._outbox = deque(_Out(topic, body.encode()) for topic, body in outbox)
        self._unsent = bool(self._outbox)
        digests = [d for batch in covered for d in batch]
        self._skip = Multiset(digests[-REDELIVERY_INPUTS:])
        OUTBOX.set(len(self._outbox))
        log.info(
            "checkpoint restored",
            extra={"store": self.store, "outbox": len(self._outbox), "covered": len(self._skip)},
        )

    def _journal_records(self, generation: object) -> list[dict[str, Any]]:
        """The journal's complete records of ``generation`` (a torn last line is skipped:
        it was never fsynced, so its inputs were not acknowledged nor its facts published)."""
        try:
            lines = self.journal_file.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("generation") == generation:
                records.append(record)
        return records


def _kind(out: AdapterOutput) -> str:
    if isinstance(out, RfidRead):
        return "rfid"
    if isinstance(out, BleRead):
        return "ble"
    if isinstance(out, DeviceEvent):
        return "device_event"
    return "skipped"


def main(settings: GatewaySettings) -> int:
    """``vitrine gateway run``: serve until SIGTERM/SIGINT; 0 on a clean stop, 2 on bad config.

    The layout comes from ``settings.layout`` (a file, read once) or
    ``settings.layout_url`` (the server, cached and refreshed:
    :mod:`gateway.layout_source`); exactly one of them.
    """
    from gateway.layout_source import LayoutRefusedError, ServerLayout, redact
    from vitrine.runtime.layout_io import LayoutFileError, load_layout
    from vitrine.runtime.logs import configure_logging
    from vitrine.runtime.ops import OpsServer, Readiness, stop_event_on_signals
    from vitrine.runtime.settings import SettingsError

    configure_logging(settings.log_level, settings.log_format)
    source: ServerLayout | None = None
    service: GatewayService | None = None
    try:
        settings.validate_for_run()
        if (settings.layout is None) == (settings.layout_url is None):
            raise LayoutFileError(
                "give the layout as a file (--layout / VITRINE_LAYOUT) or the server's URL "
                "(--layout-url / VITRINE_LAYOUT_URL), exactly one"
            )
        if settings.layout is not None:
            service = GatewayService(settings, load_layout(settings.layout))
        else:
            assert settings.layout_url is not None
            token = settings.gateway_server_token
            source = ServerLayout.for_gateway(
                settings.layout_url,
                None if token is None else token.get_secret_value(),
                settings.state_dir,
                settings.gateway_id,
                settings.layout_refresh_s,
            )
    except (LayoutFileError, SettingsError, IdError, ValueError) as exc:
        log.error("cannot start the gateway", extra={"error": scrub(str(exc))})
        return 2
    stop = stop_event_on_signals()
    readiness = Readiness()
    started: list[GatewayService] = [] if service is None else [service]
    readiness.add("layout", lambda: bool(started))
    readiness.add("mqtt", lambda: bool(started) and started[0].connected.is_set())
    ops = OpsServer(settings.ops_host, settings.ops_port, readiness)
    ops.start()
    try:
        if source is not None:
            try:
                layout = source.first(stop)
                if layout is None:  # stopped before any layout came
                    return 0
                service = GatewayService(settings, layout)
            except (LayoutRefusedError, IdError, ValueError) as exc:
                log.error(
                    "cannot start the gateway",
                    extra={"error": scrub(str(exc)), "url": redact(source.client.url)},
                )
                return 2
            started.append(service)
            source.start_refresher(stop, service.replace_layout)
        assert service is not None
        service.run(stop)
    finally:
        ops.stop()
        if source is not None:
            source.close()
    return 0

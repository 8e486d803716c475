"""The gateway process: vendor topics in, store facts out, over MQTT.

Shape (chirpstack-gateway-bridge's: backends face the devices, an integration
faces MQTT, one place wires them)::

    paho network thread                    worker (the caller of run())
    on_message ─ stamp receive time ─► queue ─► route ─► adapters.parse ─► Pipeline
       (bounded; when full the network        │                                  │
        thread waits: TCP backpressure)       │       facts QoS 1 ◄──────────────┘
                                              └─► unacked inputs, in order ─► ack each
                                                  once all its facts are PUBACKed

Delivery (QUALITY.md fact 1): paho runs with ``manual_ack=True``; an input is
acknowledged only after every fact and dead letter it produced has been
PUBACKed by the broker, so a gateway killed mid-stream loses nothing: the broker
redelivers the unacknowledged inputs to the persistent session, and the
facts' deterministic ``event_id`` makes the replays harmless. The MQTT 5
intake queue bounds memory: when it is full the network thread waits, which is
safe because the worker never waits on the network thread (it publishes, moves
on, and acknowledges inputs in order as their PUBACKs arrive). The broker's
receive maximum cannot be the bound: Mosquitto 2.0.11 sends a whole new window
after each PUBACK. Subscriptions are renewed on every CONNACK
(fact 4). One bad message never stops the loop: it goes to
``deadletter/gateway`` with its reason and original bytes.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import re
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from prometheus_client import Counter, Gauge

from gateway.adapters import AdapterError, parse
from gateway.pipeline import Pipeline, SaltSource
from gateway.pipeline.identity import redact_input
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, RfidRead
from gateway.routing import Router
from gateway.settings import GatewaySettings
from vitrine.contracts.facts import Fact, dump_fact
from vitrine.contracts.ids import IdError
from vitrine.contracts.layout import StoreLayout
from vitrine.contracts.topics import deadletter_topic, fact_topic, gateway_state_topic, health_topic
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

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
    "vitrine_gateway_unacked_inputs", "Inputs handled whose facts await the broker's PUBACK"
)

#: Timers (departures, dwells, devices that left) run once a second: the
#: shortest delay is 5 s, so facts are at most 1 s late.
TICK_S = 1.0
#: How long a clean stop waits for outstanding PUBACKs before giving up (the
#: inputs stay unacknowledged and come back at the next start).
DRAIN_TIMEOUT_S = 10.0
#: MQTT keep-alive: a dead gateway's last will fires within 1.5x this.
KEEPALIVE_S = 15

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


@dataclass(frozen=True, slots=True)
class _Unacked:
    """An input handled, to acknowledge once every message it produced is PUBACKed."""

    mid: int
    qos: int
    infos: tuple[mqtt.MQTTMessageInfo, ...]


def _delivery(infos: tuple[mqtt.MQTTMessageInfo, ...]) -> bool | None:
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
        self.state_topic = gateway_state_topic(self.pipeline.store, settings.gateway_id)
        self.deadletter = deadletter_topic(self.pipeline.store, "gateway")
        self.state_file = Path(settings.state_dir) / f"gateway-{settings.gateway_id}.json"
        self.connected = threading.Event()
        self._accepting = True
        self._published = threading.Condition()
        self._queue: queue.Queue[_Inbound] = queue.Queue(maxsize=settings.intake_queue)
        #: Handled inputs in arrival order; acknowledged from the head (MQTT 5
        #: §4.6: PUBACKs in the order the PUBLISHes were received).
        self._unacked: deque[_Unacked] = deque()
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
        client.publish(self.state_topic, b"online", qos=1, retain=True)
        # Every CONNACK: a broker that lost its state answers session_present=0
        # and has forgotten our subscriptions (QUALITY.md fact 4).
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.router.subscriptions])
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
        log.warning("disconnected", extra={"store": self.store, "reason": str(reason_code)})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = _Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._clock())
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
        with self._published:
            self._published.notify_all()

    # ----------------------------------------------------------------- worker
    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then drain, save state and go offline."""
        self._restore()
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
            next_tick, next_health, next_state = (
                now + TICK_S,
                now,
                now + self.settings.state_interval_s,
            )
            while not stop.is_set():
                try:
                    # Short while acknowledgements are owed, so they go out promptly.
                    item = self._queue.get(timeout=0.02 if self._unacked else 0.2)
                except queue.Empty:
                    pass
                else:
                    self._handle(item)
                self._ack_ready()
                QUEUE_DEPTH.set(self._queue.qsize())
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK_S
                    self._tick()
                if now >= next_health and self.connected.is_set():
                    next_health = now + self.settings.health_interval_s
                    self._publish_health()
                if now >= next_state:
                    next_state = now + self.settings.state_interval_s
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
            self._handle(item)
        while self._unacked and time.monotonic() < deadline:
            self._ack_ready()
            with self._published:
                self._published.wait(0.05)
        if self._unacked:
            # Not acknowledged: the broker redelivers them to our next session.
            log.warning(
                "stopping with unacknowledged inputs",
                extra={"store": self.store, "count": len(self._unacked)},
            )
        self.save_state()
        if self.connected.is_set():
            info = self.client.publish(self.state_topic, b"offline", qos=1, retain=True)
            self._wait([info], deadline=time.monotonic() + 5)
        self.client.disconnect()
        self.client.loop_stop()
        log.info("stopped", extra={"store": self.store})

    def _handle(self, item: _Inbound) -> None:
        MESSAGES.inc()
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
        infos = self._publish_facts(facts)
        if reason is not None:
            infos.append(self._dead_letter(item, scrub(reason), code))
        if item.qos > 0:
            self._unacked.append(_Unacked(item.mid, item.qos, tuple(infos)))

    def _ack_ready(self) -> None:
        """Acknowledge, in order, every input whose facts the broker has PUBACKed."""
        while self._unacked:
            head = self._unacked[0]
            delivered = _delivery(head.infos)
            if delivered is None:
                break
            self._unacked.popleft()
            if delivered:
                self.client.ack(head.mid, head.qos)
            else:
                log.warning(
                    "facts not queued; input left for redelivery", extra={"store": self.store}
                )
        UNACKED.set(len(self._unacked))

    def _tick(self) -> None:
        # Timer facts answer no input: paho's session retries them until PUBACKed.
        self._publish_facts(self.pipeline.tick(self._clock()))

    def _publish_facts(self, facts: list[Fact]) -> list[mqtt.MQTTMessageInfo]:
        infos = []
        for fact in facts:
            infos.append(
                self.client.publish(
                    fact_topic(self.pipeline.store, fact.kind), dump_fact(fact), qos=1
                )
            )
            FACTS.labels(fact.kind).inc()
        return infos

    def _dead_letter(self, item: _Inbound, reason: str, code: str) -> mqtt.MQTTMessageInfo:
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
        return self.client.publish(self.deadletter, orjson.dumps(body), qos=1)

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
        """Write the pipeline snapshot atomically (temp file, fsync, rename)."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(self.pipeline.snapshot())
        fd, tmp = tempfile.mkstemp(prefix=".gateway-", dir=self.state_file.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _restore(self) -> None:
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            self.pipeline.restore(data, self._clock())
        except (ValueError, TypeError) as exc:
            log.error(
                "unreadable state file ignored",
                extra={"path": str(self.state_file), "error": str(exc)},
            )


def _kind(out: AdapterOutput) -> str:
    if isinstance(out, RfidRead):
        return "rfid"
    if isinstance(out, BleRead):
        return "ble"
    if isinstance(out, DeviceEvent):
        return "device_event"
    return "skipped"


def main(settings: GatewaySettings) -> int:
    """``vitrine gateway run``: serve until SIGTERM/SIGINT; 0 on a clean stop, 2 on bad config."""
    from vitrine.runtime.layout_io import LayoutFileError, load_layout
    from vitrine.runtime.logs import configure_logging
    from vitrine.runtime.ops import OpsServer, Readiness, stop_event_on_signals
    from vitrine.runtime.settings import SettingsError

    configure_logging(settings.log_level, settings.log_format)
    try:
        settings.validate_for_run()
        if settings.layout is None:
            raise LayoutFileError("no layout file: pass --layout or set VITRINE_LAYOUT")
        layout = load_layout(settings.layout)
        service = GatewayService(settings, layout)
    except (LayoutFileError, SettingsError, IdError, ValueError) as exc:
        log.error("cannot start the gateway", extra={"error": scrub(str(exc))})
        return 2
    stop = stop_event_on_signals()
    readiness = Readiness()
    readiness.add("mqtt", service.connected.is_set)
    ops = OpsServer(settings.ops_host, settings.ops_port, readiness)
    ops.start()
    try:
        service.run(stop)
    finally:
        ops.stop()
    return 0

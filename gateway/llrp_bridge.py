"""``vitrine readers llrp-bridge``: an LLRP reader's tag reports onto its vendor topic.

LLRP readers (Impinj Speedway/R420 in LLRP mode, Zebra FX in LLRP mode, ThingMagic,
…) do not publish anything: a client opens TCP 5084, configures them and receives
``RO_ACCESS_REPORT`` messages (EPCglobal LLRP 1.0.1). The bridge is that client —
sllurp 3.x's :class:`sllurp.llrp.LLRPReaderClient` (WIRE-FORMATS §3) — and publishes
every tag report batch, as JSON in sllurp's own dict shape, to the reader's
configured vendor topic (``readers[].topic``, ``format: llrp``) at QoS 1. The
gateway then treats an LLRP reader exactly like a Zebra or an Impinj IoT reader:
same routing, same :class:`gateway.adapters.llrp.LlrpAdapter`, same acknowledgement,
dead letters and health. Why a separate process rather than a thread of the
gateway: a reader admits one client at a time, LLRP sessions are per reader and
may run on a box next to the readers, and the gateway keeps one input (MQTT) whose
delivery guarantees are already tested.

What is published on the topic (all QoS 1, never retained):

* ``[{TagReportData}, …]``: sllurp's ``tag_reports`` list; bytes (the hexlified
  EPC) become text. → :class:`RfidRead` per tag.
* ``{"KEEPALIVE": {}}`` on each reader keepalive. → ``heartbeat``.
* ``{"READER_EVENT_NOTIFICATION": {"ReaderEventNotificationData": {…}}}`` as
  sllurp decodes it (antenna events, reader exceptions). → ``antenna_*``/``error``.
* ``{"LlrpBridge": {"status": "connected"|"disconnected", "reason": …}}`` when the
  reader session starts inventorying or ends; also the bridge's MQTT last will.
  → ``status``.

Reconnection: sllurp's own ``reconnect`` retries five times a minute apart and
then gives up; the bridge instead starts a new session after each loss with
capped exponential backoff and jitter, forever, and also ends a session whose
reader went silent (no report nor keepalive for ``WATCHDOG_KEEPALIVES`` keepalive
periods: a powered-off reader leaves a half-open TCP connection nothing notices).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import paho.mqtt.client as mqtt

from vitrine.runtime.mqtt import make_client, parse_mqtt_url

__all__ = [
    "WATCHDOG_KEEPALIVES",
    "Backoff",
    "BridgeConfig",
    "LlrpBridge",
    "encode_event",
    "encode_reports",
    "encode_status",
    "jsonable",
]

log = logging.getLogger(__name__)

#: A session with no message from the reader for this many keepalive periods is
#: dead: one lost keepalive is a hiccup, three is a reader that is gone.
WATCHDOG_KEEPALIVES = 3
#: MQTT keep-alive of the bridge's own connection: its last will fires within 1.5x.
MQTT_KEEPALIVE_S = 15


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """One reader, one topic. Times in seconds unless the name says otherwise."""

    host: str
    topic: str
    mqtt_url: str
    port: int = 5084
    #: Reader id for logs and the MQTT client id (the layout's ``readers[].id``).
    reader: str = "llrp-reader"
    #: Antenna ports to inventory; ``(0,)`` is "all antennas" (LLRP 1.0.1 §16.2.4.2).
    antennas: tuple[int, ...] = (0,)
    #: A report after this many distinct tags or ``report_timeout_ms``, whichever
    #: first: about one MQTT message a second per reader, in batches the gateway
    #: handles in one go (docs/performance.md measures 50-read batches).
    report_every_n_tags: int = 200
    report_timeout_ms: int = 1000
    #: Reader keepalive period: with the watchdog, a silent reader is noticed in 30 s.
    keepalive_ms: int = 10_000
    #: Backoff between sessions: 0.5 s doubles up to 30 s (a rebooting reader takes
    #: 30–90 s; retrying faster only fills logs).
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: TCP connect timeout for the reader.
    connect_timeout_s: float = 5.0


class Backoff:
    """Capped exponential backoff with jitter (delays in [d/2, d]); pure but for ``rng``."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2.0**self.failures)
        self.failures += 1
        return base * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self.failures = 0


def jsonable(value: object) -> Any:
    """sllurp's decoded values as JSON: bytes (hexlified EPCs, TIDs) become text."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return raw.hex()
        return text if text.isprintable() else raw.hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def encode_reports(tag_reports: Sequence[Mapping[str, Any]]) -> bytes:
    """sllurp's ``tag_reports`` (``RO_ACCESS_REPORT.TagReportData``) as a JSON array."""
    return orjson.dumps(jsonable(list(tag_reports)))


def encode_event(event_data: Mapping[str, Any]) -> bytes:
    """sllurp's ``ReaderEventNotificationData`` dict, wrapped as its message."""
    body = {"READER_EVENT_NOTIFICATION": {"ReaderEventNotificationData": jsonable(event_data)}}
    return orjson.dumps(body)


def encode_status(status: str, reason: str | None = None, *, host: str, port: int) -> bytes:
    """The bridge's own reader-session status."""
    body: dict[str, Any] = {"status": status, "reader": f"{host}:{port}"}
    if reason:
        body["reason"] = reason
    return orjson.dumps({"LlrpBridge": body})


KEEPALIVE_PAYLOAD = orjson.dumps({"KEEPALIVE": {}})


class LlrpBridge:
    """Runs reader sessions one after another until stopped; publishes what they see."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.backoff = Backoff(config.backoff_initial_s, config.backoff_max_s, rng)
        self._monotonic = monotonic
        self.reader_connected = threading.Event()
        self.mqtt_connected = threading.Event()
        self.sessions = 0
        self.reports = 0
        self._last_message = 0.0
        self._status: str | None = None
        self._session_ended = threading.Event()
        self._lock = threading.Lock()
        #: Publishes not yet PUBACKed, oldest first (waited for at shutdown).
        self._inflight: deque[mqtt.MQTTMessageInfo] = deque()
        target = parse_mqtt_url(config.mqtt_url)
        self._target = target
        self.client, self._connect_props = make_client(
            f"vitrine-llrp-bridge-{config.reader}", target
        )
        self.client.will_set(
            config.topic,
            encode_status("disconnected", "bridge offline", host=config.host, port=config.port),
            qos=1,
        )
        self.client.on_connect = self._on_mqtt_connect
        self.client.on_disconnect = self._on_mqtt_disconnect

    # ------------------------------------------------------------------ MQTT
    def _on_mqtt_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection", extra={"reason": str(reason_code)})
            return
        self.mqtt_connected.set()
        log.info("connected to the broker", extra={"reader": self.config.reader})

    def _on_mqtt_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.mqtt_connected.clear()
        log.warning("disconnected from the broker", extra={"reason": str(reason_code)})

    def _publish(self, payload: bytes) -> None:
        # QoS 1 in a persistent session: paho keeps it until PUBACKed, across
        # broker reconnections, so a report taken from the reader is not lost.
        info = self.client.publish(self.config.topic, payload, qos=1)
        with self._lock:
            self._inflight.append(info)
            while self._inflight and _settled(self._inflight[0]):
                self._inflight.popleft()

    def _set_status(self, status: str, reason: str | None = None) -> None:
        if status == self._status:
            return
        self._status = status
        cfg = self.config
        self._publish(encode_status(status, reason, host=cfg.host, port=cfg.port))
        level = logging.INFO if status == "connected" else logging.WARNING
        log.log(level, "reader %s", status, extra={"reader": cfg.reader, "reason": reason})

    # -------------------------------------------------------- sllurp callbacks
    def _on_tag_report(self, _reader: object, tag_reports: Sequence[Mapping[str, Any]]) -> None:
        self._last_message = self._monotonic()
        if not tag_reports:
            return
        self._publish(encode_reports(tag_reports))
        self.reports += 1

    def _on_keepalive(self, _reader: object, _msg: object) -> None:
        self._last_message = self._monotonic()
        self._publish(KEEPALIVE_PAYLOAD)

    def _on_event(self, _reader: object, event_data: Mapping[str, Any]) -> None:
        self._last_message = self._monotonic()
        if set(event_data) <= {"UTCTimestamp", "Uptime", "ConnectionAttemptEvent"}:
            return  # the session start is reported as the bridge's own status
        self._publish(encode_event(event_data))

    def _on_inventorying(self, _reader: object, _state: object) -> None:
        self._last_message = self._monotonic()
        self.reader_connected.set()
        self.backoff.reset()
        self._set_status("connected")

    def _on_disconnected(self, _reader: object) -> None:
        self._session_ended.set()

    # --------------------------------------------------------------- sessions
    def run(self, stop: threading.Event) -> None:
        """Connect to the broker, then run reader sessions until ``stop`` is set."""
        self.client.connect_async(
            self._target.host,
            self._target.port,
            keepalive=MQTT_KEEPALIVE_S,
            clean_start=False,
            properties=self._connect_props,
        )
        self.client.loop_start()
        try:
            while not stop.is_set():
                reason = self._session(stop)
                if stop.is_set():
                    break
                self._set_status("disconnected", reason)
                delay = self.backoff.next_delay()
                log.info(
                    "next reader session in %.1f s",
                    delay,
                    extra={"reader": self.config.reader, "failures": self.backoff.failures},
                )
                stop.wait(delay)
        finally:
            self._set_status("disconnected", "bridge stopped")
            self._drain()
            self.client.disconnect()
            self.client.loop_stop()

    def _session(self, stop: threading.Event) -> str:
        """One reader session; returns why it ended."""
        from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

        cfg = self.config
        self.reader_connected.clear()
        self._session_ended.clear()
        reader = LLRPReaderClient(
            cfg.host,
            cfg.port,
            LLRPReaderConfig(
                {
                    "antennas": list(cfg.antennas),
                    "report_every_n_tags": cfg.report_every_n_tags,
                    "report_timeout_ms": cfg.report_timeout_ms,
                    "keepalive_interval": cfg.keepalive_ms,
                    "reconnect": False,  # the bridge runs its own, unbounded
                    "start_inventory": True,
                    "reset_on_connect": True,
                    "tag_content_selector": {
                        "EnableROSpecID": False,
                        "EnableAntennaID": True,
                        "EnablePeakRSSI": True,
                        "EnableChannelIndex": False,
                        "EnableFirstSeenTimestamp": True,
                        "EnableLastSeenTimestamp": True,
                        "EnableTagSeenCount": True,
                    },
                }
            ),
            timeout=cfg.connect_timeout_s,
        )
        reader.add_tag_report_callback(self._on_tag_report)
        reader.add_event_callback(self._on_event)
        reader.add_message_callback("KEEPALIVE", self._on_keepalive)
        reader.add_state_callback(LLRPReaderState.STATE_INVENTORYING, self._on_inventorying)
        reader.add_disconnected_callback(self._on_disconnected)
        self.sessions += 1
        try:
            reader.connect()
        except OSError as exc:
            return f"cannot connect: {exc.strerror or type(exc).__name__}"
        self._last_message = self._monotonic()
        silence_s = WATCHDOG_KEEPALIVES * cfg.keepalive_ms / 1000
        reason = "reader closed the connection"
        try:
            while not stop.is_set():
                if self._session_ended.wait(0.2) or not reader.is_alive():
                    break
                if self._monotonic() - self._last_message > silence_s:
                    reason = f"reader silent for {silence_s:.0f} s"
                    break
        finally:
            if stop.is_set():
                # Politely: DELETE_ACCESSSPEC/DELETE_ROSPEC, then close.
                reader.disconnect(timeout=2.0)
            reader.hard_disconnect()
            reader.join(2.0)
        return reason

    def _drain(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for outstanding QoS 1 publishes to be PUBACKed before leaving."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            pending = list(self._inflight)
        for info in pending:
            while not _settled(info) and self.mqtt_connected.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with suppress(ValueError, RuntimeError):
                    info.wait_for_publish(min(remaining, 0.5))


def _settled(info: mqtt.MQTTMessageInfo) -> bool:
    """PUBACKed, or nothing left to wait for: paho refused it (queue full) or took it
    while offline (``MQTT_ERR_NO_CONN``: kept in the session, sent on reconnection)."""
    try:
        return info.is_published()
    except (ValueError, RuntimeError):
        return True


def main(
    config: BridgeConfig, *, log_level: str = "INFO", log_format: Literal["json", "text"] = "json"
) -> int:
    """Run the bridge until SIGTERM/SIGINT; 0 on a clean stop."""
    from vitrine.runtime.logs import configure_logging
    from vitrine.runtime.ops import stop_event_on_signals

    configure_logging(log_level, log_format)
    stop = stop_event_on_signals()
    LlrpBridge(config).run(stop)
    return 0

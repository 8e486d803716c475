"""Thin I/O shells around the simulation core: pacing, MQTT, files, HTTP.

- ``--out``: one JSON line per emitted message (see docs/simulator.md);
- ``--truth``: the core's ground truth, then one ``publish`` record per MQTT
  message saying whether the broker acknowledged it;
- MQTT through :func:`vitrine.runtime.mqtt.make_client`; an acknowledgement is
  PUBACK (QoS 1), PUBCOMP (QoS 2), or "written to the socket" for QoS 0 (all a
  QoS 0 publisher ever learns);
- web-tracker events optionally POSTed to ``--events-url`` (failure-tolerant);
- app shoppers optionally registered with a server before the run
  (``POST /v1/admin/installs``, as the retailer's app backend does at sign-in;
  failure-tolerant): their install and token secret, their web ids, consents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import paho.mqtt.client as mqtt

from firmware_sim.engine import EVENTS_PATH, AppShopper, Emission, Simulation
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

__all__ = [
    "INSTALLS_PATH",
    "MqttPublisher",
    "RunReport",
    "out_line",
    "register_shoppers",
    "run_simulation",
]

log = logging.getLogger(__name__)

#: How long to wait for the broker's last acknowledgements after the run.
ACK_DRAIN_S = 10.0
#: Progress line period on the terminal (wall seconds).
PROGRESS_S = 2.0
#: The server's admin route registering an app install (docs/server-api.md).
INSTALLS_PATH = "/v1/admin/installs"
#: Per request: a local server answers in milliseconds; a stalled one must not
#: hold the run's start for long.
HTTP_TIMEOUT_S = 5.0


def out_line(seq: int, e: Emission) -> bytes:
    """One ``--out`` record; keys sorted so two runs compare byte for byte."""
    doc: dict[str, Any] = {
        "seq": seq,
        "t": e.t,
        "at": e.at.isoformat(timespec="milliseconds"),
        "kind": e.kind,
        "topic": e.topic,
        "qos": e.qos,
        "source": e.source,
        "payload": e.payload.decode("utf-8"),
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"


class MqttPublisher:
    """Publishes to a real broker and remembers which messages were acknowledged."""

    def __init__(self, url: str, client_id: str) -> None:
        self._client, self._props = make_client(client_id, parse_mqtt_url(url))
        self._target = parse_mqtt_url(url)
        self._lock = threading.Lock()
        self._acked: set[int] = set()
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None
    ) -> None:
        with self._lock:
            self._acked.add(mid)

    def connect(self, timeout_s: float = 10.0) -> None:
        self._client.connect(
            self._target.host, self._target.port, clean_start=True, properties=self._props
        )
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise ConnectionError(f"no CONNACK from {self._target.host}:{self._target.port}")

    def publish(self, topic: str, payload: bytes, qos: int) -> int:
        """Queue a publish; returns its message id (``-1`` if it could not be queued)."""
        info = self._client.publish(topic, payload, qos=qos)
        return info.mid if info.rc == mqtt.MQTT_ERR_SUCCESS else -1

    def acked(self, mid: int) -> bool:
        with self._lock:
            return mid in self._acked

    def drain(self, mids: list[int], timeout_s: float = ACK_DRAIN_S) -> None:
        deadline = time.monotonic() + timeout_s
        pending = [m for m in mids if m >= 0]
        done = threading.Event()
        while not done.wait(0.05):
            with self._lock:
                pending = [m for m in pending if m not in self._acked]
            if not pending or time.monotonic() > deadline:
                break

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(slots=True)
class RunReport:
    messages: int = 0
    http_events: int = 0
    http_failed: int = 0
    acked: int = 0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    truth_records: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    registered: int = 0
    register_failed: int = 0


class _EventPoster:
    def __init__(self, url: str, token: str | None = None) -> None:
        self._url = url
        # The server's POST /v1/events wants an ingest token (server/auth).
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.Client(timeout=5.0, headers=headers)
        self.failed = 0

    def post(self, e: Emission) -> None:
        # The vendor's own payload, as a Segment destination, a GA4 Measurement
        # Protocol hit or a Shopify pixel forwarder would POST it.
        body = e.payload
        try:
            response = self._client.post(self._url, content=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed += 1
            if self.failed == 1:
                log.warning(
                    "events endpoint unavailable; web events stay in --out only",
                    extra={"url": self._url, "error": type(exc).__name__},
                )

    def close(self) -> None:
        self._client.close()


def registration(shopper: AppShopper) -> dict[str, Any]:
    """The ``POST /v1/admin/installs`` body for one app shopper."""
    return {
        "install_id": shopper.install_id,
        "secret": shopper.secret.hex(),
        "keys": list(shopper.keys),
        "consents": dict(shopper.consents),
    }


def register_shoppers(
    server_url: str, admin_token: str | None, shoppers: tuple[AppShopper, ...]
) -> tuple[int, int]:
    """Register each app shopper with the server; returns (registered, failed).

    A failure is logged once (never a shopper's ids or secret) and the run goes
    on: those shoppers stay anonymous footfall, as an unregistered phone would.
    """
    headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
    url = server_url.rstrip("/") + INSTALLS_PATH
    ok = failed = 0
    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=headers) as client:
        for shopper in shoppers:
            try:
                response = client.post(url, json=registration(shopper))
                response.raise_for_status()
                ok += 1
            except httpx.HTTPError as exc:
                failed += 1
                if failed == 1:
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                    log.warning(
                        "installs endpoint refused or unavailable; shoppers stay anonymous",
                        extra={"url": url, "error": type(exc).__name__, "status": status},
                    )
    return ok, failed


def run_simulation(
    sim: Simulation,
    *,
    speed: float | None,
    out: Path | None,
    truth: Path | None,
    mqtt_url: str | None,
    events_url: str | None = None,
    events_token: str | None = None,
    server_url: str | None = None,
    admin_token: str | None = None,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Run ``sim``: real time × ``speed`` (``None`` = as fast as possible).

    With ``server_url``, the app shoppers are registered first (before anyone
    walks in and before their online views are posted), and web events go to
    its ``/v1/events`` unless ``events_url`` says otherwise (with ``events_token``,
    else ``admin_token``).
    """
    stop = stop or threading.Event()
    report = RunReport()
    if server_url is not None:
        if events_url is None:
            events_url = server_url.rstrip("/") + EVENTS_PATH
            events_token = events_token or admin_token
        report.registered, report.register_failed = register_shoppers(
            server_url, admin_token, sim.app_shoppers()
        )
    publisher: MqttPublisher | None = None
    if mqtt_url is not None:
        publisher = MqttPublisher(mqtt_url, f"vitrine-sim-{sim.layout.store.id}-{sim.seed}")
        publisher.connect()
    poster = _EventPoster(events_url, events_token) if events_url else None
    out_f: IO[bytes] | None = out.open("wb") if out else None
    truth_f: IO[bytes] | None = truth.open("wb") if truth else None
    sent: list[tuple[int, float, str, int, int]] = []  # seq, t, topic, qos, mid
    wall0 = time.monotonic()
    next_progress = wall0 + PROGRESS_S
    seq = 0
    try:
        for step in sim.steps():
            if stop.is_set():
                break
            if speed is not None:
                delay = wall0 + step.t / speed - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            for record in step.truth:
                if truth_f is not None:
                    truth_f.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
                report.truth_records += 1
            for e in step.emissions:
                seq += 1
                if out_f is not None:
                    out_f.write(out_line(seq, e))
                if e.kind == "http":
                    report.http_events += 1
                    if poster is not None:
                        poster.post(e)
                    continue
                report.messages += 1
                report.by_source[e.source] = report.by_source.get(e.source, 0) + 1
                mid = publisher.publish(e.topic, e.payload, e.qos) if publisher else -1
                sent.append((seq, e.t, e.topic, e.qos, mid))
            report.sim_seconds = step.t
            now = time.monotonic()
            if progress is not None and now >= next_progress:
                next_progress = now + PROGRESS_S
                progress(
                    f"sim {step.t:7.0f}/{sim.scenario.duration_s:.0f} s  "
                    f"{report.messages} msgs  {report.http_events} web events"
                )
        if publisher is not None:
            publisher.drain([s[4] for s in sent])
        for s_seq, t, topic, qos, mid in sent:
            acked: bool | None = None
            if publisher is not None:
                acked = mid >= 0 and publisher.acked(mid)
                report.acked += int(acked)
            if truth_f is not None:
                truth_f.write(
                    orjson.dumps(
                        {
                            "kind": "publish",
                            "seq": s_seq,
                            "t": t,
                            "topic": topic,
                            "qos": qos,
                            "acked": acked,
                        },
                        option=orjson.OPT_SORT_KEYS,
                    )
                    + b"\n"
                )
    finally:
        if publisher is not None:
            publisher.close()
        if poster is not None:
            report.http_failed = poster.failed
            poster.close()
        for f in (out_f, truth_f):
            if f is not None:
                f.close()
    report.wall_seconds = time.monotonic() - wall0
    return report

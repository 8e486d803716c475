"""Latency at a store's offered load, device message → output, beside the bare relay.

What is measured (the *gateway leg*): a reader message published by the bench →
Mosquitto → ``vitrine gateway run`` → a fact on the bus, received by the bench;
and, in the same run at the same offered rate, reader message → Mosquitto → the
bare relay → WebSocket frame. The background load is ``vitrine sim load`` (10
readers × 200 reads/s and 100 phones' ESPresense reports for one store). Probes
are single Zebra reads on their own reader whose ``eventNum`` jumps by 2, so
each one makes the gateway publish a ``reads_lost`` fact at once.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from bench.drain import _log_has
from bench.harness import FactWatcher, Publisher, WsSink, forget_session, wait_for
from bench.stats import percentile
from bench.workload import STORE, load_layout_file, marker_seq, zebra_message
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

__all__ = ["LatencyResult", "gateway_leg", "relay_leg"]

PROBE_TOPIC = "tevents/probe"
#: 20 probes a second: enough samples for a p99 in a short run, ~1 % of the load.
PROBE_INTERVAL_S = 0.05
PROBE_EPC = "e2801160600002000000ffff"


@dataclass(frozen=True, slots=True)
class LatencyResult:
    sent: int
    received: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    offered_reads_per_s: float


def _load(group: ProcessGroup, url: str, seconds: float, readers: int, phones: int) -> None:
    group.start(
        "load",
        vitrine_command(
            "sim",
            "load",
            "--stores",
            "1",
            "--readers",
            str(readers),
            "--reads-per-second",
            "200",
            "--phones",
            str(phones),
            "--duration",
            str(seconds),
            "--qos",
            "1",
            "--mqtt-url",
            url,
        ),
    )


def _probe_loop(url: str, seconds: float, sent: dict[int, float]) -> None:
    pub = Publisher(url, f"bench-probe-{time.monotonic_ns()}")
    try:
        seq = 1
        deadline = time.monotonic() + seconds
        tick = threading.Event()
        while time.monotonic() < deadline:
            seq += 2
            sent[seq] = time.monotonic()
            pub.publish(PROBE_TOPIC, _probe_payload(seq))
            tick.wait(PROBE_INTERVAL_S)
    finally:
        pub.close()


def _probe_payload(seq: int) -> bytes:
    doc = orjson.loads(zebra_message(seq, 1))
    doc["data"]["idHex"] = PROBE_EPC
    return orjson.dumps(doc)


def _summarise(sent: dict[int, float], got: dict[int, float], offered: float) -> LatencyResult:
    lat = sorted((got[s] - t) * 1000 for s, t in sent.items() if s in got)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    return LatencyResult(
        sent=len(sent),
        received=len(lat),
        p50_ms=None if p50 is None else round(p50, 2),
        p99_ms=None if p99 is None else round(p99, 2),
        max_ms=round(lat[-1], 2) if lat else None,
        offered_reads_per_s=offered,
    )


def gateway_leg(
    url: str, work: Path, seconds: float, readers: int = 10, phones: int = 100
) -> tuple[LatencyResult, float | None]:
    work.mkdir(parents=True, exist_ok=True)
    layout = load_layout_file(work / "layout.json", readers=readers)

    def probe(msg: mqtt.MQTTMessage) -> int | None:
        if msg.topic.endswith("/reads_lost"):
            doc = orjson.loads(msg.payload)
            if doc.get("reader") == "probe":
                return marker_seq(str(doc.get("reason", "")))
        return None

    watcher = FactWatcher(url, [f"vitrine/v1/{STORE}/facts/#"], probe)
    group = ProcessGroup(work / "logs", {"VITRINE_MQTT_URL": url, "VITRINE_LOG_LEVEL": "INFO"})
    sent: dict[int, float] = {}
    rss = None
    gateway_id = f"e2e{time.monotonic_ns()}"
    try:
        gw = group.start(
            "gateway",
            vitrine_command(
                "gateway",
                "run",
                "--layout",
                str(layout),
                "--state-dir",
                str(work),
                "--gateway-id",
                gateway_id,
            ),
        )
        group.wait_until(gw, _log_has(gw.log_path, '"connected"'), 60)
        _load(group, url, seconds, readers, phones)
        _probe_loop(url, seconds, sent)
        rss = _rss_mb(gw.pid)
        with contextlib.suppress(TimeoutError):  # a lost probe is reported, not fatal
            wait_for(lambda: len(watcher.arrivals.probes) >= len(sent) - 1, 10, "late probes")
    finally:
        group.stop()
        watcher.close()
        forget_session(url, f"vitrine-gateway-{STORE}-{gateway_id}")
    return _summarise(sent, dict(watcher.arrivals.probes), 200.0 * readers), rss


def relay_leg(
    url: str, work: Path, seconds: float, readers: int = 10, phones: int = 100
) -> LatencyResult:
    def probe(data: bytes) -> int | None:
        if PROBE_EPC.encode() not in data:
            return None
        return int(orjson.loads(data)["data"]["eventNum"])

    sink = WsSink(probe)
    group = ProcessGroup(work / "relay-logs")
    client_id = f"bench-relay-live-{time.monotonic_ns()}"
    sent: dict[int, float] = {}
    try:
        relay = group.start(
            "relay",
            [
                sys.executable,
                "-m",
                "bench.relay",
                url,
                sink.url,
                client_id,
                "tevents/#",
                "espresense/#",
            ],
        )
        group.wait_until(relay, _log_has(relay.log_path, "subscribed"), 30)
        _load(group, url, seconds, readers, phones)
        _probe_loop(url, seconds, sent)
        with contextlib.suppress(TimeoutError):  # a lost probe is reported, not fatal
            wait_for(lambda: len(sink.arrivals.probes) >= len(sent) - 1, 10, "late probes")
    finally:
        group.stop()
        sink.close()
        forget_session(url, client_id)
    return _summarise(sent, dict(sink.arrivals.probes), 200.0 * readers)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None

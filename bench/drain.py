"""Drain rates: a consumer's persistent session is filled while it is away, then timed.

The broker queues ``n`` QoS 1 messages for the offline session (``deploy/mosquitto.conf``
holds 200k), the consumer starts, and the rate is taken between the first and the
last thing it *outputs* — WebSocket frames for the bare relay, ``reads_lost``
marker facts on the bus for the gateway — so process start-up is not counted.
The same queue and the same payloads go to both, in the same run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from bench.harness import FactWatcher, Publisher, WsSink, forget_session, wait_for
from bench.workload import STORE, load_layout_file, marker_seq, zebra_message
from vitrine.runtime.broker import BrokerNotFoundError
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

__all__ = ["DrainResult", "broker_relay", "drain_gateway", "drain_relay", "queued_messages"]

TOPIC = "tevents/load-s0-r0"


@dataclass(frozen=True, slots=True)
class DrainResult:
    messages: int
    reads_per_message: int
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def reads_per_s(self) -> float:
        return self.msgs_per_s * self.reads_per_message


def queued_messages(n: int, reads: int) -> list[tuple[str, bytes]]:
    """``n`` messages; the 2nd and the last jump ``eventNum`` by 2 (the timing markers)."""
    out: list[tuple[str, bytes]] = []
    seq = 1
    for i in range(n):
        if i in (1, n - 1):
            seq += 2
        out.append((TOPIC, zebra_message(seq, reads, tag_offset=i * reads)))
        seq += reads
    return out


def _log_has(path: Path, word: str) -> Callable[[], bool]:
    return lambda: path.exists() and word in path.read_text(errors="replace")


def _fill(url: str, messages: list[tuple[str, bytes]]) -> None:
    pub = Publisher(url, f"bench-fill-{time.monotonic_ns()}")
    try:
        acked = pub.publish_all(messages)
    finally:
        pub.close()
    if acked != len(messages):
        raise RuntimeError(f"broker acknowledged {acked} of {len(messages)} messages")


def drain_relay(
    url: str, workdir: Path, messages: list[tuple[str, bytes]], reads: int
) -> DrainResult:
    sink = WsSink(lambda data: None)
    client_id = f"bench-relay-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "bench.relay", url, sink.url, client_id, "tevents/#"]
    try:
        for rnd in ("subscribe", "drain"):
            group = ProcessGroup(workdir / f"relay-{rnd}")
            child = group.start("relay", argv)
            try:
                group.wait_until(child, _log_has(child.log_path, "subscribed"), 30)
                if rnd == "drain":
                    wait_for(lambda: sink.arrivals.count >= len(messages), 300, "the relay's drain")
            finally:
                group.stop()
            if rnd == "subscribe":
                sink.arrivals.reset()
                _fill(url, messages)
        a = sink.arrivals
        assert a.first is not None and a.last is not None
        return DrainResult(a.count - 1, reads, a.last - a.first)
    finally:
        sink.close()
        forget_session(url, client_id)


def drain_gateway(
    url: str,
    workdir: Path,
    messages: list[tuple[str, bytes]],
    reads: int,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 300,
) -> DrainResult:
    workdir.mkdir(parents=True, exist_ok=True)
    layout = load_layout_file(workdir / "layout.json", readers=1)
    state = workdir / "gateway-state"

    def probe(msg: mqtt.MQTTMessage) -> int | None:
        if msg.topic.endswith("/reads_lost"):
            return marker_seq(str(orjson.loads(msg.payload).get("reason", "")))
        return None

    watcher = FactWatcher(url, [f"vitrine/v1/{STORE}/facts/#"], probe)
    gateway_id = f"bench{time.monotonic_ns()}"
    argv = vitrine_command(
        "gateway",
        "run",
        "--layout",
        str(layout),
        "--state-dir",
        str(state),
        "--gateway-id",
        gateway_id,
    )
    env = {"VITRINE_MQTT_URL": url, "VITRINE_LOG_LEVEL": "INFO", **(extra_env or {})}
    try:
        for rnd in ("subscribe", "drain"):
            group = ProcessGroup(workdir / f"gateway-{rnd}", env)
            child = group.start("gateway", argv)
            try:
                if rnd == "subscribe":
                    group.wait_until(child, _log_has(child.log_path, '"connected"'), 60)
                else:
                    wait_for(
                        lambda: len(watcher.arrivals.probes) >= 2, timeout_s, "the gateway's drain"
                    )
            finally:
                group.stop()
            if rnd == "subscribe":
                watcher.arrivals.reset()
                _fill(url, messages)
        times = sorted(watcher.arrivals.probes.values())
        return DrainResult(len(messages) - 2, reads, times[-1] - times[0])
    finally:
        watcher.close()
        forget_session(url, f"vitrine-gateway-{STORE}-{gateway_id}")


def broker_relay(url: str, n: int) -> DrainResult:
    """``mosquitto_pub -l`` → Mosquitto → ``mosquitto_sub -C n``: the broker's relay ceiling."""
    pub_bin, sub_bin = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub")
    if pub_bin is None or sub_bin is None:
        raise BrokerNotFoundError(
            "no mosquitto_pub/mosquitto_sub: apt-get install mosquitto-clients"
        )
    host, port = url.removeprefix("mqtt://").split(":")
    line = zebra_message(1, 1) + b"\n"
    sub = subprocess.Popen(
        [sub_bin, "-h", host, "-p", port, "-t", "bench/floor", "-q", "0"],
        stdout=subprocess.PIPE,
    )
    try:
        assert sub.stdout is not None
        # Subscribed once a warm-up message comes back (mosquitto_sub flushes per message).
        ready = threading.Event()

        def warm() -> None:
            while not ready.is_set():
                subprocess.run(
                    [pub_bin, "-h", host, "-p", port, "-t", "bench/floor", "-m", "warm"],
                    check=False,
                )
                ready.wait(0.2)

        warmer = threading.Thread(target=warm, daemon=True)
        warmer.start()
        while sub.stdout.readline().strip() != b"warm":
            if sub.poll() is not None:
                raise RuntimeError("mosquitto_sub exited before subscribing")
        ready.set()
        warmer.join()
        start = time.monotonic()
        pub = subprocess.Popen(
            [pub_bin, "-h", host, "-p", port, "-t", "bench/floor", "-l", "-q", "0"],
            stdin=subprocess.PIPE,
        )
        assert pub.stdin is not None
        pub.stdin.write(line * n)
        pub.stdin.close()
        got = 0
        while got < n:
            data = sub.stdout.readline()
            if not data:
                break
            if data != b"warm\n":
                got += 1
        elapsed = time.monotonic() - start
        pub.wait(timeout=60)
        return DrainResult(got, 1, elapsed)
    finally:
        sub.kill()
        sub.wait()
        if sub.stdout is not None:
            sub.stdout.close()

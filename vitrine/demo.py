"""``vitrine demo``: a living store on the embedded defaults.

Starts Mosquitto (from ``deploy/mosquitto.conf``), migrates an SQLite database,
then runs every Vitrine process as a child — server, gateway, mobile_api and a
simulator scenario on a loop — prints the pages' URLs and a live status line
(processes up, device messages/s, facts/s, shoppers in store). Ctrl-C stops
everything cleanly, newest first.

Processes are started through the ``vitrine`` CLI rather than imported: the
demo runs exactly what a store runs.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitrine.runtime.broker import free_port, start_local_broker, wait_for_port
from vitrine.runtime.ops import stop_event_on_signals
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

__all__ = ["DemoPlan", "run_demo"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LAYOUT = REPO / "firmware_sim" / "data" / "store.yaml"
SAMPLE_CATALOGUE = REPO / "firmware_sim" / "data" / "catalogue.json"


@dataclass
class DemoPlan:
    workdir: Path
    http_port: int = 8000
    mobile_port: int = 8100
    scenario: str = "busy-saturday"
    speed: str = "1"
    #: Commands the CLI actually has; the demo starts the processes that exist.
    available: set[tuple[str, ...]] = field(default_factory=set)


@dataclass
class _Counters:
    device_msgs: int = 0
    facts: int = 0
    shoppers: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[int, int, int]:
        with self.lock:
            out = (self.device_msgs, self.facts, len(self.shoppers))
            self.device_msgs = self.facts = 0
        return out


def _watch_bus(broker_port: int, counters: _Counters) -> mqtt.Client:
    """Count what crosses the broker, for the status line (never logs payloads)."""

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe("#", qos=0)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with counters.lock:
            if msg.topic.startswith("vitrine/"):
                if "/facts/" in msg.topic:
                    counters.facts += 1
                    kind = msg.topic.rsplit("/", 1)[-1]
                    if kind in ("shopper_entered", "shopper_left"):
                        device = orjson.loads(msg.payload).get("device", "")
                        if kind == "shopper_entered":
                            counters.shoppers.add(device)
                        else:
                            counters.shoppers.discard(device)
            else:
                counters.device_msgs += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vitrine-demo-status")
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    return client


def _port(preferred: int) -> int:
    try:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        return free_port()


def run_demo(plan: DemoPlan) -> int:
    stop = stop_event_on_signals()
    plan.workdir.mkdir(parents=True, exist_ok=True)
    with start_local_broker(plan.workdir / "mosquitto", _port(1883)) as broker:
        db_url = f"sqlite:///{plan.workdir / 'vitrine.db'}"
        env = {"VITRINE_MQTT_URL": broker.url, "VITRINE_DATABASE_URL": db_url}
        group = ProcessGroup(plan.workdir / "logs", env)
        has = plan.available.__contains__
        urls: list[str] = []
        try:
            steps: list[tuple[str, Sequence[str]]] = []
            if has(("db", "upgrade")):
                steps.append(("migrate", vitrine_command("db", "upgrade")))
            if has(("store", "import")):
                steps.append(
                    ("store-import", vitrine_command("store", "import", str(SAMPLE_LAYOUT)))
                )
            if has(("catalogue", "import")):
                steps.append(
                    (
                        "catalogue-import",
                        vitrine_command("catalogue", "import", str(SAMPLE_CATALOGUE)),
                    )
                )
            for name, argv in steps:
                child = group.start(name, argv)
                if child.process.wait() != 0:
                    print(f"demo: {name} failed:\n{child.tail()}", file=sys.stderr)
                    return 1
            if has(("server", "run")):
                http = _port(plan.http_port)
                child = group.start("server", vitrine_command("server", "run", "--port", str(http)))
                group.wait_until(child, lambda: _listening(http))
                urls += [
                    f"staff dashboard   http://127.0.0.1:{http}/staff",
                    f"analytics         http://127.0.0.1:{http}/analytics",
                    f"API docs          http://127.0.0.1:{http}/docs",
                ]
            if has(("mobile-api", "run")):
                mobile = _port(plan.mobile_port)
                child = group.start(
                    "mobile_api", vitrine_command("mobile-api", "run", "--port", str(mobile))
                )
                group.wait_until(child, lambda: _listening(mobile))
                urls.append(f"shopper phone     http://127.0.0.1:{mobile}/phone")
            if has(("gateway", "run")):
                group.start(
                    "gateway",
                    vitrine_command(
                        "gateway",
                        "run",
                        "--layout",
                        str(SAMPLE_LAYOUT),
                        "--state-dir",
                        str(plan.workdir / "gateway"),
                    ),
                )
            if has(("sim", "run")):
                group.start(
                    "simulator",
                    vitrine_command(
                        "sim", "run", "--scenario", plan.scenario, "--speed", plan.speed, "--loop"
                    ),
                )
            print(f"Vitrine demo: broker {broker.url}, database {db_url}")
            for url in urls:
                print(f"  {url}")
            print(f"  logs              {group.log_dir}")
            print("Ctrl-C stops everything.")
            _status_loop(group, broker.port, stop)
        finally:
            codes = group.stop()
            print(f"\ndemo stopped: {codes}")
    return 0


def _listening(port: int) -> bool:
    try:
        wait_for_port(port, timeout_s=0.2)
    except TimeoutError:
        return False
    return True


def _status_loop(group: ProcessGroup, broker_port: int, stop: threading.Event) -> None:
    counters = _Counters()
    watcher = _watch_bus(broker_port, counters)
    try:
        last = time.monotonic()
        while not stop.wait(2.0):
            now = time.monotonic()
            msgs, facts, shoppers = counters.take()
            up = sum(c.alive() for c in group.children if c.name not in _ONE_SHOT)
            total = sum(1 for c in group.children if c.name not in _ONE_SHOT)
            dead = [c.name for c in group.children if c.name not in _ONE_SHOT and not c.alive()]
            span = now - last
            last = now
            line = (
                f"\rprocesses {up}/{total} up | device msgs/s {msgs / span:7.1f} | "
                f"facts/s {facts / span:6.1f} | shoppers in store {shoppers:3d}"
            )
            if dead:
                line += f" | DOWN: {', '.join(dead)}"
            sys.stdout.write(line)
            sys.stdout.flush()
    finally:
        watcher.loop_stop()
        watcher.disconnect()


_ONE_SHOT = frozenset({"migrate", "store-import", "catalogue-import"})

"""The simulator's payloads, through a real Mosquitto, pass the gateway's vendor parsers.

Two independent producers of the vendor formats (firmware_sim builds to
WIRE-FORMATS.md, gateway parses to it): zero rejections is the agreement.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from firmware_sim.engine import Simulation
from firmware_sim.scenario import load_scenario
from firmware_sim.shell import run_simulation
from gateway.adapters import AdapterError, parse
from tests.support.services import Broker
from vitrine.runtime.mqtt import make_client, parse_mqtt_url


def _format_of(topic: str) -> str:
    if topic.startswith("espresense/"):
        return "espresense"
    return "impinj" if topic.startswith("impinj/") else "zebra"


@pytest.mark.mqtt
def test_sim_payloads_through_mosquitto_pass_gateway_parsers(
    mosquitto: Broker, tmp_path: Path
) -> None:
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    client, props = make_client("e2e-sim-sub", parse_mqtt_url(mosquitto.url))

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any = None) -> None:
        c.subscribe([("tevents/#", 1), ("mevents/#", 1), ("impinj/#", 1), ("espresense/#", 1)])

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any = None) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            received.append((msg.topic, bytes(msg.payload)))

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    target = parse_mqtt_url(mosquitto.url)
    client.connect(target.host, target.port, properties=props)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        sc = load_scenario("dead-antenna").model_copy(update={"duration_s": 240})
        out = tmp_path / "out.jsonl"
        report = run_simulation(
            Simulation(sc.bundle(), sc, 11), speed=None, out=out, truth=None, mqtt_url=mosquitto.url
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= report.messages:
                    break
            threading.Event().wait(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    assert len(received) == report.messages > 1000
    rejected: list[str] = []
    outputs = 0
    for topic, payload in received:
        try:
            outputs += len(parse(_format_of(topic), payload, topic=topic, reader=None))
        except AdapterError as exc:
            rejected.append(f"{topic}: {exc}")
    assert rejected == []
    assert outputs >= len(received)
    # The file replay carries the same bytes the broker relayed.
    file_payloads = sorted(
        orjson.loads(line)["payload"].encode()
        for line in out.read_bytes().splitlines()
        if orjson.loads(line)["kind"] == "mqtt"
    )
    assert file_payloads == sorted(p for _, p in received)

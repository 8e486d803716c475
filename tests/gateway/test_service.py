"""The gateway process against a real Mosquitto: vendor payloads in, facts and dead letters out.

Runs ``vitrine gateway run`` as a subprocess (what a store runs), publishes
payloads shaped as in WIRE-FORMATS.md (Zebra IoT Connector INVENTORY events with
the ``+hhmm`` offset, an Impinj R700 ``tagInventoryEvent`` with a base64url EPC
and centi-dBm RSSI, ESPresense v4 device reports) and asserts what comes out.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.layouts import APP_UUID, gateway_layout
from tests.support.services import Broker, free_port
from vitrine.contracts.facts import ItemArrived, ShopperEntered, parse_fact

pytestmark = pytest.mark.mqtt

SGTIN_HEX = "3074257bf7194e4000001a85"  # TDS Annex E.3: GTIN 80614141123458, serial 6789


def zebra(event_num: int, epc: str) -> bytes:
    data = {
        "eventNum": event_num,
        "format": "epc",
        "idHex": epc,
        "antenna": 1,
        "peakRssi": -52,
        "reads": 3,
    }
    return orjson.dumps(
        {"data": data, "timestamp": "2024-09-05T01:07:01.785-0600", "type": "INVENTORY"}
    )


def impinj() -> bytes:
    return orjson.dumps(
        {
            "timestamp": "2023-05-02T13:24:36.372916591Z",
            "hostname": "impinj-13-f8-f5",
            "eventType": "tagInventoryEvent",
            "tagInventoryEvent": {
                "epc": base64.urlsafe_b64encode(bytes.fromhex("E28011002000564500000002"))
                .decode()
                .rstrip("="),
                "antennaPort": 1,
                "antennaName": "1",
                "peakRssiCdbm": -5750,
                "frequency": 866900,
                "transmitPowerCdbm": 3000,
            },
        }
    )


def espresense(rssi: float) -> bytes:
    return orjson.dumps(
        {
            "mac": "5c:f3:70:9a:12:34",
            "id": f"iBeacon:{APP_UUID}-4660-43981",
            "name": "",
            "rssi@1m": -59,
            "rssi": rssi,
            "rxAdj": 0,
            "rssiVar": 1.2,
            "distance": 1.1,
            "var": 0.1,
            "close": True,
            "int": 1000,
        }
    )


class Listener:
    """A paho subscriber collecting everything under the store's namespace."""

    def __init__(self, broker: Broker, store: str, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"vitrine/v1/{store}/{topic}", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, pred: Any, timeout: float = 15.0) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if pred(m)]
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {[m[0] for m in self.messages]}")
                self._cond.wait(left)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def store() -> str:
    return f"st{uuid.uuid4().hex[:8]}"


@pytest.fixture
def gateway_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra settings for the gateway: a test parametrizes this to change them, or
    indirectly with ``"ops"`` for a free ops port (chosen now, not at collection)."""
    param = getattr(request, "param", {})
    if param == "ops":
        return {"VITRINE_OPS_PORT": str(free_port())}
    return dict(param)


@pytest.fixture
def gateway_broker(request: pytest.FixtureRequest, mosquitto: Broker) -> Broker:
    """The gateway's broker: the session's, or (indirect ``"own"``) the test's own —
    the session's keeps other tests' persistent fact subscriptions."""
    if getattr(request, "param", None) == "own":
        own: Broker = request.getfixturevalue("fresh_mosquitto")
        return own
    return mosquitto


@pytest.fixture
def gateway(
    gateway_broker: Broker, store: str, tmp_path: Path, gateway_env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    layout = tmp_path / "store.yaml"
    layout.write_text(yaml.safe_dump(gateway_layout(store)))
    env = {
        **os.environ,
        "VITRINE_MQTT_URL": gateway_broker.url,
        "VITRINE_APP_BEACON_UUID": APP_UUID,
        "VITRINE_HEALTH_INTERVAL_S": "1",
        **gateway_env,
    }
    with (tmp_path / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vitrine",
                "gateway",
                "run",
                "--layout",
                str(layout),
                "--gateway-id",
                "gwt",
                "--state-dir",
                str(tmp_path / "state"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_vendor_payloads_become_facts_and_bad_ones_dead_letters(
    mosquitto: Broker, store: str, gateway: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    listener = Listener(mosquitto, store)
    try:
        state_topic = f"vitrine/v1/{store}/gateway/gwt/state"
        listener.wait_for(lambda m: m[0] == state_topic and m[1] == b"online")

        topic = f"espresense-{store}/devices/iBeacon:{APP_UUID}-4660-43981/floor"
        for i in range(3):
            listener.publish(f"{store}/tevents/fx9600", zebra(i + 1, SGTIN_HEX))
            if i == 0:  # a malformed message between good ones
                listener.publish(f"{store}/tevents/fx9600", b'{"data": {"idHex": "zz-not-hex"')
            listener.publish(f"{store}/impinj/r700/events", impinj())
            listener.publish(topic, espresense(-60 - i))
            # Pacing, not waiting: reads of one tag count once per 0.5 s
            # (ItemRules.dedupe_s) and a device "enters" once its reports span
            # 2 s (ShopperRules.enter_settle_s); readers and ESPresense nodes
            # report about once a second.
            time.sleep(1.05)

        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived") and b"E280110020" in m[1])
        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived") and b"3074257B" in m[1])
        by_epc: dict[str, ItemArrived] = {}
        for topic_, payload, _ in list(listener.messages):
            if topic_.endswith("/facts/item_arrived"):
                fact = parse_fact(payload)
                assert isinstance(fact, ItemArrived)
                by_epc[fact.epc] = fact
        sgtin = by_epc["3074257BF7194E4000001A85"]
        assert (sgtin.zone, sgtin.reader, sgtin.gtin, sgtin.serial) == (
            "floor",
            "fx9600",
            "80614141123458",
            "6789",
        )
        assert by_epc["E28011002000564500000002"].zone == "fitting"

        (dead,) = listener.wait_for(lambda m: m[0] == f"vitrine/v1/{store}/deadletter/gateway")
        letter = orjson.loads(dead[1])
        assert base64.b64decode(letter["payload_b64"]) == b'{"data": {"idHex": "zz-not-hex"'
        assert letter["topic"] == f"{store}/tevents/fx9600" and letter["reason"]

        (entered,) = listener.wait_for(lambda m: m[0].endswith("/facts/shopper_entered"))
        shopper = parse_fact(entered[1])
        assert isinstance(shopper, ShopperEntered)
        assert (shopper.device, shopper.device_kind, shopper.zone) == ("1234abcd", "app", "floor")
        assert b"5c:f3:70" not in b"".join(m[1] for m in listener.messages if "/facts/" in m[0])

        listener.wait_for(
            lambda m: m[0] == f"vitrine/v1/{store}/health/reader/fx9600" and m[2] is False
        )

        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0
        listener.wait_for(lambda m: m[0] == state_topic and m[1] == b"offline")
        state = orjson.loads((tmp_path / "state" / "gateway-gwt.json").read_bytes())
        assert set(state["items"]) == {"3074257BF7194E4000001A85", "E28011002000564500000002"}
    finally:
        listener.close()


@pytest.mark.parametrize(
    "gateway_env",
    [{"VITRINE_CHECKPOINT_INTERVAL_S": "120", "VITRINE_STATE_INTERVAL_S": "120"}],
)
def test_an_idle_gateway_publishes_a_fact_without_waiting_for_the_interval(
    mosquitto: Broker, store: str, gateway: subprocess.Popen[bytes]
) -> None:
    """Group commit: the intake queue ran empty, so the checkpoint is written at once."""
    listener = Listener(mosquitto, store)
    try:
        state_topic = f"vitrine/v1/{store}/gateway/gwt/state"
        listener.wait_for(lambda m: m[0] == state_topic and m[1] == b"online")
        listener.publish(f"{store}/tevents/fx9600", zebra(1, SGTIN_HEX))
        time.sleep(0.6)  # pacing: the second read must fall outside dedupe_s (0.5 s)
        listener.publish(f"{store}/tevents/fx9600", zebra(2, SGTIN_HEX))
        sent = time.monotonic()
        # 30 s: far more than a checkpoint takes on a loaded machine, far less than
        # the 120 s interval and snapshot cadence that would otherwise publish it.
        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived"), timeout=30)
        assert time.monotonic() - sent < 30
    finally:
        listener.close()


def test_last_will_marks_a_killed_gateway_offline(
    mosquitto: Broker, store: str, gateway: subprocess.Popen[bytes]
) -> None:
    listener = Listener(mosquitto, store)
    try:
        state_topic = f"vitrine/v1/{store}/gateway/gwt/state"
        listener.wait_for(lambda m: m[0] == state_topic and m[1] == b"online")
        gateway.kill()
        gateway.wait(10)
        listener.wait_for(lambda m: m[0] == state_topic and m[1] == b"offline")
    finally:
        listener.close()
    # the state is retained: a late subscriber sees it at once
    late = Listener(mosquitto, store)
    try:
        (msg,) = late.wait_for(lambda m: m[0] == state_topic)
        assert msg[1] == b"offline" and msg[2] is True
    finally:
        late.close()


def _service(store: str, state_dir: Path) -> Any:
    from gateway.service import GatewayService
    from gateway.settings import GatewaySettings
    from vitrine.contracts.layout import StoreLayout

    settings = GatewaySettings(mqtt_url="mqtt://127.0.0.1:1", gateway_id="gwt", state_dir=state_dir)
    return GatewayService(settings, StoreLayout.model_validate(gateway_layout(store)))


def _inbound(topic: str, payload: bytes, mid: int, at_s: float, *, dup: bool = False) -> Any:
    from datetime import UTC, datetime, timedelta

    from gateway.service import _Inbound

    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    return _Inbound(topic, payload, mid, 1, t0 + timedelta(seconds=at_s), dup)


def test_a_kill_after_a_checkpoint_restores_its_state_outbox_and_covered_inputs(
    store: str, tmp_path: Path
) -> None:
    """In process, real files, no broker: checkpoint, "kill" (no shutdown), start again."""
    topic = f"{store}/tevents/fx9600"
    other = "3074257bf7194e4000001a86"
    covered = [
        _inbound(topic, zebra(1, SGTIN_HEX), 1, 0.0),
        _inbound(topic, zebra(2, SGTIN_HEX), 2, 1.0),  # the second read: an arrival
        _inbound(topic, b'{"data": {"idHex": "zz-not-hex"', 3, 1.5),
    ]
    first = _service(store, tmp_path)
    second = _service(store, tmp_path)
    try:
        _kill_and_restart(first, second, topic, covered, other)
    finally:
        for service in (first, second):
            if service._journal is not None:
                service._journal.close()


def _kill_and_restart(first: Any, second: Any, topic: str, covered: list[Any], other: str) -> None:
    first.save_state()  # what run() does at start: generation 1, empty journal
    for item in covered:
        first._handle(item)
    assert [o.topic.rsplit("/", 1)[-1] for o in first._held] == ["item_arrived", "gateway"]
    first._checkpoint()  # journaled and fsynced; the publish and acks go nowhere (offline)
    assert first._held == [] and len(first._outbox) == 2
    # Handled after the checkpoint: a kill forgets it, and it was never acknowledged.
    first._handle(_inbound(topic, zebra(3, other), 4, 2.0))

    second._restore()
    assert second.pipeline.items.zone_of(SGTIN_HEX.upper()) == "floor"
    assert second.pipeline.sequences() == {"fx9600": 2}
    assert [(o.topic, o.payload) for o in second._outbox] == [
        (o.topic, o.payload) for o in first._outbox
    ], "the journal's facts, to publish again byte for byte (same event_id)"
    assert second._unsent
    second.save_state()
    # Their acknowledgements were lost: the DUP copies are skipped, not fed again.
    for n, item in enumerate(covered):
        second._handle(_inbound(item.topic, item.payload, 10 + n, 9.0 + n, dup=True))
    assert second._held == [] and len(second._pending) == 3
    # The uncovered input comes back and is handled afresh: no gap, no fact yet.
    second._handle(_inbound(topic, zebra(3, other), 20, 12.0, dup=True))
    assert second._held == [] and second.pipeline.sequences() == {"fx9600": 3}
    # A fresh copy of a covered payload (DUP off) is new input: fed, not skipped.
    second._handle(_inbound(topic, zebra(2, SGTIN_HEX), 21, 13.0))
    assert not second._skip


def test_checkpoints_of_one_input_each_still_remember_enough_covered_inputs(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group-committing gateway may checkpoint every input: the covered digests a
    restart recognises are bounded in inputs (REDELIVERY_INPUTS), not in checkpoints."""
    from gateway import service as service_module

    monkeypatch.setattr(service_module, "REDELIVERY_INPUTS", 30)
    topic = f"{store}/tevents/fx9600"
    first = _service(store, tmp_path)
    try:
        first.save_state()
        for n in range(50):
            first._handle(_inbound(topic, zebra(n + 1, SGTIN_HEX), n + 1, n * 1.0))
            first._checkpoint()
        assert 30 <= first._covered_n <= 31 and len(first._covered) == first._covered_n
        first.save_state()
        state = orjson.loads(first.state_file.read_bytes())
        expected = [service_module.input_digest(topic, zebra(n + 1, SGTIN_HEX)) for n in range(50)]
        assert state["redelivered"] == expected[-first._covered_n :]
    finally:
        if first._journal is not None:
            first._journal.close()


def _unheard(port: int) -> float:
    """The gateway's ``vitrine_gateway_facts_unheard_total`` (0 before it serves)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("vitrine_gateway_facts_unheard_total "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.parametrize("gateway_env", ["ops"], indirect=True)
@pytest.mark.parametrize("gateway_broker", ["own"], indirect=True)
def test_a_fact_nobody_was_subscribed_to_is_held_and_sent_when_a_consumer_subscribes(
    gateway_broker: Broker,
    store: str,
    gateway_env: dict[str, str],
    gateway: subprocess.Popen[bytes],
) -> None:
    """PUBACK "no matching subscribers" (16) is not a delivery: the broker dropped the
    fact. Seen after a broker crash that lost the ingest's session
    (tests/reliability/test_broker_restart.py); here nobody subscribes at first."""
    ops_port = int(gateway_env["VITRINE_OPS_PORT"])
    state = Listener(gateway_broker, store, "gateway/#")
    facts: Listener | None = None
    try:
        state.wait_for(lambda m: m[1] == b"online")
        state.publish(f"{store}/tevents/fx9600", zebra(1, SGTIN_HEX))
        time.sleep(0.6)  # pacing: the second read must fall outside dedupe_s (0.5 s)
        state.publish(f"{store}/tevents/fx9600", zebra(2, SGTIN_HEX))
        deadline = time.monotonic() + 20
        while _unheard(ops_port) < 1:  # published, and dropped by the broker
            assert time.monotonic() < deadline, "the fact was never published"
            time.sleep(0.05)
        facts = Listener(gateway_broker, store, "facts/+")
        (arrived,) = facts.wait_for(lambda m: m[0].endswith("/facts/item_arrived"), timeout=20)
        fact = parse_fact(arrived[1])
        assert isinstance(fact, ItemArrived) and fact.epc == SGTIN_HEX.upper()
        time.sleep(2.5)  # a second copy would come within the next hold (<= 2 s)
        assert [m[0] for m in facts.messages] == [arrived[0]], "published once, once heard"
    finally:
        state.close()
        if facts is not None:
            facts.close()

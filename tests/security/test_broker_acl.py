"""A production Mosquitto from ``vitrine broker credentials``: logins and per-store ACLs.

Two stores share one broker, as a retailer's stores do. Mosquitto answers a
forbidden PUBLISH silently for MQTT 3.1.1 (a PUBACK reason code for MQTT 5) and
grants every SUBSCRIBE, checking read access on each message it would deliver.
So each "nothing arrives" below is proved the queue-checker way: the forbidden
publish is PUBACKed first (the broker has routed it), then a marker the watcher
*may* read is published and awaited; the watcher's connection delivers in order,
so had the forbidden message been routed to it, it would have come first.
Every test also has its positive control: the same watcher does receive an
authorised publish.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from typer.testing import CliRunner

from tests.support.services import Broker, require_service
from vitrine.cli import app
from vitrine.runtime.broker import BrokerNotFoundError, start_local_broker
from vitrine.runtime.broker_auth import BrokerAuthError, write_broker_auth
from vitrine.runtime.layout_io import load_layout, parse_layout

pytestmark = pytest.mark.mqtt

STORES = ("sta", "stb")


def layout(store: str) -> dict[str, Any]:
    return {
        "store": {"id": store, "name": store},
        "zones": [
            {
                "id": "floor",
                "name": "Floor",
                "type": "sales_floor",
                "area": {"x": 0, "y": 0, "w": 5, "h": 5},
            }
        ],
        "readers": [
            {
                "id": rid,
                "format": "zebra",
                "topic": f"{store}/tevents/{rid}",
                "antennas": [{"port": 1, "zone": "floor", "position": [1, 1]}],
            }
            for rid in ("fx1", "fx2")
        ],
        "scanners": [{"id": "esp1", "room": "floor", "zone": "floor", "position": [2, 2]}],
        "espresense_prefix": f"espresense-{store}",
    }


def broker_dir(base: Path) -> Path:
    """A directory the broker can use after it drops root for the ``mosquitto`` user.

    pytest's temporary directories are 0700 root; Mosquitto started as root reads
    its password file and writes persistence as ``mosquitto`` (mosquitto.conf(5)).
    """
    if os.geteuid() != 0:
        return base
    made = Path(tempfile.mkdtemp(prefix="vitrine-broker-"))
    made.chmod(0o755)
    return made


class Client:
    """A paho MQTT 5 client logged in as one user, recording what it receives."""

    def __init__(self, broker: Broker, user: str | None, password: str | None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.puback: dict[int, int] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"acl-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.subacks: set[int] = set()
        self.connack: int | None = None
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None, "CONNACK")

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        with self._cond:
            self.connack = int(rc.value)
            self._cond.notify_all()

    def _on_subscribe(self, c: Any, u: Any, mid: int, codes: Any, props: Any) -> None:
        with self._cond:
            self.subacks.add(mid)
            self._cond.notify_all()

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cond:
            self.puback[mid] = int(rc.value)
            self._cond.notify_all()

    def _wait(self, pred: Any, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {self.messages}")
                self._cond.wait(left)

    def subscribe(self, *filters: str) -> None:
        result, mid = self.client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        assert result == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: mid in self.subacks, "SUBACK")

    def publish(self, topic: str, payload: bytes) -> int:
        """QoS 1; returns the PUBACK reason code once the broker has routed it."""
        info = self.client.publish(topic, payload, qos=1)
        self._wait(lambda: info.mid in self.puback, f"PUBACK of {topic}")
        return self.puback[info.mid]

    def received(self, payload: bytes, timeout: float = 10.0) -> None:
        self._wait(lambda: any(p == payload for _, p in self.messages), repr(payload), timeout)

    def payloads(self) -> list[bytes]:
        with self._cond:
            return [p for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, dict[str, str]]]:
    root = broker_dir(tmp_path_factory.mktemp("secured"))
    files = []
    for store in STORES:
        path = root / f"{store}.yaml"
        path.write_text(yaml.safe_dump(layout(store)))
        files.append(path)
    out = root / "auth"
    args = ["broker", "credentials", "--out", str(out), "--gateway", "gw1"]
    for f in files:
        args += ["--layout", str(f)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    creds = {
        str(k): str(v) for k, v in orjson.loads((out / "credentials.json").read_bytes()).items()
    }
    try:
        with start_local_broker(root / "broker", source=out / "mosquitto.conf") as broker:
            yield broker, creds
    except BrokerNotFoundError as exc:
        require_service("Mosquitto", str(exc))


@pytest.fixture
def login(secured: tuple[Broker, dict[str, str]]) -> Iterator[Any]:
    broker, creds = secured
    made: list[Client] = []

    def make(user: str) -> Client:
        c = Client(broker, user, creds[user])
        assert c.connack == 0, f"{user} refused: {c.connack}"
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def marker() -> bytes:
    return f"marker-{uuid.uuid4().hex}".encode()


def test_config_is_the_deploy_config_with_authentication(
    secured: tuple[Broker, dict[str, str]],
) -> None:
    broker, _ = secured
    text = broker.config.read_text()
    assert "allow_anonymous false" in text and "allow_anonymous true" not in text
    assert "password_file " in text and "acl_file " in text
    assert "max_queued_messages 200000" in text  # the rest of deploy/mosquitto.conf is kept


@pytest.mark.parametrize("user,password", [(None, None), ("server", "wrong"), ("nobody", "x")])
def test_anonymous_and_bad_passwords_are_refused(
    secured: tuple[Broker, dict[str, str]], user: str | None, password: str | None
) -> None:
    broker, _ = secured
    c = Client(broker, user, password)
    try:
        assert c.connack is not None and c.connack >= 0x80  # not authorised / bad credentials
    finally:
        c.close()


def test_a_gateway_cannot_publish_into_another_store(login: Any) -> None:
    gw_a, gw_b, server = login("gateway.sta.gw1"), login("gateway.stb.gw1"), login("server")
    server.subscribe("vitrine/v1/+/facts/+", "vitrine/v1/+/deadletter/+", "vitrine/v1/+/out/#")
    forbidden = [
        "vitrine/v1/stb/facts/item_arrived",
        "vitrine/v1/stb/deadletter/gateway",
    ]
    for topic in forbidden:
        assert gw_a.publish(topic, b"intruder") >= 0x80  # MQTT 5 PUBACK: not authorised
    # Nor write a stream only the server writes, in its own store.
    assert gw_a.publish("vitrine/v1/sta/out/staff/staff_alert", b"intruder") >= 0x80
    ok = marker()
    assert gw_b.publish("vitrine/v1/stb/facts/item_arrived", ok) == 0  # positive control
    server.received(ok)
    own = marker()
    assert gw_a.publish("vitrine/v1/sta/facts/item_arrived", own) < 0x80
    server.received(own)
    assert b"intruder" not in server.payloads()


def test_a_reader_cannot_publish_as_another_reader(login: Any) -> None:
    fx1, fx2, gw = login("reader.sta.fx1"), login("reader.sta.fx2"), login("gateway.sta.gw1")
    gw.subscribe("sta/tevents/+", "stb/tevents/+")
    assert fx1.publish("sta/tevents/fx2", b"intruder") >= 0x80
    assert fx1.publish("stb/tevents/fx1", b"intruder") >= 0x80
    assert fx1.publish("vitrine/v1/sta/facts/item_arrived", b"intruder") >= 0x80
    ok = marker()
    assert fx2.publish("sta/tevents/fx2", ok) < 0x80
    gw.received(ok)
    own = marker()
    assert fx1.publish("sta/tevents/fx1", own) < 0x80
    gw.received(own)
    assert b"intruder" not in gw.payloads()


def test_a_scanner_publishes_only_its_own_room(login: Any) -> None:
    esp_a, gw = login("scanner.sta.esp1"), login("gateway.sta.gw1")
    gw.subscribe("espresense-sta/#")
    assert esp_a.publish("espresense-sta/devices/x/otherroom", b"intruder") >= 0x80
    ok = marker()
    assert esp_a.publish("espresense-sta/devices/x/floor", ok) < 0x80
    gw.received(ok)
    assert b"intruder" not in gw.payloads()


WILDCARDS = (
    "#",
    "vitrine/v1/+/#",
    "vitrine/v1/+/facts/+",
    "vitrine/v1/stb/#",
    "+/tevents/+",
    "$SYS/#",
)


@pytest.mark.parametrize(
    "intruder,own_topic,own_publisher",
    [
        ("gateway.sta.gw1", "sta/tevents/fx1", "reader.sta.fx1"),
        ("scanner.sta.esp1", "espresense-sta/rooms/floor/telemetry", "scanner.sta.esp1"),
        ("mobile-api", "vitrine/v1/sta/out/shopper/shp1/guidance", "server"),
        ("server", "vitrine/v1/sta/facts/item_arrived", "gateway.sta.gw1"),
    ],
)
def test_no_client_reads_another_stores_or_shoppers_topics_wildcards_included(
    login: Any, intruder: str, own_topic: str, own_publisher: str
) -> None:
    spy = login(intruder)
    spy.subscribe(*WILDCARDS)
    # Authorised publishers write everything of store B, and those of store A's
    # topics the spy has no business reading. The server and mobile_api serve
    # both stores of this broker, so each store's facts (server) and shopper
    # streams (mobile_api) are theirs to read; raw vendor topics never are.
    secret = f"secret-{uuid.uuid4().hex}".encode()
    publishes = [
        ("gateway.stb.gw1", "vitrine/v1/stb/facts/shopper_entered", {"server"}),
        ("gateway.stb.gw1", "vitrine/v1/stb/deadletter/gateway", {"server"}),
        ("reader.stb.fx1", "stb/tevents/fx1", set()),
        ("scanner.stb.esp1", "espresense-stb/devices/x/floor", set()),
        ("server", "vitrine/v1/stb/out/shopper/shp2/guidance", {"mobile-api"}),
        ("server", "vitrine/v1/sta/out/shopper/shp1/offer", {"mobile-api"}),
        ("server", "vitrine/v1/sta/out/staff/staff_alert", set()),
        ("reader.sta.fx2", "sta/tevents/fx2", {"gateway.sta.gw1"}),
        ("gateway.sta.gw1", "vitrine/v1/sta/facts/item_arrived", {"server"}),
    ]
    for user, topic, allowed in publishes:
        if intruder not in allowed and user != intruder:
            assert login(user).publish(topic, secret) < 0x80, (user, topic)
    ok = marker()
    assert login(own_publisher).publish(own_topic, ok) < 0x80
    spy.received(ok)  # positive control: the spy's subscription works
    leaked = [t for t, p in spy.messages if p == secret or t.startswith("$SYS")]
    assert leaked == []


def test_only_the_monitor_reads_sys(login: Any) -> None:
    monitor = login("monitor")
    monitor.subscribe("$SYS/broker/version")
    monitor._wait(lambda: any(t == "$SYS/broker/version" for t, _ in monitor.messages), "$SYS")
    gw = login("gateway.sta.gw1")
    gw.subscribe("$SYS/broker/version", "$SYS/#")
    ok = marker()
    gw.subscribe("sta/tevents/fx1")
    assert login("reader.sta.fx1").publish("sta/tevents/fx1", ok) < 0x80
    gw.received(ok)
    assert not [t for t, _ in gw.messages if t.startswith("$SYS")]


def test_two_stores_sharing_a_vendor_topic_are_refused(tmp_path: Path) -> None:
    a = parse_layout(orjson.dumps(layout("sta")), json=True)
    clash = layout("stb")
    clash["readers"][0]["topic"] = "sta/tevents/fx1"
    b = parse_layout(orjson.dumps(clash), json=True)
    with pytest.raises(BrokerAuthError, match="sta/tevents/fx1"):
        write_broker_auth([a, b], tmp_path / "auth")


def test_rerunning_keeps_passwords_and_hashes_them(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(layout("sta")))
    first = write_broker_auth([load_layout(path)], tmp_path / "auth")
    again = write_broker_auth([load_layout(path)], tmp_path / "auth")
    assert first == again
    passwd = (tmp_path / "auth" / "passwd").read_text()
    assert all(pw not in passwd for pw in first.values())  # hashed, not plain
    assert (tmp_path / "auth" / "credentials.json").stat().st_mode & 0o077 == 0

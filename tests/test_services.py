"""The harness itself: real Mosquitto relays, real PostgreSQL answers."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.services import Broker, start_mosquitto


@pytest.mark.mqtt
def test_mosquitto_from_project_config_relays_qos1(mosquitto: Broker) -> None:
    got = threading.Event()
    received: list[bytes] = []

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        got.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe("harness/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    try:
        # The subscription may not be active yet: publish until one arrives.
        for _ in range(50):
            pub.publish("harness/ping", b"hello", qos=1).wait_for_publish(5)
            if got.wait(0.1):
                break
        assert received and received[0] == b"hello"
    finally:
        for c in (pub, sub):
            c.loop_stop()
            c.disconnect()


@pytest.mark.postgres
def test_postgres_database_is_ours(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("select current_database()"))
            .scalar_one()
            .startswith("vitrine_test_")
        )
    engine.dispose()


@pytest.mark.mqtt
def test_the_local_broker_saves_its_state_in_a_directory_only_its_starter_can_reach(
    tmp_path: Path,
) -> None:
    """pytest's directories are 0700; as root, Mosquitto used to drop to its own user
    and fail every save there, so a restart lost every session (the outbox test
    that restarts its broker failed 1 run in 10)."""
    workdir = tmp_path / "broker"
    with start_mosquitto(workdir) as broker:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.publish("state/kept", b"1", qos=1, retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
    assert (workdir / "mosquitto.db").is_file(), (workdir / "mosquitto.log").read_text()
    assert "Permission denied" not in (workdir / "mosquitto.log").read_text()

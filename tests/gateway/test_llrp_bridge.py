"""``vitrine readers llrp-bridge``: a real LLRP session (the simulator on TCP, sllurp as
the client) → real Mosquitto → the gateway's llrp adapter.

The simulator (firmware_sim/llrp_reader.py) is built to the LLRP 1.0.1 spec
independently of sllurp; what the bridge publishes is what sllurp decoded from it.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import typer
from paho.mqtt.enums import CallbackAPIVersion
from sllurp.llrp import LLRPMessage
from typer.testing import CliRunner

from firmware_sim.llrp_reader import (
    LlrpReaderSimulator,
    ReportSelector,
    RoSpec,
    Sighting,
    SimTag,
    encode_ro_access_report,
)
from gateway.adapters import parse
from gateway.adapters.llrp import LlrpAdapter
from gateway.cli import register
from gateway.llrp_bridge import (
    Backoff,
    BridgeConfig,
    LlrpBridge,
    encode_event,
    encode_reports,
    encode_status,
)
from gateway.reads import AdapterOutput, DeviceEvent, RfidRead
from tests.support.services import Broker

TAGS = (
    SimTag("3034257BF4000040000003E8", 1, -45.0),
    SimTag("3034257BF4000080000003E8", 2, -60.0),
    SimTag("E2801160600002054D8A", 3, -70.0),  # 80-bit, non-SGTIN: EPCData, kept opaque
)
T0 = 1_700_000_000_000_000


# ------------------------------------------------------------------- units


def test_what_sllurp_decodes_round_trips_through_json_and_the_adapter() -> None:
    spec = RoSpec(1, (0,), selector=ReportSelector(rospec_id=True, channel_index=True))
    wire = encode_ro_access_report(
        3, [Sighting(bytes.fromhex(TAGS[0].epc), 1, -47, T0, T0 + 250_000, count=5)], spec
    )
    tag_reports = LLRPMessage(msgbytes=wire).msgdict["RO_ACCESS_REPORT"]["TagReportData"]
    from_json = parse("llrp", encode_reports(tag_reports), reader="r1")
    from_objects = LlrpAdapter().parse_reports(tag_reports, reader="r1")
    expected = RfidRead(
        epc=TAGS[0].epc,  # type: ignore[arg-type]
        antenna=1,
        rssi_dbm=-47.0,
        timestamp=datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC),
        reader="r1",
        seen_count=5,
    )
    assert from_json == from_objects == [expected]


def test_reader_events_as_sllurp_decodes_them() -> None:
    # READER_EVENT_NOTIFICATION(63) › ReaderEventNotificationData(246) ›
    # UTCTimestamp(128) + AntennaEvent(255: u8 EventType 0 = disconnected, u16 port 2).
    body = struct.pack("!HHQ", 128, 12, T0) + struct.pack("!HHBH", 255, 7, 0, 2)
    data = struct.pack("!HH", 246, 4 + len(body)) + body
    wire = struct.pack("!HII", 0x0400 | 63, 10 + len(data), 9) + data
    decoded = LLRPMessage(msgbytes=wire).msgdict["READER_EVENT_NOTIFICATION"]
    (event,) = parse("llrp", encode_event(decoded["ReaderEventNotificationData"]), reader="r1")
    assert event == DeviceEvent(
        "r1",
        "antenna_disconnected",
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        antenna=2,
    )
    (beat,) = parse("llrp", b'{"KEEPALIVE":{}}', reader="r1")
    assert beat == DeviceEvent("r1", "heartbeat", None)
    (status,) = parse("llrp", encode_status("disconnected", "x", host="h", port=1), reader="r1")
    assert isinstance(status, DeviceEvent) and status.event == "status"
    assert status.detail["status"] == "disconnected"


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, cap in zip(delays, (0.5, 1.0, 2.0, 4.0, 4.0, 4.0), strict=True):
        assert cap / 2 <= delay <= cap
    backoff.reset()
    assert backoff.next_delay() <= 0.5


# ------------------------------------------------------------- integration


class Tap:
    """A subscriber keeping every payload on one topic, in order."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.payloads.append(bytes(msg.payload))
            self._cond.notify_all()

    def outputs(self, start: int = 0) -> list[AdapterOutput]:
        with self._cond:
            payloads = self.payloads[start:]
        return [out for p in payloads for out in parse("llrp", p, reader="r1")]

    def wait(self, pred: Any, what: str, start: int = 0, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.outputs(start)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._cond.wait(left)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _reads(outputs: list[AdapterOutput]) -> list[RfidRead]:
    return [o for o in outputs if isinstance(o, RfidRead)]


def _statuses(outputs: list[AdapterOutput]) -> list[object]:
    return [
        o.detail["status"] for o in outputs if isinstance(o, DeviceEvent) and o.event == "status"
    ]


def _all_tags(outputs: list[AdapterOutput]) -> bool:
    return {r.epc for r in _reads(outputs)} == {t.epc for t in TAGS}


@pytest.fixture
def tap(mosquitto: Broker) -> Iterator[tuple[Tap, str]]:
    topic = f"llrp/{uuid.uuid4().hex[:8]}/tags"
    tap = Tap(mosquitto, topic)
    yield tap, topic
    tap.close()


@pytest.mark.mqtt
def test_reports_reach_the_adapter_and_resume_after_a_reader_drop(
    mosquitto: Broker, tap: tuple[Tap, str]
) -> None:
    listener, topic = tap
    started = datetime.now(UTC)
    stop = threading.Event()
    with LlrpReaderSimulator(TAGS, port=0, round_s=0.05, read_rate=0.9) as sim:
        bridge = LlrpBridge(
            BridgeConfig(
                host="127.0.0.1",
                port=sim.port,
                topic=topic,
                mqtt_url=mosquitto.url,
                reader="r1",
                antennas=(0,),
                report_timeout_ms=200,
                keepalive_ms=500,
                backoff_initial_s=0.1,
                backoff_max_s=0.5,
            ),
            rng=random.Random(1),
        )
        thread = threading.Thread(target=bridge.run, args=(stop,))
        thread.start()
        try:
            listener.wait(_all_tags, "a read of every tag")
            listener.wait(
                lambda o: any(isinstance(x, DeviceEvent) and x.event == "heartbeat" for x in o),
                "a reader keepalive as a heartbeat",
            )
            outputs = listener.outputs()
            assert _statuses(outputs)[0] == "connected"
            for read in _reads(outputs):
                tag = next(t for t in TAGS if t.epc == read.epc)
                assert read.antenna == tag.antenna and read.reader == "r1"
                assert read.rssi_dbm is not None and abs(read.rssi_dbm - tag.rssi_dbm) <= 8
                assert read.seen_count is not None and read.seen_count >= 1
                assert read.timestamp is not None and not read.clock_suspect
                assert started - timedelta(seconds=1) <= read.timestamp <= datetime.now(UTC)

            mark = len(listener.payloads)
            sim.drop_connections()
            listener.wait(
                lambda o: _statuses(o)[:2] == ["disconnected", "connected"] and _all_tags(o),
                "disconnected, reconnected and every tag read again",
                start=mark,
            )
            assert sim.connections == 2 and bridge.sessions == 2
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive()
    listener.wait(lambda o: _statuses(o)[-1:] == ["disconnected"], "the stopped status")


@pytest.mark.mqtt
def test_a_silent_reader_is_dropped_by_the_watchdog(
    mosquitto: Broker, tap: tuple[Tap, str]
) -> None:
    listener, topic = tap
    # Accepts TCP and never says a word: a reader that lost power mid-session
    # looks like this from the client's side (a half-open connection).
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    server_thread = threading.Thread(
        target=lambda: accepted.extend([server.accept()[0], server.accept()[0]]), daemon=True
    )
    server_thread.start()
    stop = threading.Event()
    bridge = LlrpBridge(
        BridgeConfig(
            host="127.0.0.1",
            port=server.getsockname()[1],
            topic=topic,
            mqtt_url=mosquitto.url,
            keepalive_ms=200,
            backoff_initial_s=0.05,
        ),
        rng=random.Random(1),
    )
    thread = threading.Thread(target=bridge.run, args=(stop,))
    thread.start()
    try:
        server_thread.join(timeout=10)
        assert len(accepted) == 2, "the bridge did not start a second session"
        listener.wait(lambda o: "disconnected" in _statuses(o), "a disconnected status")
        status = next(
            o for o in listener.outputs() if isinstance(o, DeviceEvent) and o.event == "status"
        )
        assert "silent" in str(status.detail.get("message"))
    finally:
        stop.set()
        thread.join(timeout=10)
        for sock in accepted:
            sock.close()
        server.close()


@pytest.mark.mqtt
def test_the_command_as_a_process(mosquitto: Broker, tap: tuple[Tap, str], tmp_path: Path) -> None:
    listener, topic = tap
    with LlrpReaderSimulator(TAGS, port=0, round_s=0.05) as sim:
        env = {**os.environ, "VITRINE_MQTT_URL": mosquitto.url, "VITRINE_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "vitrine", "readers", "llrp-bridge", "--host", "127.0.0.1",
             "--port", str(sim.port), "--topic", topic, "--reader", "r1", "--antennas", "1,2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            listener.wait(
                lambda o: {r.antenna for r in _reads(o)} == {1, 2}, "reads from antennas 1 and 2"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr.decode()[-2000:]
    listener.wait(lambda o: _statuses(o)[-1:] == ["disconnected"], "the stopped status")
    # The AISpec named antennas 1 and 2: the tag on antenna 3 is never read.
    assert TAGS[2].epc not in {r.epc for r in _reads(listener.outputs())}

    # What integrators run on a capture: `vitrine readers parse --format llrp`.
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b"\n".join(listener.payloads))
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["readers", "parse", "--format", "llrp", str(capture)])
    assert result.exit_code == 0, result.output
    printed = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {p["epc"] for p in printed} == {TAGS[0].epc, TAGS[1].epc}
    assert {p["gtin"] for p in printed} == {"00614141000012", "00614141000029"}

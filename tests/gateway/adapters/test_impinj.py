"""Impinj IoT device interface (R700/R720) and Speedway Connect, from WIRE-FORMATS §2."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.adapters import AdapterError, parse
from gateway.reads import DeviceEvent, RfidRead, Skipped

HOST = "impinj-13-f8-f5"


def event(body: dict[str, object], **envelope: object) -> bytes:
    return orjson.dumps(
        {"timestamp": "2023-05-01T10:00:00.123456789Z", "hostname": HOST, **envelope, **body}
    )


def tag(**fields: object) -> bytes:
    return event({"tagInventoryEvent": fields}, eventType="tagInventory")


def only_read(payload: bytes) -> RfidRead:
    (read,) = parse("impinj", payload)
    assert isinstance(read, RfidRead)
    return read


@pytest.mark.parametrize(
    ("b64", "hex_"),
    [
        ("4oARkaUDAGXybMv_", "E2801191A5030065F26CCBFF"),  # §2 captured: '_' = URL-safe, no padding
        ("ikUCJA==", "8A450224"),  # §2: padded, 32-bit EPC
        ("ikUCJA", "8A450224"),  # the same without padding
        ("NAA=", "3400"),  # §2: pc value, padded
    ],
)
def test_base64url_epc_padding_optional_s2(b64: str, hex_: str) -> None:
    assert only_read(tag(epc=b64, antennaPort=1)).epc == hex_


def test_default_reporting_fields_units_s2() -> None:
    # Default on: epc, tid, antennaPort, transmitPowerCdbm, peakRssiCdbm, frequency.
    read = only_read(
        tag(epc="4oARkaUDAGXybMv_", tid="4oARkaUDAGXybMv_", antennaPort=2, antennaName="2",
            transmitPowerCdbm=3000, peakRssiCdbm=-5750, frequency=920250)
    )  # fmt: skip
    assert read.rssi_dbm == -57.5  # centi-dBm
    assert read.frequency_mhz == 920.25  # kHz
    assert read.antenna == 2
    assert read.tid == "E2801191A5030065F26CCBFF"
    assert read.reader == HOST  # no configured id: the event's hostname
    assert read.timestamp == datetime(2023, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)  # ns truncated


def test_epchex_wins_and_lastseentime_is_the_read_time_s2() -> None:
    read = only_read(
        tag(epc="ikUCJA==", epcHex="3074257BF7194E4000001A85", lastSeenTime="2023-05-01T09:59:59Z",
            phaseAngle=31.64)
    )  # fmt: skip
    assert read.epc == "3074257BF7194E4000001A85"
    assert read.timestamp == datetime(2023, 5, 1, 9, 59, 59, tzinfo=UTC)
    assert read.phase_deg == 31.64


def test_missing_event_type_dispatches_on_the_object_s2() -> None:
    # 2021 HTTP-stream capture (impinj-13-f8-f5) carries no eventType.
    payload = event(
        {"tagInventoryEvent": {"epc": "ikUCJA==", "antennaPort": 1, "peakRssiCdbm": -6100}}
    )
    assert only_read(payload).rssi_dbm == -61.0


def test_antenna_connect_disconnect_s2() -> None:
    (down,) = parse(
        "impinj",
        event({"antennaDisconnectedEvent": {"antennaPort": 3}}, eventType="antennaDisconnected"),
        reader="r700",
    )
    (up,) = parse(
        "impinj", event({"antennaConnectedEvent": {"antennaPort": 3}}, eventType="antennaConnected")
    )
    assert isinstance(down, DeviceEvent) and isinstance(up, DeviceEvent)
    assert (down.event, down.antenna, down.device) == ("antenna_disconnected", 3, "r700")
    assert (up.event, up.antenna) == ("antenna_connected", 3)


def test_overflow_reports_the_loss_s2() -> None:
    payload = event(
        {"overflowEvent": {"firstEventTimestamp": "2023-05-01T09:00:00Z",
                           "lastEventTimestamp": "2023-05-01T09:01:00Z",
                           "eventsPurged": 1234, "eventsRemaining": 10}},
        eventType="overflow",
    )  # fmt: skip
    (overflow,) = parse("impinj", payload)
    assert isinstance(overflow, DeviceEvent)
    assert (overflow.event, overflow.lost) == ("overflow", 1234)


def test_inventory_status_and_unknown_event_types_are_not_errors_s2() -> None:
    (status,) = parse(
        "impinj",
        event({"inventoryStatusEvent": {"status": "running"}}, eventType="inventoryStatus"),
    )
    (other,) = parse("impinj", event({"gpiTransitionEvent": {"gpi": 1}}, eventType="gpiTransition"))
    assert isinstance(status, DeviceEvent) and status.event == "inventory_status"
    assert isinstance(other, Skipped)


def test_ndjson_stream_with_keepalives_and_data_prefix_s2() -> None:
    stream = (
        tag(epc="ikUCJA==") + b"\r\n\r\n" + b"data: " + tag(epc="NAA=") + b"\r\n"
        + event({"overflowEvent": {"eventsPurged": 5}}) + b"\r\n"
    )  # fmt: skip
    outputs = parse("impinj", stream)
    assert [o.epc for o in outputs if isinstance(o, RfidRead)] == ["8A450224", "3400"]
    assert [o.lost for o in outputs if isinstance(o, DeviceEvent)] == [5]


def test_bad_line_in_a_stream_is_named_and_the_rest_survives() -> None:
    stream = tag(epc="ikUCJA==") + b"\n{broken\n" + tag(epc="NAA=") + b"\n"
    with pytest.raises(AdapterError, match="line 2") as caught:
        parse("impinj", stream)
    assert len(caught.value.partial) == 2


@pytest.mark.parametrize("payload", [b"\r\n", b"", b"\r\n\r\n"])
def test_keepalive_only_is_skipped_s2(payload: bytes) -> None:
    assert all(isinstance(o, Skipped) for o in parse("impinj", payload))


@pytest.mark.parametrize("text", [b"connection lost", b"connected", b"disconnected\r\n"])
def test_will_and_connect_strings_are_status_never_rejected_s2(text: bytes) -> None:
    (status,) = parse("impinj", text, topic="r700/will", reader="r700")
    assert isinstance(status, DeviceEvent)
    assert status.event == "status"
    assert status.detail["message"] == text.decode().strip()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (tag(antennaPort=1), "neither epc nor epcHex"),
        (tag(epc="ikUCJA=!"), "not base64url"),
        (tag(epc="ikUCJ"), "impossible base64 length"),
        (tag(epcHex="3074G"), "not hexadecimal"),
        (tag(epc="ikUCJA==", peakRssiCdbm="-5750"), "expected a number"),
        (event({"tagInventoryEvent": []}), "not a JSON object"),
        (event({}, eventType="tagInventory"), "no tagInventoryEvent"),
        (b'{"timestamp":"2023-05-01T10:00:00Z"}', "neither eventType nor"),
        (b'{"tagInventoryEvent": {"epc": "ikUCJA=="}', "not valid JSON"),
    ],
)
def test_malformed_events_are_rejected_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(AdapterError, match=reason):
        parse("impinj", payload)


# ---------------------------------------------------------------- Speedway Connect (§2)

SPEEDWAY = (
    b'{"antennaPort":7,"epc":"999908290000000000000004","tid":"E28011002000564500000002",'
    b'"firstSeenTimestamp":"2018-06-14T00:15:54.36879Z","peakRssi":-51,"isHeartBeat":false}'
)


def test_speedway_flat_json_is_hex_and_dbm_s2() -> None:
    (read,) = parse("speedway", SPEEDWAY, reader="xarray-1")
    assert read == RfidRead(
        epc="999908290000000000000004",  # type: ignore[arg-type]
        antenna=7,
        rssi_dbm=-51.0,
        timestamp=datetime(2018, 6, 14, 0, 15, 54, 368790, tzinfo=UTC),
        reader="xarray-1",
        tid="E28011002000564500000002",
    )


def test_speedway_heartbeat_s2() -> None:
    payload = b'{"antennaPort":0,"epc":"","tid":"","firstSeenTimestamp":"2018-06-14T00:16:00Z","peakRssi":0,"isHeartBeat":true}'  # noqa: E501
    (beat,) = parse("speedway", payload, reader="xarray-1")
    assert isinstance(beat, DeviceEvent) and beat.event == "heartbeat"


def test_speedway_array_and_lines() -> None:
    assert len(parse("speedway", b"[" + SPEEDWAY + b"," + SPEEDWAY + b"]")) == 2
    assert len(parse("speedway", SPEEDWAY + b"\r\n" + SPEEDWAY + b"\r\n")) == 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"7,999908290000000000000004,E28011002000564500000002,2018-06-14", "key-value output"),
        (b'{"antennaPort":7,"peakRssi":-51}', "has no EPC"),
        (b'{"epc":"99","isHeartBeat":"no"}', "expected a boolean"),
    ],
)
def test_speedway_rejects(payload: bytes, reason: str) -> None:
    with pytest.raises(AdapterError, match=reason):
        parse("speedway", payload)

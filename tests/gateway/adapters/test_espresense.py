"""ESPresense scanner payloads, firmware v1–v4 field sets (WIRE-FORMATS §5)."""

from __future__ import annotations

import orjson
import pytest

from gateway.adapters import AdapterError, parse
from gateway.adapters.espresense import parse_ibeacon_id
from gateway.reads import BleRead, DeviceEvent, IBeacon, Skipped

BEACON_ID = "iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-1-2"  # §5 verified vector's identity


def report(topic: str, **fields: object) -> BleRead:
    (read,) = parse("espresense", orjson.dumps(fields), topic=topic, reader="esp-kitchen")
    assert isinstance(read, BleRead)
    return read


def test_v2_field_set_interval_and_raw_s5() -> None:
    read = report(
        f"espresense/devices/{BEACON_ID}/fitting_room_1",
        id=BEACON_ID, name="", disc=None, idType=4, **{"rssi@1m": -59}, rssi=-75, raw=2.86,
        distance=2.41, speed=0.02, mac="c47c8d6a1f02", interval=1000,
    )  # fmt: skip
    assert read.room == "fitting_room_1"
    assert read.ibeacon == IBeacon("fda50693-a4e2-4fb1-afcf-c6eb07647825", 1, 2)
    assert (read.rssi_dbm, read.distance_m, read.rssi_at_1m) == (-75.0, 2.41, -59.0)
    assert read.mac == "c47c8d6a1f02"
    assert read.scanner == "esp-kitchen"


def test_v3_field_set_int_replaces_interval_s5() -> None:
    read = report(
        "espresense/devices/apple:1006:10-12/kitchen",
        mac="4a1b2c3d4e5f", id="apple:1006:10-12", name="", idType=10, **{"rssi@1m": -59},
        rssi=-81, raw=6.1, distance=5.9, var=0.4, close=False, int=300,
    )  # fmt: skip
    assert (read.device_id, read.room, read.ibeacon) == ("apple:1006:10-12", "kitchen", None)


def test_v4_field_set_float_rssi_and_no_rssi_at_1m_s5() -> None:
    # v4.0.6: no raw/speed/idType; rssi@1m omitted if unknown; rssi is a float.
    read = report(
        "espresense/devices/phone:alice/till",
        mac="4a1b2c3d4e5f", id="phone:alice", name="", rssi=-81.1, rxAdj=0, rssiVar=1.2,
        distance=6.58, var=0.1, close=False, int=500,
    )  # fmt: skip
    assert (read.rssi_dbm, read.rssi_at_1m, read.distance_m) == (-81.1, None, 6.58)


def test_v1_reports_went_to_the_room_topic_s5() -> None:
    read = report("espresense/rooms/entrance", id="c47c8d6a1f02", rssi=-70, distance=1.5)
    assert (read.room, read.device_id) == ("entrance", "c47c8d6a1f02")


@pytest.mark.parametrize(
    "device_id",
    ["irk:0123456789abcdef0123456789abcdef", "eddy:edd1ebeac04e5defa017-0bdb87539b67",
     "c47c8d6a1f02", "msft:cdp:0109", "name:tile"],
)  # fmt: skip
def test_other_ids_are_kept_as_given_s5(device_id: str) -> None:
    read = report(f"espresense/devices/{device_id}/office", id=device_id, rssi=-60)
    assert (read.device_id, read.ibeacon) == (device_id, None)


def test_prefix_is_configuration_room_is_last_level() -> None:
    read = report("store42/esp/devices/phone:bob/stockroom", id="phone:bob", rssi=-60)
    assert read.room == "stockroom"


def test_node_status_and_telemetry_are_health_s5() -> None:
    (status,) = parse("espresense", b"offline", topic="espresense/rooms/kitchen/status")
    (telemetry,) = parse(
        "espresense",
        b'{"ip":"10.0.0.5","uptime":300,"free":101000}',
        topic="espresense/rooms/kitchen/telemetry",
    )
    (garbled,) = parse("espresense", b"{oops", topic="espresense/rooms/kitchen/telemetry")
    assert isinstance(status, DeviceEvent) and status.detail == {
        "room": "kitchen",
        "status": "offline",
    }
    assert isinstance(telemetry, DeviceEvent) and telemetry.event == "heartbeat"
    assert isinstance(garbled, DeviceEvent) and "telemetry_error" in garbled.detail


@pytest.mark.parametrize(
    "topic", ["espresense/rooms/kitchen/max_distance", "espresense/rooms/*/absorption/set"]
)
def test_settings_are_skipped_s5(topic: str) -> None:
    (skipped,) = parse("espresense", b"3.5", topic=topic)
    assert isinstance(skipped, Skipped)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("iBeacon:FDA50693-A4E2-4FB1-AFCF-C6EB07647825-65535-0", IBeacon("fda50693-a4e2-4fb1-afcf-c6eb07647825", 65535, 0)),  # noqa: E501
        ("iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-65536-0", None),  # major is uint16
        ("iBeacon:fda50693a4e24fb1afcfc6eb07647825-1-2", None),
        ("apple:1006:10-12", None),
    ],
)  # fmt: skip
def test_ibeacon_id_parsing_s5(value: str, expected: IBeacon | None) -> None:
    assert parse_ibeacon_id(value) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"rssi":-60}', "has no 'id'"),
        (b'{"id":"","rssi":-60}', "empty 'id'"),
        (b'{"id":"phone:x"}', "neither 'rssi' nor 'distance'"),
        (b'{"id":"phone:x","rssi":"-60"}', "expected a number"),
        (b'{"id":"phone:x","rssi":-60,"distance":-1}', "expected"),
        (b'{"id":7,"rssi":-60}', "expected a string"),
        (b"[1,2]", "expected a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_reports_are_rejected(payload: bytes, reason: str) -> None:
    with pytest.raises(AdapterError, match=reason):
        parse("espresense", payload, topic="espresense/devices/x/kitchen")

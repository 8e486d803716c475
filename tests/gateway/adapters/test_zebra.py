"""Zebra IoT Connector payloads, built from WIRE-FORMATS §1 (vendor examples and captures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from gateway.adapters import AdapterError, parse
from gateway.reads import BleRead, DeviceEvent, RfidRead

# §1 "Tag data event": the vendor intro-page example, CUSTOM mode, -0600 offset.
CUSTOM = (
    b'{"data":{"eventNum":5938,"format":"epc","idHex":"000000000000000000000343"},'
    b'"timestamp":"2024-09-05T01:07:01.785-0600","type":"CUSTOM"}'
)


def zebra(mode: str, data: dict[str, object], ts: str = "2023-02-24T10:00:00.123+0300") -> bytes:
    return orjson.dumps({"data": data, "timestamp": ts, "type": mode})


def test_custom_mode_has_only_eventnum_format_idhex_s1() -> None:
    (read,) = parse("zebra", CUSTOM, reader="fx7500-1")
    assert read == RfidRead(
        epc="000000000000000000000343",  # type: ignore[arg-type]
        antenna=None,
        rssi_dbm=None,
        timestamp=datetime(2024, 9, 5, 7, 7, 1, 785000, tzinfo=UTC),
        reader="fx7500-1",
        sequence=5938,
    )


@pytest.mark.parametrize(
    ("mode", "data", "antenna", "rssi", "reads"),
    [
        # §1 "Fields present by default depend on the mode" (FXR60/FXR90 captures).
        ("SIMPLE", {"eventNum": 1, "format": "epc", "idHex": "e2801160600002"}, None, None, None),
        (
            "CONVEYOR",
            {"eventNum": 2, "format": "epc", "idHex": "e2801160600002", "antenna": 3},
            3,
            None,
            None,
        ),
        (
            "INVENTORY",
            {
                "eventNum": 3,
                "format": "epc",
                "idHex": "e2801160600002",
                "antenna": 1,
                "peakRssi": -62,
                "reads": 4,
            },
            1,
            -62.0,
            4,
        ),
    ],
)
def test_every_mode_field_set_s1(
    mode: str, data: dict[str, object], antenna: int | None, rssi: float | None, reads: int | None
) -> None:
    (read,) = parse("zebra", zebra(mode, data))
    assert isinstance(read, RfidRead)
    assert read.epc == "E2801160600002"  # lower-case idHex normalised
    assert (read.antenna, read.rssi_dbm, read.seen_count) == (antenna, rssi, reads)


def test_superset_fields_from_vendor_schema_s1() -> None:
    data = {
        "eventNum": 9, "format": "epc", "idHex": "3074257bf7194e4000001a85", "antenna": 2,
        "peakRssi": -55, "reads": 2, "channel": 866.3, "phase": -12.5, "PC": "3000",
        "TID": "e2801160200072f1", "CRC": "abcd", "userDefined": None,
    }  # fmt: skip
    (read,) = parse("zebra", zebra("INVENTORY", data, "2024-01-01T00:00:00Z"))
    assert isinstance(read, RfidRead)
    assert read.frequency_mhz == 866.3
    assert read.phase_deg == -12.5
    assert read.tid == "E2801160200072F1"
    assert read.timestamp == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "stamp",
    ["2024-09-05T10:07:01.785+0300", "2024-09-05T10:07:01.785+03:00", "2024-09-05T07:07:01.785Z"],
)
def test_three_timestamp_spellings_are_the_same_instant_s1(stamp: str) -> None:
    (read,) = parse("zebra", zebra("SIMPLE", {"idHex": "aabb"}, stamp))
    assert isinstance(read, RfidRead)
    assert read.timestamp == datetime(2024, 9, 5, 7, 7, 1, 785000, tzinfo=UTC)


def test_batched_array_yields_every_event_s1() -> None:
    batch = b"[" + CUSTOM + b"," + zebra("INVENTORY", {"idHex": "aabb", "antenna": 1}) + b"]"
    reads = parse("zebra", batch)
    assert [r.epc for r in reads if isinstance(r, RfidRead)] == ["000000000000000000000343", "AABB"]


def test_one_bad_event_in_a_batch_keeps_the_good_ones() -> None:
    batch = b"[" + CUSTOM + b"," + zebra("INVENTORY", {"antenna": 1}) + b"]"
    with pytest.raises(AdapterError, match=r"event 1: .*idHex has no EPC") as caught:
        parse("zebra", batch)
    assert [r.epc for r in caught.value.partial if isinstance(r, RfidRead)] == [
        "000000000000000000000343"
    ]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        # §1 "Management events" — verbatim shapes.
        (b'{"component":"RG","data":{"radio_control":{}},"eventNum":372,"timestamp":"2024-09-05T01:07:01.785-0600","type":"heartbeat"}', "heartbeat"),  # noqa: E501
        (b'{"component":"RG","data":{"pin":1,"state":"HIGH"},"eventNum":373,"timestamp":"2024-09-05T01:07:02.000-0600","type":"gpo"}', "gpo"),  # noqa: E501
        (b'{"component":"RG","data":{"pin":2,"state":"LOW"},"timestamp":"2024-09-05T01:07:02Z","type":"gpi"}', "gpi"),  # noqa: E501
        (b'{"component":"RG","data":{"errors":["antenna 3 disconnected"]},"type":"errors"}', "error"),  # noqa: E501
        (b'{"component":"SYS","data":{"warnings":["temperature"]},"type":"warnings","timestamp":"nonsense"}', "warning"),  # noqa: E501
        (b'{"component":"SYS","data":"anything","type":"firmwareUpdateProgress"}', "status"),
    ],
)  # fmt: skip
def test_management_events_are_device_events_never_rejected_s1(payload: bytes, kind: str) -> None:
    (event,) = parse("zebra", payload, reader="fx9600")
    assert isinstance(event, DeviceEvent)
    assert (event.event, event.device) == (kind, "fx9600")


def test_ble_data_event_is_a_ble_read_s1() -> None:
    # §1 "BLE_DATA events": capitalised keys, beaconType, a protocol sub-object, +00:00.
    payload = orjson.dumps(
        {
            "data": {
                "RSSI": -71, "Address": "C4:7C:8D:6A:1F:02", "AddressType": "PUBLIC",
                "UUIDs": [], "beaconType": "IBEACON",
                "iBeacon": {"UUID": "FDA50693-A4E2-4FB1-AFCF-C6EB07647825", "major": 1, "minor": 2},
            },
            "timestamp": "2024-05-01T12:00:00.000+00:00",
            "type": "BLE_DATA",
        }
    )  # fmt: skip
    (read,) = parse("zebra", payload, reader="fxr90")
    assert isinstance(read, BleRead)
    assert read.rssi_dbm == -71.0
    assert read.ibeacon is not None and (read.ibeacon.major, read.ibeacon.minor) == (1, 2)
    assert read.device_id == "iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-1-2"
    assert read.mac == "c47c8d6a1f02"
    assert read.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_generic_ble_keeps_the_address_as_device_id() -> None:
    payload = b'{"data":{"RSSI":-80,"Address":"c4:7c:8d:6a:1f:03","beaconType":"GENERIC_BLE"},"type":"BLE_DATA"}'  # noqa: E501
    (read,) = parse("zebra", payload)
    assert isinstance(read, BleRead)
    assert (read.device_id, read.ibeacon) == ("c47c8d6a1f03", None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"data":{"idHex":"xyz"},"type":"SIMPLE"}', "not hexadecimal"),
        (b'{"data":{"idHex":"abc"},"type":"SIMPLE"}', "odd number"),
        (b'{"data":{"format":"epc"},"type":"INVENTORY"}', "has no EPC"),
        (
            b'{"data":{"idHex":"aabb","antenna":"1"},"type":"INVENTORY"}',
            "antenna is '1', expected an integer",
        ),
        (b'{"data":{"idHex":"aabb","peakRssi":true},"type":"INVENTORY"}', "expected a number"),
        (b'{"data":{"idHex":"aabb"},"timestamp":"yesterday","type":"SIMPLE"}', "no time of day"),
        (b'{"data":[],"type":"SIMPLE"}', "no 'data' object"),
        (b'{"data":{"idHex":"aabb"},"type":"SIMPLE"', "not valid JSON"),
        (b"42", "expected a JSON object"),
        (b"{}", "neither a tag nor a management event"),
    ],
)
def test_malformed_tag_events_are_rejected_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(AdapterError, match=reason):
        parse("zebra", payload)


@pytest.mark.parametrize("field", ["eventNum", "antenna", "reads"])
def test_integers_beyond_64_bits_are_rejected_not_passed_on(field: str) -> None:
    # Found by the fuzz run: such a value reached reader health and the JSON
    # encoder refused it there, stopping the gateway's loop.
    data = {"eventNum": 1, "format": "epc", "idHex": "3074257bf7194e4000001a85", field: 2**70}
    event = {"data": data, "timestamp": "2024-09-05T01:07:01.785Z", "type": "INVENTORY"}
    payload = json.dumps(event).encode()  # orjson itself refuses such integers
    with pytest.raises(AdapterError, match="64-bit"):
        parse("zebra", payload)

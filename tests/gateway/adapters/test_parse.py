"""The entry point: format detection, and no bytes ever raise anything but AdapterError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters import FORMATS, AdapterError, detect_format, parse
from gateway.reads import BleRead, DeviceEvent, RfidRead, Skipped


@pytest.mark.parametrize(
    ("payload", "topic", "expected"),
    [
        (b'{"data":{"idHex":"aa"},"timestamp":"2024-09-05T01:07:01.785-0600","type":"CUSTOM"}', None, "zebra"),  # noqa: E501
        (b'[{"data":{"idHex":"aa"},"type":"INVENTORY"}]', None, "zebra"),
        (b'{"component":"RG","data":{},"eventNum":1,"timestamp":"2024-01-01T00:00:00Z","type":"heartbeat"}', None, "zebra"),  # noqa: E501
        (b'{"timestamp":"2023-05-01T10:00:00Z","tagInventoryEvent":{"epc":"ikUCJA=="}}', None, "impinj"),  # noqa: E501
        (b"connection lost", "r700/will", "impinj"),
        (b"\r\n", None, "impinj"),
        (b'{"antennaPort":7,"epc":"99","firstSeenTimestamp":"2018-06-14T00:15:54Z","isHeartBeat":false}', None, "speedway"),  # noqa: E501
        (b'[{"EPC":"3008","AntennaID":1}]', None, "llrp"),
        (b'{"id":"phone:x","rssi":-60}', None, "espresense"),
        (b'{"id":"phone:x","rssi":-60}', "espresense/devices/phone:x/kitchen", "espresense"),
        (b"online", "espresense/rooms/kitchen/status", "espresense"),
    ],
)  # fmt: skip
def test_detect_format(payload: bytes, topic: str | None, expected: str) -> None:
    assert detect_format(payload, topic) == expected


@pytest.mark.parametrize("payload", [b"{nope", b'{"hello":1}', b"[1,2]", b'"x"'])
def test_undetectable_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(AdapterError, match="cannot detect"):
        detect_format(payload, None)


def test_unknown_format_is_an_adapter_error() -> None:
    with pytest.raises(AdapterError, match="unknown format"):
        parse("rfidcorp", b"{}")


_OUTPUTS = (RfidRead, BleRead, DeviceEvent, Skipped)


def _never_crashes(fmt: str, payload: bytes, topic: str | None) -> None:
    try:
        outputs = parse(fmt, payload, topic=topic, reader="r1")
    except AdapterError as exc:
        assert exc.reason
        assert all(isinstance(o, _OUTPUTS) for o in exc.partial)
    else:
        assert outputs and all(isinstance(o, _OUTPUTS) for o in outputs)


_TOPICS = st.sampled_from(
    [None, "espresense/devices/x/kitchen", "espresense/rooms/k/status", "espresense/rooms/k", "a/b"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "idHex",
                    "type",
                    "timestamp",
                    "antenna",
                    "peakRssi",
                    "tagInventoryEvent",
                    "epc",
                    "epcHex",
                    "peakRssiCdbm",
                    "eventType",
                    "overflowEvent",
                    "eventsPurged",
                    "isHeartBeat",
                    "antennaPort",
                    "id",
                    "rssi",
                    "distance",
                    "EPC",
                    "AntennaID",
                    "PeakRSSI",
                    "LastSeenTimestampUTC",
                    "Address",
                    "RSSI",
                    "beaconType",
                    "component",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMATS), payload=st.binary(max_size=200), topic=_TOPICS)
def test_arbitrary_bytes_only_ever_raise_adapter_error(
    fmt: str, payload: bytes, topic: str | None
) -> None:
    _never_crashes(fmt, payload, topic)


@settings(max_examples=300, deadline=None)
@given(fmt=st.sampled_from(FORMATS), document=_JSON, topic=_TOPICS, ndjson=st.booleans())
def test_arbitrary_json_only_ever_raises_adapter_error(
    fmt: str, document: object, topic: str | None, ndjson: bool
) -> None:
    payload = json.dumps(document).encode()
    if ndjson:
        payload = payload + b"\r\n" + payload + b"\n"
    _never_crashes(fmt, payload, topic)

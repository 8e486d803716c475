"""The Zebra fast path and the reference path give the same answer, byte for byte.

``ZebraAdapter.parse`` takes a fast path for the common tag event and hands
anything it is unsure of to ``ZebraAdapter.reference_parse`` (the per-field
helpers). These tests pin the two together: on the vendor samples of
WIRE-FORMATS §1, on generated Zebra-shaped payloads full of the quirks and bad
values the reference rejects, and on arbitrary bytes — the same outputs, or the
same rejection reason with the same ``partial``. A test also checks that the
fast path really is taken for the documented shapes, so the equivalence cannot
hold only because the fast path never runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters import AdapterError
from gateway.adapters._common import cached_epc
from gateway.adapters.zebra import TAG_MODES, ZebraAdapter, _fast_tag
from gateway.reads import AdapterOutput, RfidRead
from gateway.timestamps import parse_timestamp
from vitrine.contracts.ids import IdError, normalise_epc

ZEBRA = ZebraAdapter()

Outcome = tuple[str, object, tuple[AdapterOutput, ...]]


def outcome(fast: bool, payload: bytes) -> Outcome:
    parse = ZEBRA.parse if fast else ZEBRA.reference_parse
    try:
        return ("ok", None, tuple(parse(payload, reader="fx9600-1")))
    except AdapterError as exc:
        return ("rejected", exc.reason, exc.partial)


def strict(value: object) -> str:
    """``repr`` tells ``-55`` from ``-55.0`` and ``+03:00`` from UTC, where ``==`` does not."""
    return repr(value)


def assert_same(payload: bytes) -> None:
    reference = outcome(False, payload)
    fast = outcome(True, payload)
    assert fast == reference
    assert strict(fast) == strict(reference)


def assert_fast_is_reference(event: object) -> bool:
    """If the fast path takes ``event``, the reference reads it to the very same read."""
    read = _fast_tag(event, "fx9600-1")
    if read is None:
        return False
    reference = ZEBRA.reference_parse(json.dumps(event).encode(), reader="fx9600-1")
    assert [read] == reference
    assert strict([read]) == strict(reference)
    return True


# WIRE-FORMATS §1, verbatim or in the documented shapes.
SAMPLES = [
    # "Tag data event": the vendor intro-page example (CUSTOM, -0600, no colon).
    b'{"data":{"eventNum":5938,"format":"epc","idHex":"000000000000000000000343"},'
    b'"timestamp":"2024-09-05T01:07:01.785-0600","type":"CUSTOM"}',
    # Per-mode field sets (FXR60/FXR90 captures): SIMPLE, CONVEYOR, INVENTORY.
    b'{"data":{"eventNum":1,"format":"epc","idHex":"e2801160600002"},'
    b'"timestamp":"2024-09-05T10:07:01.785+03:00","type":"SIMPLE"}',
    b'{"data":{"eventNum":2,"format":"epc","idHex":"e2801160600002","antenna":3},'
    b'"timestamp":"2024-09-05T07:07:01.785Z","type":"CONVEYOR"}',
    b'[{"data":{"antenna":1,"eventNum":3,"format":"epc","idHex":"3074257bf7194e4000001a85",'
    b'"peakRssi":-62,"reads":4},"timestamp":"2023-02-24T10:00:00.123+0300","type":"INVENTORY"},'
    b'{"data":{"antenna":2,"eventNum":4,"format":"epc","idHex":"3074257bf7194e4000001a86",'
    b'"peakRssi":-71,"reads":1},"timestamp":"2023-02-24T10:00:00.125+0300","type":"INVENTORY"}]',
    # The vendor schema's superset of data keys.
    b'{"data":{"eventNum":9,"format":"epc","idHex":"3074257bf7194e4000001a85","antenna":2,'
    b'"peakRssi":-55,"reads":2,"channel":866.3,"phase":-12.5,"PC":"3000",'
    b'"TID":"e2801160200072f1","CRC":"abcd","XPC":"0000","USER":"00","accessResults":[],'
    b'"userDefined":null},"timestamp":"2024-01-01T00:00:00Z","type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb","channel":911.75,"phase":0},"type":"PORTAL"}',
    b'{"data":{"idHex":"aabb","antenna":1},"timestamp":"2024-01-01T00:00:00.5Z",'
    b'"type":"DIRECTIONALITY"}',
    # Management events in the data stream, BLE_DATA, and a mixed batch.
    b'{"component":"RG","data":{"radio_control":{}},"eventNum":372,'
    b'"timestamp":"2024-09-05T01:07:01.785-0600","type":"heartbeat"}',
    b'{"data":{"RSSI":-71,"Address":"C4:7C:8D:6A:1F:02","beaconType":"IBEACON",'
    b'"iBeacon":{"UUID":"FDA50693-A4E2-4FB1-AFCF-C6EB07647825","major":1,"minor":2}},'
    b'"timestamp":"2024-05-01T12:00:00.000+00:00","type":"BLE_DATA"}',
    b'[{"data":{"idHex":"aabb"},"type":"SIMPLE"},'
    b'{"component":"RG","data":{"pin":1,"state":"HIGH"},"type":"gpo"}]',
    # Rejections: the reason and the partial must not depend on the path.
    b'[{"data":{"idHex":"aabb"},"type":"SIMPLE"},{"data":{"antenna":1},"type":"INVENTORY"}]',
    b'[{"data":{"idHex":"aabb","antenna":"1"},"type":"INVENTORY"},{"data":{"idHex":"cc"},"type":"SIMPLE"}]',
    b'{"data":{"idHex":"xyz"},"type":"SIMPLE"}',
    b'{"data":{"idHex":"aabb","peakRssi":true},"type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb"},"timestamp":"yesterday","type":"SIMPLE"}',
    b'{"data":{"idHex":"aabb"},"timestamp":"2024-09-05","type":"SIMPLE"}',
    b'{"data":{"idHex":"aabb","antenna":1.0,"reads":2.0},"type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb","eventNum":9223372036854775808},"type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb","peakRssi":18446744073709551615},"type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb","TID":"0x1f"},"type":"INVENTORY"}',
    b'{"data":{"idHex":"aabb","TID":""},"type":"INVENTORY"}',
    b'{"data":{"idHex":" aa-bb "},"timestamp":" 2024-01-01T00:00:00Z ","type":"inventory"}',
    b'{"data":{"idHex":"aabb"},"timestamp":1725498421785000,"type":"SIMPLE"}',
    b"[]",
    b"{}",
    b"\xef\xbb\xbf{}",
    b'{"data":{"idHex":"aabb"},"type":"SIMPLE"',
    b'"\xff"',
]


@pytest.mark.parametrize("payload", SAMPLES)
def test_vendor_samples_read_the_same_both_ways_s1(payload: bytes) -> None:
    assert_same(payload)


@pytest.mark.parametrize("payload", SAMPLES[:7])
def test_documented_tag_events_take_the_fast_path_s1(payload: bytes) -> None:
    document = orjson.loads(payload)
    events = document if isinstance(document, list) else [document]
    assert all(assert_fast_is_reference(event) for event in events)


def test_the_bench_payload_takes_the_fast_path() -> None:
    from bench.workload import zebra_message

    batch = orjson.loads(zebra_message(7, 50))
    reads = [_fast_tag(event, "load-s0-r0") for event in batch]
    assert all(isinstance(read, RfidRead) for read in reads)
    assert [r.sequence for r in reads if r is not None] == list(range(7, 57))


# --- generated payloads -------------------------------------------------------

_INTS: st.SearchStrategy[object] = (
    st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([0, 1, 4, -1, 2**63, -(2**63) - 1, 2**64 - 1, 2**70])
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from([1.0, True, False, "1", None, [], {}])
)
_NUMBERS: st.SearchStrategy[object] = (
    st.integers(-200, 1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**63, 2**64 - 1, 2**70, -(2**63) - 1, True, "-55", None, [1]])
)
_EPCS: st.SearchStrategy[object] = (
    st.binary(min_size=2, max_size=16).map(bytes.hex)
    | st.binary(min_size=2, max_size=16).map(lambda b: b.hex().upper())
    | st.sampled_from(["", "abc", "xyz", " aabb ", "aa-bb", "0xAABB", "aa:bb", "a" * 126, "ＡＢ"])
    | st.text(alphabet="0123456789abcdefABCDEF -:xX", max_size=30)
    | st.sampled_from([None, 12, True, ["aabb"]])
)
_TIDS = st.binary(min_size=0, max_size=12).map(bytes.hex) | st.sampled_from(
    ["", "0x1f", "1_f", " 1f", "-1f", "zz", "E280", None, 5, True]
)


@st.composite
def _stamps(draw: st.DrawFn) -> object:
    when = draw(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)))
    text = when.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    text += draw(st.sampled_from(["", ".5", ".785", ".123456", ".123456789"]))
    minutes = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    sign, hours, mins = "-" if minutes < 0 else "+", abs(minutes) // 60, abs(minutes) % 60
    text += draw(
        st.sampled_from(["Z", "", f"{sign}{hours:02}{mins:02}", f"{sign}{hours:02}:{mins:02}"])
    )
    variant = draw(st.sampled_from(["plain"] * 6 + ["space", "lower-t", "blank-sep", "date"]))
    if variant == "space":
        text = f" {text} "
    elif variant == "lower-t":
        text = text[:10] + "t" + text[11:]
    elif variant == "blank-sep":
        text = text[:10] + " " + text[11:]
    elif variant == "date":
        text = text[:10]
    return draw(
        st.just(text) | st.sampled_from([None, 1725498421785000, -(2**62), True, "", "soon"])
    )


_TYPES = st.sampled_from(
    [*sorted(TAG_MODES)] * 3 + ["inventory", "Simple", "BLE_DATA", "heartbeat", "gpi", "NEW_MODE"]
) | st.sampled_from([None, 1, ["INVENTORY"]])


@st.composite
def _good_events(draw: st.DrawFn) -> dict[str, object]:
    """Events the fast path must take: documented modes, fields and timestamp spellings."""
    data: dict[str, object] = {
        "eventNum": draw(st.integers(0, 2**63 - 1)),
        "format": "epc",
        "idHex": draw(st.binary(min_size=1, max_size=62).map(bytes.hex)),
    }
    for key, values in (
        ("antenna", st.integers(1, 8)),
        ("peakRssi", st.integers(-100, 0)),
        ("reads", st.integers(1, 1000)),
        ("channel", st.floats(860, 930)),
        ("phase", st.floats(-180, 180)),
        ("TID", st.binary(min_size=2, max_size=12).map(bytes.hex)),
    ):
        if draw(st.booleans()):
            data[key] = draw(values)
    when = draw(st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30)))
    zone = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    local = when.replace(tzinfo=UTC).astimezone(zone)
    offset = local.strftime("%z")
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03}"
    if draw(st.booleans()):
        local = when.replace(tzinfo=UTC)
        stamp = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03}Z"
    else:
        # The reader's local offset, with and without the colon; or none (read as UTC).
        stamp += draw(st.sampled_from([offset, offset[:3] + ":" + offset[3:], ""]))
    return {"data": data, "timestamp": stamp, "type": draw(st.sampled_from(sorted(TAG_MODES)))}


_WILD: dict[str, st.SearchStrategy[object]] = {
    "idHex": _EPCS,
    "antenna": _INTS,
    "eventNum": _INTS,
    "reads": _INTS,
    "peakRssi": _NUMBERS,
    "channel": _NUMBERS,
    "phase": _NUMBERS,
    "TID": _TIDS,
}


@st.composite
def _events(draw: st.DrawFn) -> object:
    """A documented tag event with up to three quirks or bad values put in."""
    event: dict[str, object] = draw(_good_events())
    data = event["data"]
    assert isinstance(data, dict)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from([*_WILD, "-data key", "type", "timestamp", "-data"]))
        if where in _WILD:
            data[where] = draw(_WILD[where])
        elif where == "-data key":
            data.pop(draw(st.sampled_from(sorted(data) or ["idHex"])), None)
        elif where == "type":
            event["type"] = draw(_TYPES)
        elif where == "timestamp":
            event["timestamp"] = draw(_stamps())
        else:
            event["data"] = draw(st.sampled_from([None, [], "x", {"component": "RG"}]))
    if draw(st.integers(0, 19)) == 0:
        event["component"] = "RG"
    return event


@settings(max_examples=400, deadline=None)
@given(event=_events())
def test_an_event_the_fast_path_takes_reads_as_the_reference_reads_it(event: object) -> None:
    assert_fast_is_reference(event)


@settings(max_examples=300, deadline=None)
@given(document=_events() | st.lists(_events(), min_size=0, max_size=6))
def test_generated_payloads_read_the_same_both_ways(document: object) -> None:
    # json, not orjson: it writes integers beyond 64 bits, as a broken reader might.
    assert_same(json.dumps(document).encode())


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=120))
def test_arbitrary_bytes_read_the_same_both_ways(payload: bytes) -> None:
    assert_same(payload)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_good_events(), min_size=1, max_size=5))
def test_documented_shapes_always_take_the_fast_path(events: list[dict[str, object]]) -> None:
    assert all(assert_fast_is_reference(event) for event in events)
    assert_same(orjson.dumps(events))
    for event in events:
        read = _fast_tag(event, "fx9600-1")
        assert read is not None and read.timestamp == parse_timestamp(str(event["timestamp"]))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF -:xX", max_size=40) | st.text(max_size=20))
def test_cached_epc_normalises_exactly_as_normalise_epc(raw: str) -> None:
    for _ in range(2):  # a miss, then a hit
        try:
            expected: object = normalise_epc(raw)
        except IdError as exc:
            expected = str(exc)
        try:
            got: object = cached_epc(raw)
        except IdError as exc:
            got = str(exc)
        assert got == expected


def test_a_read_is_an_immutable_value() -> None:
    # RfidRead is a NamedTuple for speed (gateway/reads.py); it must stay a value.
    read = RfidRead(epc=cached_epc("aabb"), antenna=1, rssi_dbm=-55.0, timestamp=None, reader="r")
    with pytest.raises(AttributeError):
        read.antenna = 2  # type: ignore[misc]
    assert read == read._replace(antenna=1) != read._replace(antenna=2)
    assert (read.seen_count, read.sequence, read.clock_suspect) == (None, None, False)

"""Zebra IoT Connector (FX7500, FX9600, ATR7000, FXR60/90) data and management events.

Vendor documentation: https://zebradevs.github.io/rfid-ziotc-docs/ (intro page for the
four interfaces, ``best_practices/configure_mgmtEvents.html`` for management events);
the fields read here are those vendor code reads (``ZebraDevs/RFID_ZIOTC_Examples``:
``msg["data"]["idHex"]``, ``["antenna"]``, ``["peakRssi"]``). See WIRE-FORMATS §1.

Quirks handled:

* Fields depend on the operating mode: SIMPLE and CUSTOM carry only ``eventNum``,
  ``format`` and ``idHex``; CONVEYOR adds ``antenna``; INVENTORY adds ``antenna``,
  ``peakRssi`` and ``reads``. Antenna and RSSI are therefore optional.
* Batching (HTTP POST, or batching on) sends a JSON array of events.
* Timestamps come as ``+hhmm`` (local offset, no colon), ``+hh:mm`` or ``Z``.
* Management events (``heartbeat``, ``gpi``, ``gpo``, errors, warnings, …) may share
  the data stream; they become :class:`DeviceEvent` and are never rejected.
* FXR ``BLE_DATA`` events carry capitalised keys (``RSSI``, ``Address``,
  ``AddressType``, ``UUIDs``), a ``beaconType`` and a protocol sub-object.

Two paths, one meaning. :meth:`ZebraAdapter.reference_parse` is the definition:
every event through the typed field helpers of :mod:`gateway.adapters._common`,
each with the reason it would reject. :meth:`ZebraAdapter.parse` first tries a
fast path on each event — one ``orjson`` pass over the bytes, plain
``type(...) is`` checks, no per-field helper calls or reason strings, cached EPC
normalisation — and takes only an event it can prove the reference would read
to the same :class:`RfidRead`: a tag event of an upper-case mode, ``data`` an
object, ``idHex`` a valid hex string, every number of the documented JSON type
and in range, the timestamp absent or one of the three spellings above. On the
first event in any doubt (a management or ``BLE_DATA`` event, an unusual type,
a bad field) the whole payload goes the reference way, so what is rejected,
with which reason, and what a batch's ``partial`` holds never depend on the
fast path. ``tests/gateway/adapters/test_zebra_fast.py`` checks the two agree on
the vendor samples and on generated payloads; docs/performance.md ("Ingest")
has the figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from gateway.adapters._common import (
    INT64_MAX,
    INT64_MIN,
    AdapterError,
    JsonObject,
    cached_epc,
    decode_text,
    describe,
    fast_instant,
    load_json,
    opt_float,
    opt_int,
    opt_str,
    opt_timestamp,
    parse_records,
    require_epc,
)
from gateway.reads import (
    AdapterOutput,
    BleRead,
    DeviceEvent,
    DeviceEventKind,
    IBeacon,
    RfidRead,
    Skipped,
)
from gateway.timestamps import TimestampError, parse_timestamp
from vitrine.contracts.ids import IdError, normalise_mac

__all__ = ["TAG_MODES", "ZebraAdapter"]

#: Operating modes whose events are tag reads (``set_mode`` ``type``; DIRECTIONALITY
#: is ATR7000 only).
TAG_MODES = frozenset({"SIMPLE", "INVENTORY", "PORTAL", "CONVEYOR", "CUSTOM", "DIRECTIONALITY"})

_MANAGEMENT: dict[str, DeviceEventKind] = {
    "heartbeat": "heartbeat",
    "gpi": "gpi",
    "gpo": "gpo",
    "error": "error",
    "errors": "error",
    "warning": "warning",
    "warnings": "warning",
}


class ZebraAdapter:
    """Zebra IoT Connector Data-interface (and Management-events) payloads."""

    name = "zebra"

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        """The fast path where it is sure, else :meth:`reference_parse` (module docstring)."""
        try:
            # orjson validates UTF-8 itself; on any error the reference path
            # decodes and loads again, to give its own reason.
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return self.reference_parse(payload, topic=topic, reader=reader)
        if type(document) is list:
            reads: list[AdapterOutput] = []
            for event in document:
                read = _fast_tag(event, reader)
                if read is None:
                    return self._document(document, reader)
                reads.append(read)
            if reads:
                return reads
        else:
            read = _fast_tag(document, reader)
            if read is not None:
                return [read]
        return self._document(document, reader)

    def reference_parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        """Every event through the typed field helpers: the definition :meth:`parse` matches."""
        return self._document(load_json(decode_text(payload)), reader)

    def _document(self, document: object, reader: str | None) -> list[AdapterOutput]:
        if isinstance(document, list):
            if not document:
                return [Skipped("empty Zebra batch")]
            return parse_records(document, lambda e: self._event(e, reader), "event")
        return self._event(document, reader)

    def _event(self, event: object, reader: str | None) -> list[AdapterOutput]:
        if not isinstance(event, dict):
            raise AdapterError(f"Zebra event is {describe(event)}, expected a JSON object")
        kind = event.get("type")
        if kind == "BLE_DATA":
            return [self._ble(event, reader)]
        if isinstance(kind, str) and kind.upper() in TAG_MODES:
            return [self._tag(event, kind.upper(), reader)]
        data = event.get("data")
        if isinstance(data, dict) and "idHex" in data:
            # A tag event from a mode this adapter does not know yet: read it anyway.
            return [self._tag(event, str(kind), reader)]
        if not isinstance(kind, str) and "component" not in event:
            raise AdapterError(
                "Zebra event has no 'type' and no data.idHex: neither a tag nor a management event"
            )
        return [self._management(event, reader)]

    def _tag(self, event: JsonObject, mode: str, reader: str | None) -> RfidRead:
        where = f"Zebra {mode} event"
        data = event.get("data")
        if not isinstance(data, dict):
            raise AdapterError(f"{where} has no 'data' object")
        where_data = f"{where} data"
        epc = require_epc(data.get("idHex"), f"{where_data}.idHex")
        return RfidRead(
            epc=epc,
            antenna=opt_int(data, "antenna", where_data),
            rssi_dbm=opt_float(data, "peakRssi", where_data),
            timestamp=opt_timestamp(event, "timestamp", where),
            reader=reader,
            seen_count=opt_int(data, "reads", where_data),
            frequency_mhz=opt_float(data, "channel", where_data),
            phase_deg=opt_float(data, "phase", where_data),
            tid=_opt_hex(data, "TID", where_data),
            sequence=opt_int(data, "eventNum", where_data),
        )

    def _ble(self, event: JsonObject, reader: str | None) -> AdapterOutput:
        where = "Zebra BLE_DATA event"
        data = event.get("data")
        if not isinstance(data, dict):
            raise AdapterError(f"{where} has no 'data' object")
        address = opt_str(data, "Address", f"{where} data", required=True)
        assert address is not None
        try:
            mac: str | None = normalise_mac(address)
        except IdError:
            mac = None
        beacon = _find_ibeacon(data)
        if beacon is not None:
            device_id = f"iBeacon:{beacon.uuid}-{beacon.major}-{beacon.minor}"
        else:
            device_id = mac if mac is not None else address
        return BleRead(
            device_id=device_id,
            room=None,
            rssi_dbm=opt_float(data, "RSSI", f"{where} data"),
            distance_m=None,
            ibeacon=beacon,
            timestamp=opt_timestamp(event, "timestamp", where),
            mac=mac,
            scanner=reader,
        )

    def _management(self, event: JsonObject, reader: str | None) -> DeviceEvent:
        """Management events are health, never rejected: unknown shapes become ``status``."""
        kind = event.get("type")
        name = _MANAGEMENT.get(kind.lower(), "status") if isinstance(kind, str) else "status"
        timestamp: datetime | None = None
        detail: dict[str, object] = {"type": kind}
        raw_time = event.get("timestamp")
        if isinstance(raw_time, str):
            try:
                timestamp = parse_timestamp(raw_time)
            except TimestampError as exc:
                detail["timestamp_error"] = str(exc)
        for key in ("component", "eventNum", "data"):
            if key in event:
                detail[key] = event[key]
        return DeviceEvent(device=reader, event=name, timestamp=timestamp, detail=detail)


#: Hex digits, for the fast path's ``TID`` check (``int(value, 16)`` in
#: :func:`_opt_hex` also takes ``0x``, ``_``, signs and spaces: those go the
#: reference way).
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _fast_tag(event: object, reader: str | None) -> RfidRead | None:
    """The common tag event as :meth:`ZebraAdapter._tag` reads it, or ``None`` if unsure.

    ``None`` is never a rejection: it sends the payload the reference way. Every
    test here is one the reference makes too, narrowed to the JSON types orjson
    produces (``type(x) is int`` excludes ``bool``, as the reference does).
    """
    if type(event) is not dict:
        return None
    kind = event.get("type")
    if type(kind) is not str or kind not in TAG_MODES:
        return None
    data: dict[str, Any] | None = event.get("data")
    if type(data) is not dict:
        return None
    raw_epc = data.get("idHex")
    if type(raw_epc) is not str:
        return None
    try:
        epc = cached_epc(raw_epc)
    except IdError:
        return None
    antenna = data.get("antenna")
    if antenna is not None and (type(antenna) is not int or not INT64_MIN <= antenna <= INT64_MAX):
        return None
    seen = data.get("reads")
    if seen is not None and (type(seen) is not int or not INT64_MIN <= seen <= INT64_MAX):
        return None
    sequence = data.get("eventNum")
    if sequence is not None and (
        type(sequence) is not int or not INT64_MIN <= sequence <= INT64_MAX
    ):
        return None
    rssi = data.get("peakRssi")
    if rssi is not None:
        if type(rssi) is int and INT64_MIN <= rssi <= INT64_MAX:
            rssi = float(rssi)
        elif type(rssi) is not float or rssi - rssi != 0.0:  # not finite
            return None
    # Channel and phase are absent unless tagMetaData asks for them (§1).
    channel = data.get("channel")
    if channel is not None and (channel := _fast_number(channel)) is None:
        return None
    phase = data.get("phase")
    if phase is not None and (phase := _fast_number(phase)) is None:
        return None
    tid = data.get("TID")
    if tid is not None:
        if type(tid) is not str or not _HEX_DIGITS.issuperset(tid):
            return None
        tid = tid.upper() if tid else None
    stamp = event.get("timestamp")
    timestamp: datetime | None = None
    if stamp is not None:
        if type(stamp) is not str:
            return None
        timestamp = fast_instant(stamp)
        if timestamp is None:
            return None
    return RfidRead(epc, antenna, rssi, timestamp, reader, seen, channel, phase, tid, sequence)


def _fast_number(value: object) -> float | None:
    """``opt_float``'s value for a JSON number it would accept, else ``None`` (unsure)."""
    if type(value) is float:
        # NaN and infinities are refused by the reference; orjson never yields them.
        return value if value - value == 0.0 else None
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return None


def _opt_hex(obj: JsonObject, key: str, where: str) -> str | None:
    value = opt_str(obj, key, where)
    if not value:
        return None
    try:
        int(value, 16)
    except ValueError:
        raise AdapterError(f"{where}.{key} is {describe(value)}, expected hex") from None
    return value.upper()


def _find_ibeacon(data: JsonObject) -> IBeacon | None:
    """The iBeacon identity from a ``BLE_DATA`` protocol sub-object, if there is one.

    The sub-object's exact key names were not in the documents we hold
    (WIRE-FORMATS §8), so any nested object with ``uuid``/``major``/``minor`` keys
    (any case) is accepted, and only when ``beaconType`` is ``IBEACON``.
    """
    beacon_type = data.get("beaconType")
    if not isinstance(beacon_type, str) or beacon_type.upper() != "IBEACON":
        return None
    for value in data.values():
        if not isinstance(value, dict):
            continue
        lowered = {str(k).lower(): v for k, v in value.items()}
        uuid, major, minor = lowered.get("uuid"), lowered.get("major"), lowered.get("minor")
        if (
            isinstance(uuid, str)
            and isinstance(major, int)
            and isinstance(minor, int)
            and not isinstance(major, bool)
            and not isinstance(minor, bool)
            and 0 <= major <= 0xFFFF
            and 0 <= minor <= 0xFFFF
        ):
            return IBeacon(uuid=uuid.lower(), major=major, minor=minor)
    return None

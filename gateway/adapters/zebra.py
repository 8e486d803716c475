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
"""

from __future__ import annotations

from datetime import datetime

from gateway.adapters._common import (
    AdapterError,
    JsonObject,
    decode_text,
    describe,
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
        document = load_json(decode_text(payload))
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

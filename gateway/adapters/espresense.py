"""ESPresense BLE scanners (firmware v1–v4) over MQTT.

Sources: ``ESPresense/ESPresense`` firmware at v2.3.0, v3.3.2 and v4.0.6, and the
``ESPresense/ESPresense.com`` docs ``src/content/docs/configuration/mqtt.md``;
WIRE-FORMATS §5.

Topics (the ``espresense`` prefix is configurable, so levels are matched from the end):

* ``<prefix>/devices/<device-id>/<room>`` — one advertisement report; the room is
  the last level (v2+).
* ``<prefix>/rooms/<room>`` — the same report in v1 firmware.
* ``<prefix>/rooms/<room>/status`` — the node's LWT (``online``/``offline``);
  ``…/telemetry`` — node telemetry JSON; other ``…/<key>`` are settings echoes and
  ``…/set`` are commands.

Payload fields differ by firmware: v2 ``interval`` became v3 ``int``; ``speed``,
``raw`` and ``idType`` went away in v4; ``rssi@1m`` is omitted in v4 when unknown;
``rssi`` is a float in v4. Only ``id`` and one of ``rssi``/``distance`` are required.
Device ids: ``iBeacon:<uuid>-<major>-<minor>`` (decimal major/minor; parsed here),
``apple:…``, ``phone:…``, ``irk:…``, ``eddy:…``, a bare MAC — all kept as given.
"""

from __future__ import annotations

import re

from gateway.adapters._common import (
    AdapterError,
    JsonObject,
    decode_text,
    describe,
    load_json,
    opt_float,
    opt_str,
)
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, IBeacon, Skipped
from vitrine.contracts.ids import IdError, normalise_mac

__all__ = ["EspresenseAdapter", "parse_ibeacon_id"]

_IBEACON_ID = re.compile(
    r"^iBeacon:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-(\d{1,5})-(\d{1,5})$",
    re.IGNORECASE,
)


def parse_ibeacon_id(device_id: str) -> IBeacon | None:
    """``iBeacon:<uuid>-<major>-<minor>`` (ESPresense ``BleFingerprint.cpp``) → IBeacon."""
    match = _IBEACON_ID.fullmatch(device_id)
    if match is None:
        return None
    major, minor = int(match[2]), int(match[3])
    if major > 0xFFFF or minor > 0xFFFF:  # uint16 big-endian on the air (§5)
        return None
    return IBeacon(uuid=match[1].lower(), major=major, minor=minor)


class EspresenseAdapter:
    """ESPresense device reports and node status/telemetry, routed by topic."""

    name = "espresense"

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        levels = topic.split("/") if topic else []
        if levels and levels[-1] == "set":
            return [Skipped("ESPresense settings command (…/set)")]
        if len(levels) >= 3 and levels[-3] == "devices":
            return [self._report(payload, room=levels[-1], reader=reader)]
        if len(levels) >= 2 and levels[-2] == "rooms":
            return [self._report(payload, room=levels[-1], reader=reader)]  # v1 firmware
        if len(levels) >= 3 and levels[-3] == "rooms":
            return [self._node(payload, room=levels[-2], key=levels[-1], reader=reader)]
        return [self._report(payload, room=None, reader=reader)]

    def _report(self, payload: bytes, *, room: str | None, reader: str | None) -> AdapterOutput:
        where = "ESPresense report"
        document = load_json(decode_text(payload))
        if not isinstance(document, dict):
            raise AdapterError(f"{where} is {describe(document)}, expected a JSON object")
        device_id = opt_str(document, "id", where, required=True)
        if not device_id:
            raise AdapterError(f"{where} has an empty 'id'")
        rssi = opt_float(document, "rssi", where)
        distance = opt_float(document, "distance", where)
        if rssi is None and distance is None:
            raise AdapterError(f"{where} has neither 'rssi' nor 'distance'")
        if distance is not None and distance < 0:
            raise AdapterError(f"{where}.distance is {distance}, expected ≥ 0")
        return BleRead(
            device_id=device_id,
            room=room,
            rssi_dbm=rssi,
            distance_m=distance,
            ibeacon=parse_ibeacon_id(device_id),
            timestamp=None,  # ESPresense reports carry no time; the gateway stamps receipt
            rssi_at_1m=opt_float(document, "rssi@1m", where),
            mac=_mac(document),
            scanner=reader,
        )

    def _node(self, payload: bytes, *, room: str, key: str, reader: str | None) -> AdapterOutput:
        """Node health is never rejected: a garbled telemetry payload is still a sign of life."""
        device = reader if reader is not None else room
        text = payload.decode("utf-8", errors="replace").strip()
        if key == "status":
            return DeviceEvent(
                device=device, event="status", timestamp=None, detail={"room": room, "status": text}
            )
        if key == "telemetry":
            detail: dict[str, object] = {"room": room}
            try:
                telemetry = load_json(text)
            except AdapterError as exc:
                detail["telemetry_error"] = exc.reason
            else:
                detail["telemetry"] = telemetry
            return DeviceEvent(device=device, event="heartbeat", timestamp=None, detail=detail)
        return Skipped(f"ESPresense node setting {key!r} carries no read")


def _mac(document: JsonObject) -> str | None:
    raw = document.get("mac")
    if not isinstance(raw, str):
        return None
    try:
        return normalise_mac(raw)
    except IdError:
        return None

"""Impinj IoT device interface (R700/R720): ReaderEvent JSON over MQTT, HTTP stream or webhook.

Schema: Impinj Reader Configuration API v1.7.0 (``docs/ReaderEvent.md``,
``docs/TagInventoryEvent.md``, ``docs/MqttConfiguration.md`` in the swagger-codegen
client ``saji-ttarius/impinj-reader-config-api-v1.7.0``); swagger v1.6.0 for the HTTP
stream keep-alive. See WIRE-FORMATS §2.

Quirks handled:

* ``epc``/``tid`` are **base64url** (``_`` and ``-``), padding optional; ``epcHex``
  is used when the reader was configured to send it (off by default).
* ``peakRssiCdbm`` is centi-dBm (−5750 → −57.5 dBm); ``frequency`` is kHz.
* ``eventType`` may be missing (2021 HTTP-stream capture): dispatch on which
  ``…Event`` object is present.
* ``antennaConnectedEvent``/``antennaDisconnectedEvent``, ``inventoryStatusEvent``
  and ``overflowEvent`` (``eventsPurged`` = reads the reader dropped) are health.
* The HTTP stream is NDJSON with CR-LF keep-alives and possibly ``data: `` prefixes.
* The reader publishes plain-text status strings (``willMessage`` ``connection
  lost``, ``connectMessage`` ``connected``) on its will topic: not JSON, never
  rejected.
"""

from __future__ import annotations

import base64
import binascii
import re
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
    stream_lines,
)
from gateway.reads import AdapterOutput, DeviceEvent, DeviceEventKind, RfidRead, Skipped
from vitrine.contracts.ids import Epc

__all__ = ["ImpinjAdapter", "decode_base64url", "is_status_text"]

#: Printable text of at most this many characters with no JSON opening is a
#: will/connect/disconnect message: MQTT settings allow any string, the defaults
#: are a couple of words, and 200 leaves room for a configured sentence.
_MAX_STATUS_TEXT = 200
#: No control characters and no JSON punctuation: a line with braces or quotes was
#: meant to be JSON and is rejected as bad JSON rather than taken for a status.
_STATUS_TEXT = re.compile(r'^[^\x00-\x1f\x7f{}\[\]"]+$')
_B64 = re.compile(r"^[A-Za-z0-9_\-+/]*={0,2}$")


def is_status_text(text: str) -> bool:
    """True for a short plain-text status line (``connected``, ``connection lost``)."""
    stripped = text.strip()
    return 0 < len(stripped) <= _MAX_STATUS_TEXT and bool(_STATUS_TEXT.match(stripped))


def decode_base64url(value: str, where: str) -> str:
    """base64url (or plain base64) with optional padding → upper-case hex."""
    text = value.strip()
    if not _B64.fullmatch(text):
        raise AdapterError(f"{where} {describe(value)} is not base64url")
    body = text.rstrip("=").replace("+", "-").replace("/", "_")
    if len(body) % 4 == 1:
        raise AdapterError(f"{where} {describe(value)} has an impossible base64 length")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise AdapterError(f"{where} {describe(value)} is not base64url") from None
    return raw.hex().upper()


class ImpinjAdapter:
    """Impinj IoT device interface ReaderEvents (one, an array, or an NDJSON stream)."""

    name = "impinj"

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        text = decode_text(payload)
        if not text.strip():
            return [Skipped("Impinj keep-alive (empty line)")]
        if is_status_text(text) and not text.strip().startswith("data:"):
            return [
                DeviceEvent(
                    device=reader,
                    event="status",
                    timestamp=None,
                    detail={"message": text.strip(), "topic": topic},
                )
            ]
        lines = list(stream_lines(text))
        if not lines:
            return [Skipped("Impinj keep-alive (no event)")]
        if len(lines) == 1:
            return self._document(load_json(lines[0][1]), reader)
        outputs: list[AdapterOutput] = []
        problems: list[str] = []
        for number, line in lines:
            try:
                outputs.extend(self._document(load_json(line, f"line {number}"), reader))
            except AdapterError as exc:
                reason = exc.reason if exc.reason.startswith("line ") else f"line {number}: {exc}"
                problems.append(reason)
                outputs.extend(exc.partial)
        if problems:
            raise AdapterError("; ".join(problems), outputs)
        return outputs

    def _document(self, document: object, reader: str | None) -> list[AdapterOutput]:
        if isinstance(document, list):
            if not document:
                return [Skipped("empty Impinj event array")]
            return parse_records(document, lambda e: [self._event(e, reader)], "event")
        return [self._event(document, reader)]

    def _event(self, event: object, reader: str | None) -> AdapterOutput:
        if not isinstance(event, dict):
            raise AdapterError(f"Impinj event is {describe(event)}, expected a JSON object")
        hostname = event.get("hostname")
        device = reader if reader is not None else (hostname if isinstance(hostname, str) else None)
        when = opt_timestamp(event, "timestamp", "Impinj event")
        # Dispatch on the object present, not on eventType: it can be missing.
        if "tagInventoryEvent" in event:
            tag = event["tagInventoryEvent"]
            if not isinstance(tag, dict):
                raise AdapterError("Impinj tagInventoryEvent is not a JSON object")
            return self._tag(tag, when, device)
        antenna_events: tuple[tuple[str, DeviceEventKind], ...] = (
            ("antennaConnectedEvent", "antenna_connected"),
            ("antennaDisconnectedEvent", "antenna_disconnected"),
        )
        for key, name in antenna_events:
            if key in event:
                body = _object(event, key)
                return DeviceEvent(
                    device=device,
                    event=name,
                    timestamp=when,
                    antenna=opt_int(body, "antennaPort", f"Impinj {key}"),
                    detail=dict(body),
                )
        if "overflowEvent" in event:
            body = _object(event, "overflowEvent")
            return DeviceEvent(
                device=device,
                event="overflow",
                timestamp=when,
                lost=opt_int(body, "eventsPurged", "Impinj overflowEvent"),
                detail=dict(body),
            )
        if "inventoryStatusEvent" in event:
            body = _object(event, "inventoryStatusEvent")
            return DeviceEvent(
                device=device, event="inventory_status", timestamp=when, detail=dict(body)
            )
        kind = event.get("eventType")
        if kind == "tagInventory":
            raise AdapterError("Impinj tagInventory event has no tagInventoryEvent object")
        if isinstance(kind, str):
            return Skipped(f"Impinj {kind} event carries no read")
        raise AdapterError("Impinj event has neither eventType nor a known …Event object")

    def _tag(self, tag: JsonObject, when: datetime | None, device: str | None) -> RfidRead:
        where = "Impinj tagInventoryEvent"
        epc = _tag_epc(tag, where)
        cdbm = opt_float(tag, "peakRssiCdbm", where)
        khz = opt_float(tag, "frequency", where)
        tid_hex = opt_str(tag, "tidHex", where)
        tid_b64 = opt_str(tag, "tid", where)
        tid: str | None = None
        if tid_hex:
            tid = require_epc(tid_hex, f"{where}.tidHex")
        elif tid_b64:
            tid = decode_base64url(tid_b64, f"{where}.tid")
        last_seen = opt_timestamp(tag, "lastSeenTime", where)
        return RfidRead(
            epc=epc,
            antenna=opt_int(tag, "antennaPort", where),
            rssi_dbm=None if cdbm is None else cdbm / 100.0,
            timestamp=last_seen if last_seen is not None else when,
            reader=device,
            frequency_mhz=None if khz is None else khz / 1000.0,
            phase_deg=opt_float(tag, "phaseAngle", where),
            tid=tid,
        )


def _object(event: JsonObject, key: str) -> JsonObject:
    body = event[key]
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise AdapterError(f"Impinj {key} is {describe(body)}, expected a JSON object")
    return body


def _tag_epc(tag: JsonObject, where: str) -> Epc:
    hex_value = tag.get("epcHex")
    if hex_value not in (None, ""):
        return require_epc(hex_value, f"{where}.epcHex")
    b64 = tag.get("epc")
    if b64 in (None, ""):
        raise AdapterError(f"{where} has neither epc nor epcHex")
    if not isinstance(b64, str):
        raise AdapterError(f"{where}.epc is {describe(b64)}, expected a base64url string")
    return require_epc(decode_base64url(b64, f"{where}.epc"), f"{where}.epc")

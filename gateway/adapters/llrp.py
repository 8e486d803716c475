"""LLRP ``RO_ACCESS_REPORT`` tag reports in sllurp's dict shape.

Source: ``sllurp/sllurp`` v3.0.5 (commit 836944cf): ``LLRPReaderClient.add_tag_report_callback``
calls ``cb(reader, tag_reports)`` with ``tag_reports =
msgdict["RO_ACCESS_REPORT"]["TagReportData"]``, a list of dicts keyed by LLRP
parameter names (``llrp_proto.py`` ``Param_struct["TagReportData"]``); what
``sllurp/verb/log.py`` consumes is what is read here. See WIRE-FORMATS §3.

Quirks handled:

* sllurp 3.x gives scalars; older sllurp printed 1-tuples (``'PeakRSSI': (-53,)``).
* ``EPC`` is hexlified *bytes* (``b'300833b2…'``) in 3.x, ``str`` under Python 2 and
  in JSON; ``EPC-96`` is used when ``EPC`` is absent.
* ``*TimestampUTC`` are µs since the Unix epoch. Readers without NTP report January
  2000: the time is still reported, flagged ``clock_suspect`` — the gateway stamps
  its own receive time anyway.
* ``PeakRSSI`` is int8 dBm; Impinj's ``ImpinjPeakRSSI`` is centi-dBm and preferred
  when present; ``ChannelIndex`` is a hop-table index, not a frequency, so it is
  not reported as one.

The bytes entry point takes that same shape as JSON: a list of TagReportData
objects, one object, ``{"TagReportData": [...]}`` or
``{"RO_ACCESS_REPORT": {"TagReportData": [...]}}``. A live reader is served by
``vitrine readers llrp-bridge`` (:mod:`gateway.llrp_bridge`, sllurp's
``LLRPReaderClient``), which publishes exactly that JSON on the reader's topic,
plus reader health in sllurp's message shapes:

* ``{"KEEPALIVE": {…}}`` → ``heartbeat`` (LLRP 1.0.1 §13.2.5.1 KEEPALIVE).
* ``{"READER_EVENT_NOTIFICATION": {"ReaderEventNotificationData": {…}}}`` as sllurp
  decodes it (``llrp_proto.py`` ``Param_struct["ReaderEventNotificationData"]``):
  ``AntennaEvent`` (``EventType`` ``Connected``/``Disconnected``, ``AntennaID``) →
  ``antenna_connected``/``antenna_disconnected``; ``ReaderExceptionEvent`` →
  ``error``; ``ReportBufferOverflowErrorEvent`` → ``overflow`` (count unknown);
  ``ReportBufferLevelWarningEvent`` → ``warning``; ``GPIEvent`` → ``gpi``;
  ``ConnectionAttemptEvent``/``ConnectionCloseEvent`` → ``status``; others (hopping,
  ROSpec, AISpec, RF survey) → skipped. ``UTCTimestamp.Microseconds`` is the time.
* ``{"LlrpBridge": {"status": "connected"|"disconnected", …}}`` (the bridge's
  reader session) → ``status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.adapters._common import (
    AdapterError,
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
from gateway.reads import AdapterOutput, DeviceEvent, DeviceEventKind, RfidRead, Skipped

__all__ = ["CLOCK_SANE_AFTER", "LlrpAdapter"]

#: Reader times before this are a clock that was never set (the Jan-2000 capture in
#: sllurp issue #134); no LLRP reader in a store predates it.
CLOCK_SANE_AFTER = datetime(2010, 1, 1, tzinfo=UTC)

#: ``ImpinjRFPhaseAngle`` is 0…4095 for 0…2π (Impinj LTK custom parameter).
_PHASE_STEPS = 4096


class LlrpAdapter:
    """sllurp TagReportData dicts (from JSON, or Python objects via :meth:`parse_reports`)."""

    name = "llrp"

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        return self.parse_reports(load_json(decode_text(payload)), reader=reader)

    def parse_reports(self, reports: object, *, reader: str | None = None) -> list[AdapterOutput]:
        """Normalise sllurp's ``tag_reports`` (or the JSON wrappers around them)."""
        if isinstance(reports, Mapping):
            if "KEEPALIVE" in reports:
                return [DeviceEvent(device=reader, event="heartbeat", timestamp=None)]
            if "LlrpBridge" in reports:
                return [_bridge_status(reports["LlrpBridge"], reader)]
            if "READER_EVENT_NOTIFICATION" in reports:
                return _reader_events(reports["READER_EVENT_NOTIFICATION"], reader)
            if "RO_ACCESS_REPORT" in reports:
                inner = reports["RO_ACCESS_REPORT"]
                if not isinstance(inner, Mapping):
                    raise AdapterError("LLRP RO_ACCESS_REPORT is not an object")
                reports = inner.get("TagReportData", [])
            elif "TagReportData" in reports:
                reports = reports["TagReportData"]
        if isinstance(reports, Mapping):
            reports = [reports]
        if not isinstance(reports, list | tuple):
            raise AdapterError(f"LLRP tag reports are {describe(reports)}, expected a list")
        if not reports:
            return [Skipped("LLRP report with no TagReportData")]
        return parse_records(list(reports), lambda r: [self._tag(r, reader)], "TagReportData")

    def _tag(self, raw: object, reader: str | None) -> RfidRead:
        where = "LLRP TagReportData"
        if not isinstance(raw, Mapping):
            raise AdapterError(f"{where} is {describe(raw)}, expected an object")
        tag = {str(k): _scalar(v) for k, v in raw.items()}
        epc_raw = tag.get("EPC")
        if epc_raw in (None, b"", ""):
            epc_raw = tag.get("EPC-96")
        if isinstance(epc_raw, bytes | bytearray):
            try:
                epc_raw = bytes(epc_raw).decode("ascii")
            except UnicodeDecodeError:
                raise AdapterError(f"{where}.EPC bytes are not hexlified ASCII") from None
        epc = require_epc(epc_raw, f"{where}.EPC")
        impinj_rssi = opt_float(tag, "ImpinjPeakRSSI", where)
        rssi = impinj_rssi / 100.0 if impinj_rssi is not None else opt_float(tag, "PeakRSSI", where)
        when = opt_timestamp(tag, "LastSeenTimestampUTC", where) or opt_timestamp(
            tag, "FirstSeenTimestampUTC", where
        )
        phase = opt_int(tag, "ImpinjRFPhaseAngle", where)
        return RfidRead(
            epc=epc,
            antenna=opt_int(tag, "AntennaID", where),
            rssi_dbm=rssi,
            timestamp=when,
            reader=reader,
            seen_count=opt_int(tag, "TagSeenCount", where),
            phase_deg=None if phase is None else phase * 360.0 / _PHASE_STEPS,
            clock_suspect=when is not None and when < CLOCK_SANE_AFTER,
        )


def _bridge_status(raw: object, reader: str | None) -> DeviceEvent:
    if not isinstance(raw, Mapping):
        raise AdapterError(f"LlrpBridge is {describe(raw)}, expected an object")
    status = opt_str(raw, "status", "LlrpBridge", required=True)
    detail: dict[str, object] = {"status": status, "source": "llrp-bridge"}
    reason = raw.get("reason")
    if isinstance(reason, str):
        detail["message"] = reason[:200]
    return DeviceEvent(device=reader, event="status", timestamp=None, detail=detail)


#: ReaderEventNotificationData sub-parameters that say nothing about health.
_QUIET_EVENTS = frozenset(
    {"UTCTimestamp", "Uptime", "HoppingEvent", "ROSpecEvent", "AISpecEvent", "RFSurveyEvent",
     "SpecLoopEvent"}
)  # fmt: skip


def _reader_events(raw: object, reader: str | None) -> list[AdapterOutput]:
    where = "LLRP READER_EVENT_NOTIFICATION"
    if not isinstance(raw, Mapping):
        raise AdapterError(f"{where} is {describe(raw)}, expected an object")
    data = raw.get("ReaderEventNotificationData")
    if not isinstance(data, Mapping):
        raise AdapterError(f"{where} has no ReaderEventNotificationData object")
    stamp = data.get("UTCTimestamp")
    when = (
        opt_timestamp(stamp, "Microseconds", f"{where}.UTCTimestamp")
        if isinstance(stamp, Mapping)
        else None
    )
    outputs: list[AdapterOutput] = []

    def ev(
        kind: DeviceEventKind, antenna: int | None = None, detail: dict[str, object] | None = None
    ) -> DeviceEvent:
        return DeviceEvent(reader, kind, when, antenna=antenna, detail=detail or {})

    for name, body in data.items():
        if name in _QUIET_EVENTS:
            continue
        event = body if isinstance(body, Mapping) else {}
        match name:
            case "AntennaEvent":
                port = opt_int(event, "AntennaID", f"{where}.AntennaEvent")
                up = event.get("EventType") == "Connected"
                outputs.append(
                    ev("antenna_connected" if up else "antenna_disconnected", antenna=port)
                )
            case "ReaderExceptionEvent":
                message = event.get("Message")
                text = message if isinstance(message, str) else "reader exception"
                outputs.append(ev("error", detail={"message": text[:200]}))
            case "ReportBufferOverflowErrorEvent":
                outputs.append(ev("overflow"))
            case "ReportBufferLevelWarningEvent":
                outputs.append(ev("warning", detail={"message": "report buffer filling up"}))
            case "GPIEvent":
                outputs.append(ev("gpi", detail={str(k): v for k, v in event.items()}))
            case "ConnectionAttemptEvent" | "ConnectionCloseEvent":
                detail = {"message": name, **{str(k): v for k, v in event.items()}}
                outputs.append(ev("status", detail=detail))
            case _:
                pass
    return outputs or [Skipped("LLRP reader event with nothing about health")]


def _scalar(value: object) -> object:
    """Unwrap the 1-tuples older sllurp produced (and their JSON form, 1-lists)."""
    if isinstance(value, tuple | list) and len(value) == 1:
        return value[0]
    return value

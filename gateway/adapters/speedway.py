"""Impinj Speedway Connect (legacy on-reader app) JSON inventory output.

Source: Impinj support article 360000044739 "Impinj Speedway Connect on-reader
software: Data Integration" (samples captured on an xArray); WIRE-FORMATS §2.
A flat object per tag::

    {"antennaPort":7,"epc":"9999…","tid":"E280…","firstSeenTimestamp":"2018-06-14T00:15:54.36879Z",
     "peakRssi":-51,"isHeartBeat":false}

Unlike the IoT device interface, ``epc`` is **hex** and ``peakRssi`` is **dBm**.
``isHeartBeat: true`` is a heartbeat, not a read. HTTP POST may carry an array and
the TCP socket one object per line; both are accepted. The key-value output
(``<AntennaPort>,<EPC>,…``) has a user-chosen column list, so it cannot be read
without its configuration and is rejected with that reason.
"""

from __future__ import annotations

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
    stream_lines,
)
from gateway.reads import AdapterOutput, DeviceEvent, RfidRead, Skipped

__all__ = ["SpeedwayAdapter"]


class SpeedwayAdapter:
    """Speedway Connect flat JSON: one object, an array, or one object per line."""

    name = "speedway"

    def parse(
        self, payload: bytes, *, topic: str | None = None, reader: str | None = None
    ) -> list[AdapterOutput]:
        text = decode_text(payload)
        lines = list(stream_lines(text))
        if not lines:
            return [Skipped("empty Speedway Connect payload")]
        if not text.lstrip().startswith(("{", "[")):
            raise AdapterError(
                "not Speedway Connect JSON (the key-value output format is not supported:"
                " set the output format to JSON)"
            )
        if len(lines) == 1:
            documents = [load_json(lines[0][1])]
        else:
            documents = [load_json(line, f"line {n}") for n, line in lines]
        records: list[object] = []
        for document in documents:
            records.extend(document if isinstance(document, list) else [document])
        if not records:
            return [Skipped("empty Speedway Connect array")]
        return parse_records(records, lambda r: [self._record(r, reader)], "record")

    def _record(self, record: object, reader: str | None) -> AdapterOutput:
        where = "Speedway Connect record"
        if not isinstance(record, dict):
            raise AdapterError(f"{where} is {describe(record)}, expected a JSON object")
        heartbeat = record.get("isHeartBeat")
        if heartbeat is not None and not isinstance(heartbeat, bool):
            raise AdapterError(f"{where}.isHeartBeat is {describe(heartbeat)}, expected a boolean")
        when = opt_timestamp(record, "firstSeenTimestamp", where)
        if heartbeat:
            return DeviceEvent(device=reader, event="heartbeat", timestamp=when)
        tid = opt_str(record, "tid", where)
        return RfidRead(
            epc=require_epc(record.get("epc"), f"{where}.epc"),
            antenna=opt_int(record, "antennaPort", where),
            rssi_dbm=opt_float(record, "peakRssi", where),
            timestamp=when,
            reader=reader,
            tid=require_epc(tid, f"{where}.tid") if tid else None,
        )

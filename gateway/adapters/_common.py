"""Helpers every vendor adapter shares: the error type, JSON loading, typed field access.

Each helper raises :class:`AdapterError` with a reason a person can act on
("Zebra data.antenna is 'x', expected an integer"), never a bare ``KeyError`` or
``TypeError``: the reason is what the dead-letter topic and
``vitrine readers parse`` show.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from gateway.reads import AdapterOutput
from gateway.timestamps import TimestampError, from_epoch_us, parse_timestamp
from vitrine.contracts.ids import Epc, IdError, normalise_epc

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "AdapterError",
    "JsonObject",
    "cached_epc",
    "decode_text",
    "describe",
    "fast_instant",
    "load_json",
    "opt_float",
    "opt_int",
    "opt_str",
    "opt_timestamp",
    "parse_records",
    "require_epc",
    "stream_lines",
]

JsonObject = Mapping[str, Any]

#: How much of an offending value a reason quotes: enough to recognise it, not a
#: whole payload in a log line or dead letter reason.
_QUOTE = 40


class AdapterError(ValueError):
    """A payload an adapter must reject; ``str(error)`` is the human reason.

    ``partial`` holds what the adapter *could* read from the same payload (the
    good events of a Zebra batch or of an Impinj NDJSON stream), so a caller can
    hand those on and dead-letter the payload with the reason: one bad record
    never costs the good ones around it (QUALITY.md "Bad input").
    """

    def __init__(self, reason: str, partial: Sequence[AdapterOutput] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial: tuple[AdapterOutput, ...] = tuple(partial)


def describe(value: object) -> str:
    """A short quotation of a value for an error reason."""
    text = repr(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def decode_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdapterError(f"payload is not UTF-8 text (byte {exc.start})") from None


def load_json(text: str | bytes, what: str = "payload") -> Any:
    """Parse one JSON document; bad JSON is an :class:`AdapterError`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AdapterError(f"{what} is not valid JSON: {exc}") from None


def stream_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines of an NDJSON stream as ``(line number, JSON text)``.

    Impinj's HTTP stream sends a CR-LF keep-alive every 30 s when idle (swagger
    v1.6.0) and one emulator prefixes lines with SSE's ``data:`` (WIRE-FORMATS §2);
    SSE comment lines start with ``:``.
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line or line.startswith(":"):
            continue
        yield number, line


def parse_records(
    records: Sequence[object],
    parse_one: Any,
    what: str,
) -> list[AdapterOutput]:
    """Apply ``parse_one(record) -> list`` to each record, collecting per-record errors.

    If any record fails, raise one :class:`AdapterError` naming each failed record,
    with the good records' outputs in ``partial``.
    """
    outputs: list[AdapterOutput] = []
    problems: list[str] = []
    for index, record in enumerate(records):
        try:
            outputs.extend(parse_one(record))
        except AdapterError as exc:
            problems.append(f"{what} {index}: {exc.reason}" if len(records) > 1 else exc.reason)
            outputs.extend(exc.partial)
    if problems:
        raise AdapterError("; ".join(problems), outputs)
    return outputs


def _missing(obj: JsonObject, key: str, where: str, required: bool) -> None:
    if required:
        raise AdapterError(f"{where} has no {key!r}")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def opt_int(obj: JsonObject, key: str, where: str, *, required: bool = False) -> int | None:
    value = obj.get(key)
    if value is None:
        _missing(obj, key, where, required)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise AdapterError(f"{where}.{key} is {describe(value)}, expected an integer")
        value = int(value)
    # Every vendor integer (eventNum, antenna port, counts, purged events) fits a
    # signed 64-bit field; anything larger is corrupt and would not survive JSON
    # encoding further down (orjson refuses it), so it is refused here.
    if not INT64_MIN <= value <= INT64_MAX:
        raise AdapterError(f"{where}.{key} = {value} is out of the 64-bit integer range")
    return value


def opt_float(obj: JsonObject, key: str, where: str, *, required: bool = False) -> float | None:
    value = obj.get(key)
    if value is None:
        _missing(obj, key, where, required)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdapterError(f"{where}.{key} is {describe(value)}, expected a number")
    result = float(value)
    if not math.isfinite(result):
        raise AdapterError(f"{where}.{key} is {describe(value)}, expected a finite number")
    return result


def opt_str(obj: JsonObject, key: str, where: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        _missing(obj, key, where, required)
        return None
    if not isinstance(value, str):
        raise AdapterError(f"{where}.{key} is {describe(value)}, expected a string")
    return value


def opt_timestamp(obj: JsonObject, key: str, where: str) -> datetime | None:
    """A string ISO 8601 instant, or an integer of µs since the epoch."""
    value = obj.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return parse_timestamp(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return from_epoch_us(value)
    except TimestampError as exc:
        raise AdapterError(f"{where}.{key}: {exc}") from None
    raise AdapterError(f"{where}.{key} is {describe(value)}, expected a timestamp")


#: How many distinct raw EPC spellings :func:`cached_epc` remembers. A store's
#: readers report the same tags over and over (every inventory round re-reads
#: the whole field of view), so the working set is the tags in view — a few
#: thousand on a busy floor. 16,384 entries cover that with room to spare for
#: the stockroom and cost about 4 MB (two ~75-byte strings and a link each).
EPC_CACHE_SIZE = 16_384


@lru_cache(maxsize=EPC_CACHE_SIZE)
def cached_epc(raw: str) -> Epc:
    """:func:`~vitrine.contracts.ids.normalise_epc`, remembered per raw spelling.

    Valid because normalising is a pure function of the string; an invalid EPC
    raises :class:`~vitrine.contracts.ids.IdError` every time (exceptions are not
    cached). Normalising costs about 1 µs a read (strip, four replaces, a regex);
    a hit costs about 0.1 µs (docs/performance.md, "Ingest").
    """
    return normalise_epc(raw)


def fast_instant(text: str) -> datetime | None:
    """:func:`~gateway.timestamps.parse_timestamp` for the plain shapes, else ``None``.

    Takes a string that starts with a digit, has ``T`` at index 10 and ends in a
    digit or ``Z`` — the three Zebra spellings (``…785-0600``, ``…+00:00``,
    ``…Z``, WIRE-FORMATS §1) and offset-less local time — and returns exactly
    what ``parse_timestamp`` returns for it, without its strip and date checks.
    ``None`` means "not sure": the caller goes the reference way, which gives
    the value or the reason. Never raises.
    """
    if len(text) < 16 or text[10] != "T" or not ("0" <= text[0] <= "9"):
        return None
    last = text[-1]
    if last != "Z" and not ("0" <= last <= "9"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    zone = parsed.tzinfo
    if zone is UTC:
        return parsed
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def require_epc(raw: object, where: str) -> Epc:
    """Normalise an EPC (upper-case hex, whole bytes) or reject with the reason."""
    if raw is None or raw == "":
        raise AdapterError(f"{where} has no EPC")
    if not isinstance(raw, str):
        raise AdapterError(f"{where} EPC is {describe(raw)}, expected a hex string")
    try:
        return cached_epc(raw)
    except IdError as exc:
        raise AdapterError(f"{where}: {exc}") from None

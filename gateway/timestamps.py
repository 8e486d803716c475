"""Reader timestamps → aware UTC datetimes.

Vendors disagree on the spelling of an instant (WIRE-FORMATS §1–§3):

* Zebra IoT Connector: ``2024-09-05T01:07:01.785-0600`` — a *local* offset with no
  colon (not strict RFC 3339); ``BLE_DATA`` events use ``+00:00``; the vendor schema
  example uses ``Z``.
* Impinj IoT device interface: UTC with up to nanosecond precision
  (``…38.123456789Z``); Speedway Connect: 5 fractional digits (``…54.36879Z``).
* LLRP (sllurp): an integer of microseconds since the Unix epoch.

Python 3.11's :meth:`datetime.fromisoformat` accepts all of the string forms
(it truncates fractions beyond microseconds), so this module only adds the rules
around it: a time of day is required, and a timestamp without an offset is read
as UTC because every vendor above documents UTC when it omits the offset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["TimestampError", "from_epoch_us", "parse_timestamp", "to_rfc3339"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimestampError(ValueError):
    """A value that is not a usable instant."""


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 instant (``Z``, ``+hh:mm`` or ``+hhmm``) to UTC."""
    stripped = text.strip()
    # A bare date is a day, not an instant: the reader meant something else.
    if len(stripped) < 16 or stripped[10:11] not in ("T", "t", " "):
        raise TimestampError(f"timestamp {text[:64]!r} has no time of day")
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise TimestampError(f"timestamp {text[:64]!r} is not ISO 8601: {exc}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"timestamp {text[:64]!r} is out of range") from None


def from_epoch_us(value: int) -> datetime:
    """Microseconds since the Unix epoch (LLRP ``*TimestampUTC``, sllurp 3.x) → UTC."""
    try:
        return _EPOCH + timedelta(microseconds=value)
    except OverflowError:
        raise TimestampError(f"timestamp {value} µs is out of range") from None


def to_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC ending in ``Z`` (what ``vitrine readers parse`` prints)."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"

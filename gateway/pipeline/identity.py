"""What a shopper device is called on the bus; a raw MAC never leaves the gateway.

- A device advertising the store's app iBeacon UUID is the companion app: its
  32-bit rotating token (major << 16 | minor, :mod:`vitrine.contracts.app_token`)
  passes through as 8 lower-case hex digits, ``device_kind="app"``.
- Anything else is anonymous footfall: ``device_kind="anonymous"`` and an
  HMAC-SHA256 of the scanner's device id under a random salt that lives only in
  this process's memory and is replaced every ``period_s`` (daily), so the hash
  links reports within a day and nothing across days or across a restart
  (QUALITY.md, Privacy; CNIL guidance on in-store tracking).

A rejected input leaves the gateway as a dead letter (and a log line): what it
carries goes through :func:`redact_input` first, so a garbled ESPresense report
does not carry the phone's MAC, fingerprint or name past the gateway either.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.reads import BleRead
from vitrine.contracts.ids import DeviceToken

__all__ = ["DeviceIdentity", "Identity", "SaltSource", "redact_input"]

#: ``salt_source(period_number) -> salt``. The service passes a function that
#: ignores its argument and returns ``secrets.token_bytes(32)``; tests pass a
#: deterministic one.
SaltSource = Callable[[int], bytes]

#: 16 hex digits (64 bits): collisions among a store's daily devices are
#: negligible (birthday bound ~4e9) and the value is useless without the salt.
_ANON_HEX = 16


#: A MAC address, bare or with ``:``/``-`` separators (a 24-digit EPC never matches:
#: no word boundary after its 12th digit).
_MAC = re.compile(rb"(?i)\b[0-9a-f]{2}(?:[:-]?[0-9a-f]{2}){5}\b")
#: ESPresense report fields naming the device or its owner (WIRE-FORMATS.md §5:
#: ``id`` is the fingerprint — MAC, ``irk:``, ``apple:``, ``phone:`` —, ``mac``,
#: v4's ``irk`` and the advertised ``name``, e.g. "Camille's iPhone").
_DEVICE_FIELDS = re.compile(rb'"(id|mac|irk|name)"(\s*:\s*)"(?:[^"\\]|\\.)*"')


def redact_input(topic: str, payload: bytes, *, scanner: bool) -> tuple[str, bytes]:
    """What of a rejected input may leave the gateway: MACs out, and for a BLE
    ``scanner``'s input the device level of ``<prefix>/devices/<device-id>/<room>``
    and the report's device fields too. The rest stays byte for byte, so the
    reason for the rejection can still be seen in the dead letter."""
    levels = topic.split("/")
    if scanner and len(levels) >= 3 and levels[-3] == "devices":
        levels[-2] = "<device>"
    text = _MAC.sub(b"<mac>", "/".join(levels).encode()).decode()
    payload = _MAC.sub(b"<mac>", payload)
    if scanner:
        payload = _DEVICE_FIELDS.sub(rb'"\1"\2"<device>"', payload)
    return text, payload


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device: DeviceToken
    kind: Literal["app", "anonymous"]


class Identity:
    """Maps a BLE report to its public identity; holds the current salt."""

    def __init__(
        self, app_uuid: str | None, salt_source: SaltSource, period_s: int = 86_400
    ) -> None:
        self._app_uuid = app_uuid.lower() if app_uuid else None
        self._salt_source = salt_source
        self._period_s = period_s
        self._period: int | None = None
        self._salt = b""

    def of(self, read: BleRead, now_s: float) -> DeviceIdentity:
        beacon = read.ibeacon
        if (
            beacon is not None
            and self._app_uuid is not None
            and beacon.uuid.lower() == (self._app_uuid)
        ):
            token = ((beacon.major & 0xFFFF) << 16) | (beacon.minor & 0xFFFF)
            return DeviceIdentity(DeviceToken(f"{token:08x}"), "app")
        period = int(now_s // self._period_s)
        if period != self._period:
            # The old salt is dropped here: yesterday's hashes cannot be recomputed.
            self._salt = self._salt_source(period)
            self._period = period
        # The scanner's device id (ESPresense fingerprint: ``apple:…``, ``irk:…``,
        # a MAC) is what scanners agree on for one device; a phone's MAC rotates.
        raw = read.device_id.strip().lower()
        digest = hmac.new(self._salt, raw.encode(), hashlib.sha256).hexdigest()
        return DeviceIdentity(DeviceToken(digest[:_ANON_HEX]), "anonymous")

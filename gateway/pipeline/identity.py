"""What a shopper device is called on the bus; a raw MAC never leaves the gateway.

- A device advertising the store's app iBeacon UUID is the companion app: its
  32-bit rotating token (major << 16 | minor, :mod:`vitrine.contracts.app_token`)
  passes through as 8 lower-case hex digits, ``device_kind="app"``.
- Anything else is anonymous footfall: ``device_kind="anonymous"`` and an
  HMAC-SHA256 of the scanner's device id under a random salt that lives only in
  this process's memory and is replaced every ``period_s`` (daily), so the hash
  links reports within a day and nothing across days or across a restart
  (QUALITY.md, Privacy; CNIL guidance on in-store tracking).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.reads import BleRead
from vitrine.contracts.ids import DeviceToken

__all__ = ["DeviceIdentity", "Identity", "SaltSource"]

#: ``salt_source(period_number) -> salt``. The service passes a function that
#: ignores its argument and returns ``secrets.token_bytes(32)``; tests pass a
#: deterministic one.
SaltSource = Callable[[int], bytes]

#: 16 hex digits (64 bits): collisions among a store's daily devices are
#: negligible (birthday bound ~4e9) and the value is useless without the salt.
_ANON_HEX = 16


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

"""The companion app's rotating pseudonymous BLE identifier.

The app advertises an iBeacon whose proximity UUID is the retailer's app UUID
(configuration) and whose major/minor carry a 32-bit token that changes every
``period_s`` seconds: the first four bytes of HMAC-SHA256(install secret,
window number). Only the server, which holds the install secrets, can map a
token back to an install; an onlooker sees an unlinkable number per window
(ARCHITECTURE.md, "Identity, privacy and consent").

Scanners report it like any beacon: ESPresense names it
``iBeacon:<uuid>-<major>-<minor>`` (decimal major and minor).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["DEFAULT_PERIOD_S", "AppBeacon", "rotating_token", "token_of", "window_of"]

#: 15 minutes: short enough that a token seen today says nothing tomorrow,
#: long enough that a visit rarely spans more than two windows.
DEFAULT_PERIOD_S = 900


def window_of(epoch_s: float, period_s: int = DEFAULT_PERIOD_S) -> int:
    return int(epoch_s // period_s)


def rotating_token(secret: bytes, window: int) -> int:
    """The 32-bit token an install advertises during ``window``."""
    mac = hmac.new(secret, window.to_bytes(8, "big"), hashlib.sha256).digest()
    return int.from_bytes(mac[:4], "big")


@dataclass(frozen=True, slots=True)
class AppBeacon:
    """The iBeacon fields that carry a token: major is the high 16 bits."""

    uuid: str
    major: int
    minor: int

    @property
    def token(self) -> int:
        return (self.major << 16) | self.minor

    @classmethod
    def for_token(cls, uuid: str, token: int) -> AppBeacon:
        return cls(uuid=uuid.lower(), major=token >> 16, minor=token & 0xFFFF)


def token_of(secret: bytes, epoch_s: float, period_s: int = DEFAULT_PERIOD_S) -> int:
    return rotating_token(secret, window_of(epoch_s, period_s))

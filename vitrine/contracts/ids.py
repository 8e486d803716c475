"""Typed identifiers and their normalisation at the boundary.

Ids travel as plain strings on the wire; ``NewType`` lets mypy keep a store id
from being passed where an EPC is expected. Anything that becomes an MQTT topic
segment is checked by :func:`topic_segment`, because ``+``, ``#`` and ``/`` in
an id would change what a subscription matches (MQTT 3.1.1 §4.7.1).
"""

from __future__ import annotations

import re
from typing import NewType

__all__ = [
    "DeviceToken",
    "Epc",
    "EventId",
    "GatewayId",
    "Gtin",
    "IdError",
    "RackId",
    "ReaderId",
    "ScannerId",
    "ShopperId",
    "StoreId",
    "ZoneId",
    "normalise_epc",
    "normalise_mac",
    "topic_segment",
]

StoreId = NewType("StoreId", str)
ZoneId = NewType("ZoneId", str)
RackId = NewType("RackId", str)
ReaderId = NewType("ReaderId", str)
ScannerId = NewType("ScannerId", str)
GatewayId = NewType("GatewayId", str)
ShopperId = NewType("ShopperId", str)
EventId = NewType("EventId", str)
#: EPC as upper-case hex, no separators (GS1 TDS §15 "EPC binary encoding").
Epc = NewType("Epc", str)
#: GTIN-14 as 14 decimal digits, check digit included.
Gtin = NewType("Gtin", str)
#: What a shopper device is known by on the bus: the app's rotating
#: pseudonymous token, or the gateway's salted hash of an anonymous device.
DeviceToken = NewType("DeviceToken", str)


class IdError(ValueError):
    """An identifier that cannot be normalised."""


_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HEX = re.compile(r"^[0-9A-F]+$")
_MAC = re.compile(r"^[0-9a-f]{12}$")


def topic_segment(value: str, what: str = "id") -> str:
    """Return ``value`` if it is safe as one MQTT topic level, else raise IdError."""
    if not _SEGMENT.fullmatch(value):
        raise IdError(f"{what} {value!r} is not a valid topic segment ([A-Za-z0-9._:-], 1-128)")
    return value


def normalise_epc(raw: str) -> Epc:
    """Upper-case hex without spaces, dashes or ``0x``; whole bytes only.

    Readers disagree on case (Zebra sends lower-case ``idHex``, Speedway Connect
    upper-case) and some tools group digits; the EPC bank is whole 16-bit words
    in practice, but 32-bit EPCs are real (WIRE-FORMATS §2), so whole bytes is
    the rule we enforce.
    """
    text = raw.strip().replace(" ", "").replace("-", "").replace(":", "")
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    text = text.upper()
    if not text:
        raise IdError("empty EPC")
    if not _HEX.fullmatch(text):
        raise IdError(f"EPC {raw!r} is not hexadecimal")
    if len(text) % 2:
        raise IdError(f"EPC {raw!r} has an odd number of hex digits")
    if len(text) > 124:  # 496 bits: the largest EPC bank a Gen2 PC word can declare
        raise IdError(f"EPC {raw!r} is longer than 496 bits")
    return Epc(text)


def normalise_mac(raw: str) -> str:
    """Lower-case 12 hex digits, no separators (``AA:BB:…`` and ``aabb…`` alike)."""
    text = raw.strip().lower().replace(":", "").replace("-", "")
    if not _MAC.fullmatch(text):
        raise IdError(f"{raw!r} is not a MAC address")
    return text

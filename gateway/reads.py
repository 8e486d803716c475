"""What every southbound adapter produces: normalised reads and device events.

Adapters (one per vendor format, :mod:`gateway.adapters`) turn raw payload bytes
into a list of these; the pipeline (:mod:`gateway.pipeline`) turns reads into
store facts. Nothing here knows a vendor's field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from vitrine.contracts.ids import Epc

__all__ = [
    "AdapterOutput",
    "BleRead",
    "DeviceEvent",
    "DeviceEventKind",
    "IBeacon",
    "RfidRead",
    "Skipped",
]


class RfidRead(NamedTuple):
    """One tag observation by one reader antenna.

    A ``NamedTuple`` rather than the frozen slotted dataclass the other value
    types are: the same immutability, names, order and defaults, but building one
    is a single ``tuple.__new__`` where a frozen dataclass's ``__init__`` makes
    one ``object.__setattr__`` call per field (11 here). That was 38 % of the Zebra
    fast path's time on 50-read batches, and this type is built once per read
    (docs/performance.md, "Ingest"). What differs from a dataclass: it is a
    tuple (equal to a plain tuple of the same values, iterable, no
    ``dataclasses.replace``/``asdict`` — use ``_replace``/``_asdict``).
    """

    epc: Epc
    antenna: int | None
    rssi_dbm: float | None
    #: The reader's own time (UTC), if it sent one; the gateway also stamps receive time.
    timestamp: datetime | None
    reader: str | None
    seen_count: int | None = None
    frequency_mhz: float | None = None
    phase_deg: float | None = None
    tid: str | None = None
    #: The vendor's own sequence number (Zebra ``eventNum``), for gap detection.
    sequence: int | None = None
    #: The reader's clock looks unset (e.g. LLRP readers without NTP report January
    #: 2000); ``timestamp`` is still the reader's value — use the receive time instead.
    clock_suspect: bool = False


@dataclass(frozen=True, slots=True)
class IBeacon:
    uuid: str
    major: int
    minor: int


@dataclass(frozen=True, slots=True)
class BleRead:
    """One BLE advertisement report from a scanner (or a Zebra FXR ``BLE_DATA`` event)."""

    device_id: str
    room: str | None
    rssi_dbm: float | None
    distance_m: float | None
    ibeacon: IBeacon | None
    timestamp: datetime | None
    #: ``rssi@1m`` as the scanner reported it (calibrated power), if any.
    rssi_at_1m: float | None = None
    mac: str | None = None
    #: Which scanner/reader reported it, when known from configuration or payload.
    scanner: str | None = None


DeviceEventKind = Literal[
    "heartbeat",
    "antenna_connected",
    "antenna_disconnected",
    "overflow",
    "gpi",
    "gpo",
    "error",
    "warning",
    "status",
    "inventory_status",
]


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Reader/scanner health that carries no read: heartbeats, antennas, overflow, status."""

    device: str | None
    event: DeviceEventKind
    timestamp: datetime | None
    antenna: int | None = None
    #: For ``overflow``: how many events the reader purged (Impinj ``eventsPurged``).
    lost: int | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input that is valid but carries nothing for Vitrine, with the reason."""

    reason: str


AdapterOutput = RfidRead | BleRead | DeviceEvent | Skipped

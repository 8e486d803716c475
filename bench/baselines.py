"""Two reference ways of turning placed reads into zones, run on the same traffic as Vitrine.

* :class:`StrongestWins` — what most RTLS demos and ESPresense/Bermuda's "nearest
  room" do: the zone of the strongest recent read wins, on the first read, with
  no margin. Present until silent for as long as Vitrine waits (60 s shoppers,
  the same per-zone departures are *not* used: one 60 s timeout for everything).
* :class:`EdgexRules` — EdgeX Foundry's ``app-rfid-llrp-inventory`` rules as the
  issue names them: arrival after 2 reads, a move when the challenger's mean
  RSSI beats the current location's by the mobility profile's threshold
  (``retail_garment_default``: t = 6 dB, slope m = −0.0005 dB/ms after a holdoff
  a = 60 s), departure after ``DepartedThresholdSeconds`` = 600 s unseen.

Both take reads already placed in a zone (the harness places them from the
layout exactly as the gateway does) and answer "which zone is X in now?".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = ["EdgexRules", "StrongestWins", "ZoneMethod"]

#: A read older than this no longer competes for "strongest": one Zebra report
#: interval (10 s, ``reportFilter.duration``) so every antenna's last report counts.
STRONGEST_WINDOW_S = 10.0
#: Silence after which the strongest-wins baseline forgets a tag or a phone.
STRONGEST_TIMEOUT_S = 60.0
#: A Zebra SIMPLE read has no RSSI; it competes as a middling read.
NO_RSSI_DBM = -70.0

#: EdgeX ``retail_garment_default`` mobility profile and thresholds.
EDGEX_THRESHOLD_DB = 6.0
EDGEX_SLOPE_DB_PER_S = -0.5  # -0.0005 dB/ms
EDGEX_HOLDOFF_S = 60.0
EDGEX_ARRIVAL_READS = 2
EDGEX_DEPARTED_S = 600.0
#: EdgeX averages a location's RSSI over its recent reads (its ``rssiBuffer``).
EDGEX_MEAN_READS = 5


class ZoneMethod:
    """Interface shared by the baselines (Vitrine is wrapped to it by the harness)."""

    name = ""

    def rfid(self, epc: str, zone: str, rssi: float | None, t: float) -> None:
        raise NotImplementedError

    def ble(self, device: str, zone: str, rssi: float, t: float) -> None:
        raise NotImplementedError

    def tick(self, t: float) -> None:
        raise NotImplementedError

    def item_zone(self, epc: str) -> str | None:
        raise NotImplementedError

    def shopper_zone(self, device: str) -> str | None:
        raise NotImplementedError


class _Tracked(Protocol):
    seen: float
    zone: str | None


T = TypeVar("T", bound=_Tracked)


class _PerKeyMethod(ZoneMethod, Generic[T]):
    """What both baselines share: a state per tag or device, forgotten after
    ``timeout_s`` without a read; subclasses say how one read updates it."""

    timeout_s: float

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._devices: dict[str, T] = {}

    def _see(self, book: dict[str, T], key: str, zone: str, rssi: float, t: float) -> None:
        raise NotImplementedError

    def rfid(self, epc: str, zone: str, rssi: float | None, t: float) -> None:
        self._see(self._items, epc, zone, NO_RSSI_DBM if rssi is None else rssi, t)

    def ble(self, device: str, zone: str, rssi: float, t: float) -> None:
        self._see(self._devices, device, zone, rssi, t)

    def tick(self, t: float) -> None:
        for book in (self._items, self._devices):
            for key in [k for k, s in book.items() if t - s.seen > self.timeout_s]:
                del book[key]

    def item_zone(self, epc: str) -> str | None:
        s = self._items.get(epc)
        return s.zone if s else None

    def shopper_zone(self, device: str) -> str | None:
        s = self._devices.get(device)
        return s.zone if s else None


@dataclass(slots=True)
class _Strongest:
    last: dict[str, tuple[float, float]] = field(default_factory=dict)  # zone -> (rssi, t)
    seen: float = 0.0
    zone: str | None = None


class StrongestWins(_PerKeyMethod[_Strongest]):
    name = "strongest_wins"
    timeout_s = STRONGEST_TIMEOUT_S

    def _see(self, book: dict[str, _Strongest], key: str, zone: str, rssi: float, t: float) -> None:
        s = book.get(key)
        if s is None:
            s = book[key] = _Strongest()
        s.last[zone] = (rssi, t)
        s.seen = t
        fresh = {z: r for z, (r, when) in s.last.items() if t - when <= STRONGEST_WINDOW_S}
        s.zone = max(fresh, key=lambda z: fresh[z])


@dataclass(slots=True)
class _Edgex:
    rssi: dict[str, deque[float]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    reads: int = 0
    seen: float = 0.0
    zone: str | None = None


class EdgexRules(_PerKeyMethod[_Edgex]):
    name = "edgex_rules"
    timeout_s = EDGEX_DEPARTED_S

    def _see(self, book: dict[str, _Edgex], key: str, zone: str, rssi: float, t: float) -> None:
        s = book.get(key)
        if s is None:
            s = book[key] = _Edgex()
        buf = s.rssi.get(zone)
        if buf is None:
            buf = s.rssi[zone] = deque(maxlen=EDGEX_MEAN_READS)
        buf.append(rssi)
        s.last[zone] = t
        s.seen = t
        s.reads += 1
        if s.zone is None:
            if s.reads >= EDGEX_ARRIVAL_READS:
                s.zone = zone
            return
        if zone == s.zone:
            return
        current = s.rssi.get(s.zone)
        mean_cur = sum(current) / len(current) if current else -200.0
        # The mobility profile: the longer the current location has been silent
        # (past the holdoff), the less its RSSI counts.
        since = t - s.last.get(s.zone, t)
        if since > EDGEX_HOLDOFF_S:
            mean_cur += EDGEX_SLOPE_DB_PER_S * (since - EDGEX_HOLDOFF_S)
        mean_new = sum(buf) / len(buf)
        if mean_new > mean_cur + EDGEX_THRESHOLD_DB:
            s.zone = zone

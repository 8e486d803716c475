"""Shopper devices (BLE): entered / changed zone / dwelled / left.

Rules (constants and their reasons in :class:`gateway.pipeline.rules.ShopperRules`):

- **Smoothing per scanner:** an exponential moving average of RSSI whose weight
  follows the time since the scanner's previous report (``ema_tau_s``); a
  scanner silent for ``scanner_stale_s`` stops counting.
- **Zone score:** the best smoothed RSSI among the zone's fresh scanners.
- **Entered:** ``enter_min_reports`` reports within ``enter_window_s``, placed
  in the strongest zone (never straight into the exit zone).
- **Changed zone:** another zone beats the current one by ``margin_db``, keeps
  beating it for ``switch_sustain_s``, and the device has been in its zone for
  at least ``min_stay_s``. ESPresense and Bermuda flap because they pick the
  nearest room per report (or per Kalman-filtered distance) with no margin,
  and lag because their filters are tuned in tens of seconds; here a real move
  shows in 2-3 reports and σ 6 dB noise never crosses the margin for long.
- **Dwelled:** once per stay, ``dwell_s`` after entering the zone.
- **Left:** ``exit_confirm_s`` after switching to the exit zone unless another
  zone took over before, or ``left_timeout_s`` after the last report from any
  scanner (``occurred_at`` = switch + confirm delay, or last report + timeout).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.pipeline.items import Placement
from gateway.pipeline.rules import ShopperRules
from vitrine.contracts.facts import (
    Fact,
    ShopperDwelled,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
    make_event_id,
)
from vitrine.contracts.ids import DeviceToken, GatewayId, StoreId, ZoneId
from vitrine.contracts.layout import ZoneType

__all__ = ["ShopperTracker"]

DeviceKind = Literal["app", "anonymous"]


@dataclass(slots=True)
class _Scan:
    ema: float
    last: float
    placement: Placement


@dataclass(slots=True)
class _Device:
    kind: DeviceKind
    last_seen: float
    scans: dict[str, _Scan] = field(default_factory=dict)
    reports: deque[float] = field(default_factory=deque)
    present: bool = False
    zone: str | None = None
    zone_type: ZoneType | None = None
    since: float = 0.0
    dwelled: bool = False
    challenger: str | None = None
    challenger_since: float = 0.0


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class ShopperTracker:
    """State of every shopper device seen recently; pure and clock-free."""

    def __init__(self, store: StoreId, gateway: GatewayId, rules: ShopperRules) -> None:
        self._store = store
        self._gateway = gateway
        self._rules = rules
        self._devices: dict[DeviceToken, _Device] = {}

    def __len__(self) -> int:
        return len(self._devices)

    def zone_of(self, device: DeviceToken) -> str | None:
        dev = self._devices.get(device)
        return dev.zone if dev and dev.present else None

    def rssi_of(
        self, rssi: float | None, distance_m: float | None, rssi_1m: float | None
    ) -> float | None:
        """RSSI, or a pseudo-RSSI from a distance (log-distance path loss, §5)."""
        if rssi is not None and math.isfinite(rssi):
            return rssi
        if distance_m is not None and math.isfinite(distance_m) and distance_m > 0:
            ref = rssi_1m if rssi_1m is not None and math.isfinite(rssi_1m) else None
            ref = self._rules.ref_rssi_1m_dbm if ref is None else ref
            return ref - 10 * self._rules.path_loss_n * math.log10(distance_m)
        return None

    # ------------------------------------------------------------------ input
    def observe(
        self,
        device: DeviceToken,
        kind: DeviceKind,
        scanner: str,
        placement: Placement,
        rssi: float,
        t: float,
    ) -> list[Fact]:
        rules = self._rules
        dev = self._devices.get(device)
        if dev is None:
            dev = self._devices[device] = _Device(kind=kind, last_seen=t)
        scan = dev.scans.get(scanner)
        if scan is None or t - scan.last > rules.scanner_stale_s:
            dev.scans[scanner] = _Scan(rssi, t, placement)
        else:
            dt = max(t - scan.last, 0.0)
            alpha = 1.0 - math.exp(-dt / rules.ema_tau_s) if dt > 0 else 0.5
            scan.ema += alpha * (rssi - scan.ema)
            scan.last = max(scan.last, t)
            scan.placement = placement
        dev.last_seen = max(dev.last_seen, t)
        dev.reports.append(t)
        while dev.reports and dev.reports[0] < t - rules.enter_window_s:
            dev.reports.popleft()
        facts = self._exit_leave(device, dev, t)
        facts.extend(self._decide(device, dev, t))
        facts.extend(self._dwell(device, dev, t))
        return facts

    def tick(self, t: float) -> list[Fact]:
        facts: list[Fact] = []
        timeout = self._rules.left_timeout_s
        for device in list(self._devices):
            dev = self._devices[device]
            if t - dev.last_seen >= timeout:
                if dev.present:
                    when = dev.last_seen + timeout
                    facts.append(self._left(device, dev, when))
                del self._devices[device]
                continue
            facts.extend(self._exit_leave(device, dev, t))
            facts.extend(self._dwell(device, dev, t))
        return facts

    # ------------------------------------------------------------------ rules
    def _scores(self, dev: _Device, t: float) -> dict[str, tuple[float, Placement]]:
        scores: dict[str, tuple[float, Placement]] = {}
        for scan in dev.scans.values():
            if t - scan.last > self._rules.scanner_stale_s:
                continue
            zone = scan.placement.zone
            if zone not in scores or scan.ema > scores[zone][0]:
                scores[zone] = (scan.ema, scan.placement)
        return scores

    def _decide(self, device: DeviceToken, dev: _Device, t: float) -> list[Fact]:
        rules = self._rules
        scores = self._scores(dev, t)
        if not scores:
            return []
        if not dev.present:
            best = max(scores, key=lambda z: (scores[z][0], z))
            placement = scores[best][1]
            if (
                len(dev.reports) < rules.enter_min_reports
                or dev.reports[-1] - dev.reports[0] < rules.enter_settle_s
                or placement.zone_type is ZoneType.EXIT
            ):
                return []
            self._move(dev, placement, t)
            dev.present = True
            return [self._fact(ShopperEntered, device, dev, t, zone=ZoneId(best))]
        current = dev.zone
        assert current is not None
        floor = scores[current][0] if current in scores else float("-inf")
        others = {
            z: s for z, s in scores.items() if z != current and s[0] >= floor + rules.margin_db
        }
        if not others:
            dev.challenger = None
            return []
        best = max(others, key=lambda z: (others[z][0], z))
        if best != dev.challenger:
            dev.challenger, dev.challenger_since = best, t
        if t - dev.challenger_since < rules.switch_sustain_s or t - dev.since < rules.min_stay_s:
            return []
        placement = others[best][1]
        self._move(dev, placement, t)
        return [
            self._fact(
                ShopperZoneChanged, device, dev, t, zone=ZoneId(best), from_zone=ZoneId(current)
            )
        ]

    def _exit_leave(self, device: DeviceToken, dev: _Device, t: float) -> list[Fact]:
        """Left, once the device has stayed ``exit_confirm_s`` in the exit zone.

        ``occurred_at`` is the switch into the exit + the delay, whether a tick
        or a report notices it first, so a replay yields the same fact id.
        """
        if not dev.present or dev.zone_type is not ZoneType.EXIT:
            return []
        when = dev.since + self._rules.exit_confirm_s
        if t < when:
            return []
        fact = self._left(device, dev, when)
        dev.present = False
        dev.reports.clear()
        return [fact]

    def _move(self, dev: _Device, placement: Placement, t: float) -> None:
        dev.zone, dev.zone_type, dev.since = placement.zone, placement.zone_type, t
        dev.dwelled = False
        dev.challenger = None

    def _dwell(self, device: DeviceToken, dev: _Device, t: float) -> list[Fact]:
        dwell = self._rules.dwell_s
        if not dev.present or dev.dwelled or dev.zone is None or t - dev.since < dwell:
            return []
        if dev.last_seen < dev.since + dwell:  # not reported since: no evidence it stayed
            return []
        if dev.zone_type is ZoneType.EXIT:
            return []
        dev.dwelled = True
        return [
            self._fact(
                ShopperDwelled, device, dev, dev.since + dwell, zone=ZoneId(dev.zone), dwell_s=dwell
            )
        ]

    def _left(self, device: DeviceToken, dev: _Device, t: float) -> Fact:
        zone = ZoneId(dev.zone) if dev.zone is not None else None
        return self._fact(ShopperLeft, device, dev, t, last_zone=zone)

    def _fact(
        self,
        cls: type[ShopperEntered]
        | type[ShopperZoneChanged]
        | type[ShopperDwelled]
        | type[ShopperLeft],
        device: DeviceToken,
        dev: _Device,
        t: float,
        **fields: Any,
    ) -> Fact:
        when = _at(t)
        kind = cls.model_fields["kind"].default
        return cls(
            event_id=make_event_id(
                self._store,
                kind,
                device,
                fields.get("zone") or fields.get("last_zone"),
                when.isoformat(),
            ),
            store=self._store,
            gateway=self._gateway,
            occurred_at=when,
            device=device,
            device_kind=dev.kind,
            **fields,
        )

    # --------------------------------------------------------------- snapshot
    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Present devices, JSON-able (public tokens/hashes only, never a MAC)."""
        return {
            device: {
                "kind": d.kind,
                "zone": d.zone,
                "since": d.since,
                "last_seen": d.last_seen,
                "dwelled": d.dwelled,
            }
            for device, d in self._devices.items()
            if d.present
        }

    def restore(self, data: dict[str, Any], t: float, placements: dict[str, Placement]) -> int:
        """Take present devices back; their "left" timeout restarts at ``t``.

        Their zone stay also restarts at ``t`` (so ``min_stay_s`` holds them in
        place until their own scanner reports again); a device that had dwelled
        does not dwell again. Anonymous devices come back under their old hash,
        which the new salt never reproduces: they leave after the timeout and
        re-enter under a new hash, a consistent pair rather than a lost visit.
        """
        restored = 0
        for device, raw in data.items():
            zone = raw.get("zone")
            kind = raw.get("kind")
            if (
                not isinstance(zone, str)
                or zone not in placements
                or kind
                not in (
                    "app",
                    "anonymous",
                )
            ):
                continue
            self._devices[DeviceToken(device)] = _Device(
                kind=kind,
                last_seen=max(float(raw.get("last_seen", t)), t),
                present=True,
                zone=zone,
                zone_type=placements[zone].zone_type,
                since=t,
                dwelled=bool(raw.get("dwelled", False)),
            )
            restored += 1
        return restored

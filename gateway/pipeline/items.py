"""Items (RFID tags): arrived / moved / departed per zone, with hysteresis.

Rules (constants and their reasons in :class:`gateway.pipeline.rules.ItemRules`):

- **De-duplication:** reads of one tag by one antenna within ``dedupe_s``
  collapse into one (they only refresh "last seen").
- **Arrival:** an item in no zone arrives in a zone once that zone has
  ``arrival_min_reads`` reads of it within ``window_s``.
- **Move:** an item in zone A moves to zone B when B has ``arrival_min_reads``
  reads in the window and, over the last ``compare_s``, B beats A: by
  ``rssi_margin_db`` of mean RSSI when both have RSSI, otherwise (Zebra SIMPLE
  mode sends none) by ``count_ratio`` times A's read count; B must keep beating
  A for ``move_sustain_s``.
- **Departure:** an item unseen in its zone for the zone type's delay departs;
  ``occurred_at`` is last-seen + delay, so a replay yields the same fact id.
- **A dead antenna is not an empty shelf:** while the reader reports the antenna
  that last saw an item disconnected, the item does not depart; when it is back
  the item's departure clock restarts then (as after a gateway restart). With
  fast departures (a fitting room's 5 s) one failed antenna would otherwise
  tell every phone its items had left the store (the ``dead-antenna`` scenario
  of ``vitrine bench``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.pipeline.rules import ItemRules
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemDeparted,
    ItemMoved,
    make_event_id,
)
from vitrine.contracts.ids import Epc, GatewayId, Gtin, StoreId, ZoneId
from vitrine.contracts.layout import ZoneType

__all__ = ["EpcInfo", "ItemTracker", "Placement"]

#: ``epc -> (gtin, serial)``; ``(None, None)`` for a non-SGTIN (opaque) tag.
EpcInfo = Callable[[Epc], tuple[Gtin | None, str | None]]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an antenna is: from the store layout."""

    zone: str
    zone_type: ZoneType
    rack: str | None


@dataclass(slots=True)
class _Sighting:
    t: float
    rssi: float | None
    #: Counts as evidence until then: ``t`` + the antenna's evidence window.
    until: float


@dataclass(slots=True)
class _Item:
    zone: str | None = None
    zone_type: ZoneType | None = None
    since: float = 0.0
    last_seen: float = 0.0
    rack: str | None = None
    reader: str | None = None
    antenna: int | None = None
    rssi: float | None = None
    challenger: str | None = None
    challenger_since: float = 0.0
    evidence: dict[str, deque[_Sighting]] = field(default_factory=dict)
    #: (reader, antenna) -> time of the last read kept, for de-duplication.
    kept: dict[tuple[str, int | None], float] = field(default_factory=dict)
    #: zone -> (placement, reader, antenna, rssi) of the latest read there.
    where: dict[str, tuple[Placement, str, int | None, float | None]] = field(default_factory=dict)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class ItemTracker:
    """State of every item the gateway has seen recently; pure and clock-free."""

    def __init__(
        self, store: StoreId, gateway: GatewayId, rules: ItemRules, epc_info: EpcInfo
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._rules = rules
        #: ``rules.dedupe_s``, read once per read: kept at hand.
        self._dedupe_s = rules.dedupe_s
        self._epc_info = epc_info
        self._items: dict[Epc, _Item] = {}
        #: (reader, antenna) -> smoothed interval between two reads of one tag.
        self._cadence: dict[tuple[str, int | None], float] = {}
        #: Antennas their reader reports disconnected: their items do not depart.
        self._down: set[tuple[str, int]] = set()

    def __len__(self) -> int:
        return len(self._items)

    def zone_of(self, epc: Epc) -> str | None:
        item = self._items.get(epc)
        return item.zone if item else None

    # ------------------------------------------------------------------ input
    def observe(
        self,
        epc: Epc,
        placement: Placement,
        reader: str,
        antenna: int | None,
        rssi: float | None,
        t: float,
    ) -> list[Fact]:
        key = (reader, antenna)
        item = self._items.get(epc)
        if item is None:
            item = self._items[epc] = _Item()
            last = None
        else:
            last = item.kept.get(key)
            if last is not None and 0 <= t - last < self._dedupe_s:
                # A repeat (most reads of a steady store): it only refreshes "last seen".
                if placement.zone == item.zone and t > item.last_seen:
                    item.last_seen = t
                return []
        zone = placement.zone
        if zone == item.zone:
            item.last_seen = max(item.last_seen, t)
        if last is not None:
            self._learn_cadence(key, t - last)
        item.kept[key] = t
        window = self.window_for(key)
        item.evidence.setdefault(zone, deque()).append(_Sighting(t, rssi, t + window))
        item.where[zone] = (placement, reader, antenna, rssi)
        if zone == item.zone:
            item.rack, item.reader, item.antenna, item.rssi = (
                placement.rack,
                reader,
                antenna,
                rssi,
            )
        self._prune(item, t)
        return self._decide(epc, item, t)

    def antenna_down(self, reader: str, antenna: int) -> None:
        """The reader reports ``antenna`` disconnected: hold its items' departures."""
        self._down.add((reader, antenna))

    def antenna_up(self, reader: str, antenna: int, t: float) -> None:
        """``antenna`` is back: its items' departure clocks restart at ``t``."""
        if (reader, antenna) not in self._down:
            return
        self._down.discard((reader, antenna))
        for item in self._items.values():
            if item.reader == reader and item.antenna == antenna and item.zone is not None:
                item.last_seen = max(item.last_seen, t)

    def tick(self, t: float) -> list[Fact]:
        facts: list[Fact] = []
        down = self._down
        for epc in list(self._items):
            item = self._items[epc]
            if (
                item.zone is not None
                and item.zone_type is not None
                and not (down and (item.reader, item.antenna) in down)
            ):
                deadline = item.last_seen + self._rules.departure_for(item.zone_type)
                if t >= deadline:
                    facts.append(self._fact(ItemDeparted, epc, item, deadline))
                    item.zone = item.zone_type = None
                    item.challenger = None
            self._prune(item, t)
            if item.zone is None and not item.evidence:
                del self._items[epc]
        return facts

    # ------------------------------------------------------------------ rules
    def _learn_cadence(self, key: tuple[str, int | None], gap: float) -> None:
        rules = self._rules
        if not 0 < gap <= rules.max_window_s:
            return  # the tag was away (or the clock stood still): not the reader's pace
        old = self._cadence.get(key)
        self._cadence[key] = gap if old is None else old + rules.cadence_alpha * (gap - old)

    def window_for(self, key: tuple[str, int | None]) -> float:
        """Evidence window of an antenna: ``window_s``, widened for a slow reader."""
        rules = self._rules
        cadence = self._cadence.get(key)
        if cadence is None:
            return rules.window_s
        return min(max(rules.window_s, rules.cadence_windows * cadence), rules.max_window_s)

    def _prune(self, item: _Item, t: float) -> None:
        for zone in list(item.evidence):
            ev = item.evidence[zone]
            while ev and ev[0].until < t:
                ev.popleft()
            if not ev:
                del item.evidence[zone]
                if zone != item.zone:
                    item.where.pop(zone, None)
        horizon = t - self._rules.max_window_s
        for key in [k for k, v in item.kept.items() if v < horizon]:
            del item.kept[key]

    def _recent(self, item: _Item, zone: str, t: float) -> list[_Sighting]:
        horizon = t - self._rules.compare_s
        return [s for s in item.evidence.get(zone, ()) if s.t >= horizon]

    def _beats(self, item: _Item, challenger: str, current: str, t: float) -> bool:
        rules = self._rules
        if len(item.evidence.get(challenger, ())) < rules.arrival_min_reads:
            return False
        new = self._recent(item, challenger, t)
        if not new:
            return False
        old = self._recent(item, current, t)
        if not old:
            return True
        new_rssi = [s.rssi for s in new if s.rssi is not None]
        old_rssi = [s.rssi for s in old if s.rssi is not None]
        if new_rssi and old_rssi:
            return sum(new_rssi) / len(new_rssi) >= sum(old_rssi) / len(old_rssi) + (
                rules.rssi_margin_db
            )
        return len(new) >= rules.count_ratio * len(old)

    def _score(self, item: _Item, zone: str, t: float) -> tuple[int, float]:
        ev = item.evidence.get(zone, ())
        rssi = [s.rssi for s in ev if s.rssi is not None]
        return (len(ev), sum(rssi) / len(rssi) if rssi else float("-inf"))

    def _decide(self, epc: Epc, item: _Item, t: float) -> list[Fact]:
        rules = self._rules
        if item.zone is None:
            ready = [
                z
                for z, ev in item.evidence.items()
                if len(ev) >= rules.arrival_reads_for(item.where[z][0].zone_type)
            ]
            if not ready:
                return []
            zone = max(ready, key=lambda z: (self._score(item, z, t)[1], len(item.evidence[z]), z))
            self._enter(item, zone, t)
            return [self._fact(ItemArrived, epc, item, t)]
        current = item.zone
        others = [z for z in item.evidence if z != current and self._beats(item, z, current, t)]
        if not others:
            item.challenger = None
            return []
        best = max(others, key=lambda z: (self._score(item, z, t)[1], len(item.evidence[z]), z))
        if best != item.challenger:
            item.challenger, item.challenger_since = best, t
            if rules.move_sustain_s > 0:
                return []
        if t - item.challenger_since < rules.move_sustain_s:
            return []
        from_zone = current
        self._enter(item, best, t)
        return [self._fact(ItemMoved, epc, item, t, from_zone=from_zone)]

    def _enter(self, item: _Item, zone: str, t: float) -> None:
        placement, reader, antenna, rssi = item.where[zone]
        item.zone, item.zone_type = zone, placement.zone_type
        item.since = item.last_seen = t
        item.rack, item.reader, item.antenna, item.rssi = placement.rack, reader, antenna, rssi
        item.challenger = None

    def _fact(
        self,
        cls: type[ItemArrived] | type[ItemMoved] | type[ItemDeparted],
        epc: Epc,
        item: _Item,
        t: float,
        from_zone: str | None = None,
    ) -> Fact:
        assert item.zone is not None
        when = _at(t)
        gtin, serial = self._epc_info(epc)
        kind = cls.model_fields["kind"].default
        extra: dict[str, Any] = {}
        if from_zone is not None:
            extra["from_zone"] = ZoneId(from_zone)
        return cls(
            event_id=make_event_id(self._store, kind, epc, item.zone, when.isoformat()),
            store=self._store,
            gateway=self._gateway,
            occurred_at=when,
            epc=epc,
            gtin=gtin,
            serial=serial,
            zone=ZoneId(item.zone),
            rack=item.rack,
            reader=item.reader,
            antenna=item.antenna,
            rssi_dbm=item.rssi,
            **extra,
        )

    # --------------------------------------------------------------- snapshot
    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Items in a zone, JSON-able; evidence is deliberately not kept."""
        return {
            epc: {
                "zone": it.zone,
                "zone_type": it.zone_type.value if it.zone_type else None,
                "since": it.since,
                "last_seen": it.last_seen,
                "rack": it.rack,
                "reader": it.reader,
                "antenna": it.antenna,
                "rssi": it.rssi,
            }
            for epc, it in self._items.items()
            if it.zone is not None
        }

    def restore(self, data: dict[str, Any], t: float, placements: dict[str, Placement]) -> int:
        """Take items back in their zones; their departure clocks restart at ``t``.

        The gateway was down, not the items: counting the downtime as silence
        would send a storm of false departures. Zones no longer in the layout
        are dropped. Returns how many items were restored.
        """
        restored = 0
        for epc, raw in data.items():
            zone = raw.get("zone")
            if not isinstance(zone, str) or zone not in placements:
                continue
            placement = placements[zone]
            antenna = raw.get("antenna")
            rssi = raw.get("rssi")
            item = _Item(
                zone=zone,
                zone_type=placement.zone_type,
                since=float(raw.get("since", t)),
                last_seen=max(float(raw.get("last_seen", t)), t),
                rack=raw.get("rack"),
                reader=raw.get("reader"),
                antenna=antenna if isinstance(antenna, int) else None,
                rssi=float(rssi) if isinstance(rssi, int | float) else None,
            )
            item.where[zone] = (
                Placement(zone, placement.zone_type, item.rack),
                item.reader or "",
                item.antenna,
                item.rssi,
            )
            self._items[Epc(epc)] = item
            restored += 1
        return restored

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
  A for ``move_sustain_s`` (judged on the tick too, as of the instant the
  sustain is over, so the move does not wait for B's next read).
- **Departure:** an item unseen in its zone for the zone type's delay departs;
  ``occurred_at`` is last-seen + delay, so a replay yields the same fact id.
- **A dead antenna is not an empty shelf:** while the reader reports the antenna
  that last saw an item disconnected, the item does not depart; when it is back
  the item's departure clock restarts then (as after a gateway restart). With
  fast departures (a fitting room's 5 s) one failed antenna would otherwise
  tell every phone its items had left the store (the ``dead-antenna`` scenario
  of ``vitrine bench``).
- **A silent antenna is not an empty rack either:** a reader that says nothing
  of a failed antenna or cable (a Zebra reader: WIRE-FORMATS has no antenna
  fault event) is caught by what it stops sending. An antenna on a rack or
  shelf (sales floor, stockroom) that read at least ``silent_min_tags`` tags in
  its last read round, then nothing at all for ``silent_rounds`` of its rounds
  while its reader's other antennas read on, has failed: shoppers and staff
  take garments off a rack one or a few at a time, so its tags fall quiet over
  minutes, never all in one round. Its items (those it read within its
  evidence window before it fell silent) are held as for a reported dead
  antenna, for at most ``silent_hold_max_s``; when it reads again their
  departure clocks restart then.
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

__all__ = ["EpcInfo", "ItemTracker", "Placement", "SilentAntenna"]

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


@dataclass(frozen=True, slots=True)
class SilentAntenna:
    """An antenna inferred failed: it stopped reading all its tags at once."""

    reader: str
    antenna: int
    #: Its last read: the fault came after it.
    last_read: float
    #: Items it read within one round before ``last_read``: the tags that fell
    #: quiet at once (the evidence, at least ``silent_min_tags``).
    tags: int
    #: Its items last seen at or after this are held (its evidence window
    #: before ``last_read``); older ones were already quiet while it worked.
    held_from: float
    #: ... until this, at the latest (``last_read + silent_hold_max_s``).
    held_until: float


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
        #: (reader, antenna) -> time of its latest kept read of any tag.
        self._antenna_read: dict[tuple[str, int | None], float] = {}
        #: reader -> its latest kept read, and the start of its current spell of
        #: reading without a break longer than ``window_s`` (a reboot breaks it).
        self._reader_read: dict[str, float] = {}
        self._reader_since: dict[str, float] = {}
        #: Antennas inferred failed (they stopped reading every tag at once).
        self._silent: dict[tuple[str, int | None], SilentAntenna] = {}
        #: Quiet antennas already judged not failed (too few tags fell quiet at
        #: once): not judged again until they read again.
        self._quiet: set[tuple[str, int | None]] = set()

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

    def antenna_read(self, reader: str, antenna: int | None, t: float) -> None:
        """``antenna`` read a tag at ``t``: once per antenna per message is enough.

        Kept apart from :meth:`observe` so a batch of reads pays for it once
        per antenna (``Pipeline._rfid_run``), not once per read.
        """
        key = (reader, antenna)
        self._antenna_read[key] = t
        spell = self._reader_read.get(reader)
        if spell is None or t - spell > self._rules.window_s:
            self._reader_since[reader] = t  # the reader (re)starts reading
        self._reader_read[reader] = t
        if self._quiet or self._silent:
            self._quiet.discard(key)
            if key in self._silent:
                self._resume(key, t)

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

    def silent_antennas(self) -> list[SilentAntenna]:
        """Antennas inferred failed, in (reader, antenna) order."""
        return [self._silent[k] for k in sorted(self._silent, key=lambda k: (k[0], k[1] or 0))]

    def tick(self, t: float) -> list[Fact]:
        facts: list[Fact] = []
        down = self._down
        if self._antenna_read:
            self._find_silent(t)
        silent = self._silent
        sustain = self._rules.move_sustain_s
        for epc in list(self._items):
            item = self._items[epc]
            if item.challenger is not None and item.zone is not None:
                # The challenger has kept winning since ``challenger_since`` with
                # no read since to say otherwise: it moves when its sustain is
                # over, not at its next read (a round later, 10 s at a Zebra
                # ``reportFilter`` of 10 s). Decided as of that instant, so the
                # fact does not depend on the tick's phase.
                due = item.challenger_since + sustain
                if t >= due:
                    facts.extend(self._decide(epc, item, due))
            if (
                item.zone is not None
                and item.zone_type is not None
                and not (down and (item.reader, item.antenna) in down)
            ):
                deadline = item.last_seen + self._rules.departure_for(item.zone_type)
                hold = silent.get((item.reader or "", item.antenna)) if silent else None
                if hold is not None and item.last_seen >= hold.held_from:
                    deadline = max(deadline, hold.held_until)
                if t >= deadline:
                    facts.append(self._fact(ItemDeparted, epc, item, deadline))
                    item.zone = item.zone_type = None
                    item.challenger = None
            self._prune(item, t)
            if item.zone is None and not item.evidence:
                del self._items[epc]
        return facts

    # ---------------------------------------------------------- silent antennas
    def _round(self, key: tuple[str, int | None]) -> float:
        """One read round of an antenna: its learnt cadence, else ``window_s``."""
        return self._cadence.get(key, self._rules.window_s)

    def _find_silent(self, t: float) -> None:
        """Judge antennas quiet for ``silent_rounds`` rounds while their reader reads on."""
        rules = self._rules
        reads = self._antenna_read
        since = self._reader_since
        candidates: list[tuple[str, int | None]] = []
        for key, last in reads.items():
            if key[1] is None or key in self._silent or key in self._quiet:
                continue
            quiet_for = min(
                max(rules.silent_rounds * self._round(key), rules.window_s), rules.max_window_s
            )
            # Quiet while its reader reads: counted from the later of its own last
            # read and the start of the reader's spell (after a reboot every
            # antenna comes back within a round, and is not judged before).
            reader = key[0]
            if t - max(last, since.get(reader, last)) < quiet_for:
                continue
            # A sibling antenna read within the quiet spell: the reader is up. A
            # whole reader gone quiet (off, unplugged, its network down) is not
            # an antenna fault: its health report shows it.
            if any(k[0] == reader and k != key and t - v < quiet_for for k, v in reads.items()):
                candidates.append(key)
        if not candidates:
            return
        stocked = rules.silent_antenna_zones
        counts = dict.fromkeys(candidates, 0)
        last_round = {key: reads[key] - self._round(key) for key in candidates}
        for item in self._items.values():
            key = (item.reader or "", item.antenna)
            if key in counts and item.zone_type in stocked and item.last_seen >= last_round[key]:
                counts[key] += 1
        for key in candidates:
            if counts[key] < rules.silent_min_tags:
                self._quiet.add(key)  # too few tags to tell a fault from a sale
                continue
            last = reads[key]
            assert key[1] is not None
            self._silent[key] = SilentAntenna(
                reader=key[0],
                antenna=key[1],
                last_read=last,
                tags=counts[key],
                held_from=last - self.window_for(key),
                held_until=last + rules.silent_hold_max_s,
            )

    def _resume(self, key: tuple[str, int | None], t: float) -> None:
        """A silent antenna reads again: its held items' departure clocks restart at ``t``."""
        hold = self._silent.pop(key)
        for item in self._items.values():
            if (
                item.reader == key[0]
                and item.antenna == key[1]
                and item.zone is not None
                and item.last_seen >= hold.held_from
            ):
                item.last_seen = max(item.last_seen, t)

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
            # An antenna's first tags: its reader's pace (a Zebra ``reportFilter``
            # and an Impinj ``eventPerSecondLimit`` are set per reader), the
            # slowest of its antennas'. Rare: once per antenna until it has one.
            reader = key[0]
            paces = [c for k, c in self._cadence.items() if k[0] == reader]
            if not paces:
                return rules.window_s
            cadence = max(paces)
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
        are dropped. Their antennas count as having read at ``t``, so one that
        stays silent while its reader reads on is still found (silent antennas
        are not in the snapshot). Returns how many items were restored.
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
            if item.reader is not None and item.antenna is not None:
                # Its antenna is judged from the restart on: one still silent
                # after it (its reader reading on) is caught as if it had died now.
                key = (item.reader, item.antenna)
                self._antenna_read[key] = max(self._antenna_read.get(key, t), t)
            restored += 1
        return restored

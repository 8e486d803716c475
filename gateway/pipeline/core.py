"""The pipeline: normalised reads and device events in, store facts out.

Synchronous and deterministic: every call carries its own time (the gateway's
receive time for input, the tick time for timers), so the same input sequence
always yields the same facts with the same ``event_id``s. The service owns all
I/O; see ``docs/gateway.md`` for the rules and their constants.

Reader clocks are not trusted (LLRP readers without NTP report January 2000,
WIRE-FORMATS.md §3): decisions and ``occurred_at`` use the receive time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from gateway.epc import try_decode_epc
from gateway.health import HealthBook
from gateway.pipeline.identity import Identity, SaltSource
from gateway.pipeline.items import EpcInfo, ItemTracker, Placement, SilentAntenna
from gateway.pipeline.rules import PipelineRules
from gateway.pipeline.shoppers import ShopperTracker
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, RfidRead, Skipped
from vitrine.contracts.facts import Fact, ReadsLost, make_event_id
from vitrine.contracts.ids import Epc, GatewayId, Gtin, StoreId
from vitrine.contracts.layout import StoreLayout

__all__ = ["SNAPSHOT_VERSION", "Pipeline", "PipelineStats", "no_epc_info", "sgtin_info"]

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1

#: A sequence number this far *below* the last one means the reader restarted
#: its counter (Zebra ``eventNum`` starts again at boot), not a reordering.
_SEQUENCE_RESET = 1000
#: An antenna :meth:`Pipeline._rfid_run` has not looked up yet in this run.
_UNSEEN: Any = object()


def no_epc_info(epc: Epc) -> tuple[Gtin | None, str | None]:
    return (None, None)


def sgtin_info(epc: Epc) -> tuple[Gtin | None, str | None]:
    """GTIN-14 and serial of an SGTIN-96/198 EPC (GS1 TDS §14.5.1), else ``(None, None)``."""
    info = try_decode_epc(epc)
    if info is None or info.gtin is None:
        return (None, None)
    return (info.gtin, info.serial)


@dataclass(slots=True)
class PipelineStats:
    """Counters the service exports as metrics."""

    rfid_reads: int = 0
    ble_reads: int = 0
    device_events: int = 0
    skipped: int = 0
    #: Reads the layout cannot place (unknown reader/antenna/room, or no RSSI).
    unplaced: dict[str, int] = field(default_factory=dict)

    def unplace(self, why: str) -> None:
        self.unplaced[why] = self.unplaced.get(why, 0) + 1


class Pipeline:
    """Turns adapter outputs into facts for one store."""

    def __init__(
        self,
        layout: StoreLayout,
        gateway_id: str,
        *,
        salt_source: SaltSource,
        app_beacon_uuid: str | None = None,
        rules: PipelineRules | None = None,
        epc_info: EpcInfo = sgtin_info,
    ) -> None:
        self.rules = rules or PipelineRules()
        self.store = StoreId(layout.store.id)
        self.gateway = GatewayId(gateway_id)
        self.health = HealthBook()
        self.stats = PipelineStats()
        self.items = ItemTracker(self.store, self.gateway, self.rules.items, epc_info)
        self.shoppers = ShopperTracker(self.store, self.gateway, self.rules.shoppers)
        self._identity = Identity(app_beacon_uuid, salt_source, self.rules.anonymous_salt_period_s)
        self._now = float("-inf")
        self._sequences: dict[str, int] = {}
        #: reader -> (time, count) of its last overflow, to drop a redelivered copy.
        self._overflows: dict[str, tuple[str, int | None]] = {}
        #: (reader, antenna) the health book shows silent.
        self._silent: set[tuple[str, int]] = set()
        self._place(layout)

    def replace_layout(self, layout: StoreLayout) -> None:
        """Map antennas, readers and scanners to zones from ``layout`` from now on.

        Tracked items, devices, evidence and reader sequences are kept: an item
        in a zone the new layout still has stays there; one in a dropped zone is
        not read there again and departs on its timer. The store cannot change
        (facts, topics and the state file are keyed by it).
        """
        if layout.store.id != self.store:
            raise ValueError(f"a layout for store {layout.store.id}, not {self.store}")
        self._place(layout)

    def _place(self, layout: StoreLayout) -> None:
        """Build the placement maps; each is swapped whole (a read sees one layout)."""
        zones = {z.id: z for z in layout.zones}
        placements = {z.id: Placement(z.id, z.type, None) for z in layout.zones}
        antennas: dict[tuple[str, int], Placement] = {}
        reader_zone: dict[str, Placement | None] = {}
        for reader in layout.readers:
            for ant in reader.antennas:
                antennas[(reader.id, ant.port)] = Placement(
                    ant.zone, zones[ant.zone].type, ant.rack
                )
            # Without an antenna number (Zebra SIMPLE/CUSTOM modes) a read can
            # only be placed when all of the reader's antennas cover one zone.
            covered = {(a.zone, a.rack) for a in reader.antennas}
            zones_covered = {a.zone for a in reader.antennas}
            if len(zones_covered) == 1:
                zone = next(iter(zones_covered))
                rack = next(iter(covered))[1] if len(covered) == 1 else None
                reader_zone[reader.id] = Placement(zone, zones[zone].type, rack)
            else:
                reader_zone[reader.id] = None
        #: ESPresense room (or scanner id) -> (scanner id, placement).
        scanners: dict[str, tuple[str, Placement]] = {}
        for scanner in layout.scanners:
            placement = Placement(scanner.zone, zones[scanner.zone].type, None)
            scanners[scanner.id] = (scanner.id, placement)
        for scanner in layout.scanners:
            placement = Placement(scanner.zone, zones[scanner.zone].type, None)
            scanners[scanner.room] = (scanner.id, placement)
        self._zones, self._antennas = placements, antennas
        self._reader_zone, self._scanners = reader_zone, scanners

    # ------------------------------------------------------------------ input
    def _clock(self, at: datetime | float) -> float:
        t = at if isinstance(at, float | int) else at.timestamp()
        # Never let time run backwards (a wall-clock step): rules assume order.
        self._now = max(self._now, float(t))
        return self._now

    def feed(
        self, output: AdapterOutput, received_at: datetime, *, reader: str | None = None
    ) -> list[Fact]:
        """One adapter output received at ``received_at``; ``reader`` comes from routing."""
        return self._one(output, reader, self._clock(received_at))

    def _one(self, output: AdapterOutput, reader: str | None, t: float) -> list[Fact]:
        if isinstance(output, RfidRead):
            return self._rfid(output, reader or output.reader, t)
        if isinstance(output, BleRead):
            return self._ble(output, reader, t)
        if isinstance(output, DeviceEvent):
            return self._device_event(output, reader or output.device, t)
        if isinstance(output, Skipped):
            self.stats.skipped += 1
        return []

    def feed_many(
        self, outputs: list[AdapterOutput], received_at: datetime, *, reader: str | None = None
    ) -> list[Fact]:
        """One message's outputs, all received at ``received_at``: :meth:`feed` on each in turn.

        The same facts, in the same order, and the same state as that loop
        (``tests/gateway/pipeline/test_feed_many.py`` holds it to this), only
        cheaper: the receive time is read once per message, and a run of
        ``RfidRead``s from a routed reader goes through :meth:`_rfid_run`. A
        Zebra batch is 50 reads of one reader; per read, the clock, the health
        update and the dispatch were ~35 % of the pipeline's time
        (docs/performance.md, "Ingest").
        """
        if not outputs:
            return []  # no clock read either: an empty message moves no time
        t = self._clock(received_at)
        facts: list[Fact] = []
        n = len(outputs)
        i = 0
        while i < n:
            output = outputs[i]
            if reader and type(output) is RfidRead:  # _one's `reader or output.reader`
                j = i + 1
                while j < n and type(outputs[j]) is RfidRead:
                    j += 1
                self._rfid_run(cast("list[RfidRead]", outputs[i:j]), reader, t, facts)
                i = j
            else:
                facts.extend(self._one(output, reader, t))
                i += 1
        return facts

    def tick(self, now: datetime) -> list[Fact]:
        """Timers: departures, dwells, devices that left by timeout."""
        t = self._clock(now)
        facts = [*self.items.tick(t), *self.shoppers.tick(t)]
        silent = self.items.silent_antennas()
        if silent or self._silent:
            self._report_silent(silent)
        return facts

    def _report_silent(self, silent: list[SilentAntenna]) -> None:
        """Health and a log line when an antenna falls silent or reads again."""
        now = {(s.reader, s.antenna): s for s in silent}
        for key, s in now.items():
            if key not in self._silent:
                self.health.antenna_silent(s.reader, s.antenna, True)
                log.warning(
                    "antenna silent: it stopped reading all its tags at once while its "
                    "reader reads on; holding its items' departures (check the antenna cable)",
                    extra={
                        "store": self.store,
                        "reader": s.reader,
                        "antenna": s.antenna,
                        "tags": s.tags,
                        "last_read": datetime.fromtimestamp(s.last_read, UTC).isoformat(),
                    },
                )
        for reader, antenna in self._silent - now.keys():
            self.health.antenna_silent(reader, antenna, False)
            log.info(
                "silent antenna reads again",
                extra={"store": self.store, "reader": reader, "antenna": antenna},
            )
        self._silent = set(now)

    def _rfid(self, read: RfidRead, reader: str | None, t: float) -> list[Fact]:
        self.stats.rfid_reads += 1
        if reader is None:
            self.stats.unplace("no_reader")
            return []
        self.health.read("reader", reader, t)
        facts = self._sequence(reader, read.sequence, t)
        if read.antenna is not None:
            placement = self._antennas.get((reader, read.antenna))
        else:
            placement = self._reader_zone.get(reader)
        if placement is None:
            self.stats.unplace("unknown_antenna" if read.antenna is not None else "no_antenna")
            return facts
        facts.extend(
            self.items.observe(read.epc, placement, reader, read.antenna, read.rssi_dbm, t)
        )
        self.items.antenna_read(reader, read.antenna, t)
        return facts

    def _rfid_run(self, reads: list[RfidRead], reader: str, t: float, facts: list[Fact]) -> None:
        """:meth:`_rfid` on each of ``reads`` (all of ``reader``, received at ``t``).

        Written out rather than calling :meth:`_rfid` per read: one health
        update for the run (``HealthBook.read`` with ``count``: the same totals,
        bucket and last-seen as one call per read at one instant), the
        ``eventNum`` check inline (a gap is rare), placements looked up and
        ``ItemTracker.antenna_read`` called once per antenna. Appends to
        ``facts`` in :meth:`_rfid`'s order.
        """
        self.stats.rfid_reads += len(reads)
        self.health.read("reader", reader, t, count=len(reads))
        sequences = self._sequences
        observe = self.items.observe
        antennas = self._antennas
        #: antenna -> placement for this run (None: the reader's single zone, if any).
        placed: dict[int | None, Placement | None] = {}
        for read in reads:
            seq = read.sequence
            if seq is not None:
                last = sequences.get(reader)
                if last is None or seq > last or last - seq > _SEQUENCE_RESET:
                    sequences[reader] = seq
                if last is not None and seq > last + 1:
                    facts.append(self._gap(reader, last, seq, t))
            antenna = read.antenna
            placement = placed.get(antenna, _UNSEEN)
            if placement is _UNSEEN:  # once per antenna and run
                placement = placed[antenna] = (
                    antennas.get((reader, antenna))
                    if antenna is not None
                    else self._reader_zone.get(reader)
                )
            if placement is None:
                self.stats.unplace("unknown_antenna" if antenna is not None else "no_antenna")
                continue
            found = observe(read.epc, placement, reader, antenna, read.rssi_dbm, t)
            if found:
                facts.extend(found)
        for antenna, placement in placed.items():  # once per antenna, not per read
            if placement is not None:
                self.items.antenna_read(reader, antenna, t)

    def _sequence(self, reader: str, seq: int | None, t: float) -> list[Fact]:
        if seq is None:
            return []
        last = self._sequences.get(reader)
        if last is None or seq > last or last - seq > _SEQUENCE_RESET:
            self._sequences[reader] = seq
        if last is None or seq <= last + 1:
            return []
        return [self._gap(reader, last, seq, t)]

    def _gap(self, reader: str, last: int, seq: int, t: float) -> Fact:
        """``reads_lost`` for the events between ``last`` and ``seq`` that never arrived."""
        gap = seq - last - 1
        self.health.lost(reader, gap)
        return ReadsLost(
            event_id=make_event_id(self.store, "reads_lost", reader, "sequence_gap", last, seq),
            store=self.store,
            gateway=self.gateway,
            occurred_at=datetime.fromtimestamp(t, UTC),
            reader=reader,
            count=gap,
            reason=f"sequence gap: events {last + 1}..{seq - 1} never arrived",
        )

    def _ble(self, read: BleRead, reader: str | None, t: float) -> list[Fact]:
        self.stats.ble_reads += 1
        where = None
        for key in (read.room, read.scanner, reader):
            if key is not None and key in self._scanners:
                where = self._scanners[key]
                break
        if where is None:
            self.stats.unplace("unknown_scanner")
            return []
        scanner, placement = where
        self.health.read("scanner", scanner, t)
        rssi = self.shoppers.rssi_of(read.rssi_dbm, read.distance_m, read.rssi_at_1m)
        if rssi is None:
            self.stats.unplace("no_rssi")
            return []
        identity = self._identity.of(read, t)
        return self.shoppers.observe(identity.device, identity.kind, scanner, placement, rssi, t)

    def _device_event(self, event: DeviceEvent, device: str | None, t: float) -> list[Fact]:
        self.stats.device_events += 1
        if device is None:
            self.stats.unplace("no_device")
            return []
        if device in self._scanners:  # an ESPresense node's status/telemetry
            self.health.event("scanner", self._scanners[device][0], event, t)
            return []
        self.health.event("reader", device, event, t)
        if event.antenna is not None and event.event == "antenna_disconnected":
            self.items.antenna_down(device, event.antenna)
        elif event.antenna is not None and event.event == "antenna_connected":
            self.items.antenna_up(device, event.antenna, t)
        if event.event != "overflow":
            return []
        when = datetime.fromtimestamp(t, UTC)
        key = (when.isoformat(), event.lost)
        if self._overflows.get(device) == key:
            # The same overflow at the same instant is a redelivered copy: its fact
            # (same event_id) has been emitted already.
            return []
        self._overflows[device] = key
        if event.lost is not None:
            self.health.lost(device, event.lost)
        first = event.detail.get("first_at")
        last = event.detail.get("last_at")
        return [
            ReadsLost(
                event_id=make_event_id(
                    self.store, "reads_lost", device, "overflow", when.isoformat(), event.lost
                ),
                store=self.store,
                gateway=self.gateway,
                occurred_at=when,
                reader=device,
                count=event.lost,
                reason="reader overflow: events purged from its buffer",
                first_at=first if isinstance(first, datetime) else None,
                last_at=last if isinstance(last, datetime) else None,
            )
        ]

    # --------------------------------------------------------------- snapshot
    def sequences(self) -> dict[str, int]:
        """Each reader's last sequence number (the cheap part of :meth:`snapshot`)."""
        return dict(self._sequences)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: items in zones, present devices, reader sequences.

        Holds no salt and no raw device address (anonymous devices appear only
        under their salted hash).
        """
        return {
            "version": SNAPSHOT_VERSION,
            "store": self.store,
            "items": self.items.snapshot(),
            "shoppers": self.shoppers.snapshot(),
            "sequences": dict(self._sequences),
        }

    def restore(self, data: dict[str, Any], now: datetime) -> None:
        """Take back a :meth:`snapshot`; known items in known zones will not re-arrive."""
        if data.get("version") != SNAPSHOT_VERSION or data.get("store") != self.store:
            log.warning(
                "ignoring pipeline state of another version or store",
                extra={"store": self.store, "version": data.get("version")},
            )
            return
        t = self._clock(now)
        items = data.get("items")
        shoppers = data.get("shoppers")
        sequences = data.get("sequences")
        n_items = self.items.restore(items, t, self._zones) if isinstance(items, dict) else 0
        n_dev = self.shoppers.restore(shoppers, t, self._zones) if isinstance(shoppers, dict) else 0
        if isinstance(sequences, dict):
            self._sequences.update(
                {str(k): int(v) for k, v in sequences.items() if isinstance(v, int)}
            )
        log.info(
            "pipeline state restored",
            extra={"store": self.store, "items": n_items, "devices": n_dev},
        )

"""Tuning constants of the pipeline, each with the reason for its value.

They are grouped in frozen dataclasses so a test or a site can override one
without touching the rest (``replace(ItemRules(), sales_floor_departure_s=90)``).

The baseline to beat is the EdgeX Foundry retail RFID rules: an item "arrives"
after 2 reads, "moves" when another reader beats the current one by an RSSI
margin, and "departs" after 600 s unseen whatever the zone. One departure delay
for every zone is wrong both ways: a garment carried out of a fitting room is
news within seconds, while a stockroom read on a duty cycle is silent for
minutes without having gone anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitrine.contracts.layout import ZoneType

__all__ = ["ItemRules", "PipelineRules", "ShopperRules"]


def _departures() -> dict[ZoneType, float]:
    return {
        # A garment taken out of a cubicle or off the till pad is the signal the
        # engine waits for ("tried on", "bought"); the antennas there are close
        # and read a present tag several times a second in dense-reader mode, so
        # 10-15 s of silence is already a strong signal while still riding out a
        # tag shielded for a few seconds by a body or a bag.
        ZoneType.FITTING_ROOM: 15.0,
        ZoneType.TILL: 10.0,
        # Entrance/exit portals see items only while they pass: a short stay.
        ZoneType.ENTRANCE: 10.0,
        ZoneType.EXIT: 5.0,
        # Shelf/ceiling readers on the floor read a static tag many times a
        # minute; a minute of silence is 10x quicker than EdgeX's 600 s and still
        # long enough for a shopper holding the item behind them for a while.
        ZoneType.SALES_FLOOR: 60.0,
        # Stockroom readers commonly run inventory sweeps on a duty cycle (to
        # stop interfering with the floor readers); a false "departed" there
        # makes the engine say "not in stock", so be slow: 15 minutes.
        ZoneType.STOCKROOM: 900.0,
    }


@dataclass(frozen=True, slots=True)
class ItemRules:
    """Hysteresis for RFID items (per EPC)."""

    #: Reads of one tag by one antenna closer than this collapse into one read
    #: (the strongest kept): in dense-reader mode a tag is reported several
    #: times per inventory round, and a redelivered MQTT message repeats reads.
    #: Half a second keeps "two reads" meaning "seen on two rounds".
    dedupe_s: float = 0.5
    #: Evidence window: reads older than this no longer count for a zone. 10 s
    #: covers readers with a ``reportFilter`` duration of a few seconds (one
    #: report per tag per period) while letting a moved item's old zone fade.
    window_s: float = 10.0
    #: ... widened, per antenna, to this many times the antenna's observed
    #: interval between two reads of one tag. A Zebra ``reportFilter`` of 10 s
    #: reports a tag exactly every 10 s, and a rate-limited Impinj
    #: (``eventPerSecondLimit``) over a full stockroom every 10-30 s: with a
    #: fixed 10 s window their tags never have two reads in it and never
    #: arrive. 2.5 rounds keeps "two rounds in a row" while tolerating one
    #: missed round (or a jittered batch) between them. An antenna that has not
    #: read any tag twice yet (a fitting room's, a till's) takes its reader's
    #: (the slowest of its antennas'): ``reportFilter`` and
    #: ``eventPerSecondLimit`` are reader settings.
    cadence_windows: float = 2.5
    #: ... but never wider than this: two reads a minute apart are still two
    #: inventory rounds of a duty-cycled stockroom reader; two reads further
    #: apart say little about where the tag is now. Gaps longer than this are
    #: not a reader's pace (the tag was away) and are not learnt.
    max_window_s: float = 60.0
    #: Weight of each new read-to-read interval in an antenna's smoothed
    #: cadence: ~10 intervals (a few seconds of a busy antenna) to adapt, so a
    #: tag re-appearing after an absence (a long gap, once) barely moves it.
    cadence_alpha: float = 0.1
    #: Zones are compared on their reads within this (shorter) window, so a
    #: zone the item has left stops counting after 5 s rather than the full
    #: evidence window: the move shows within ``compare_s + move_sustain_s``.
    compare_s: float = 5.0
    #: Reads in one zone within the window before an item "arrives" (EdgeX
    #: uses 2): one stray read through a wall or from a passing trolley is not
    #: an arrival, two rounds in a row are.
    arrival_min_reads: int = 2
    #: ... except in these zone types, where one read is an arrival. The
    #: stockroom is closed to shoppers and its reader sweeps hundreds of tags
    #: on a duty cycle or under an event-rate limit (Impinj
    #: ``eventPerSecondLimit``): measured on busy-saturday, a third of its tags
    #: wait minutes for a second read, and an item unknown until then is
    #: "not in stock" for the engine. A stray stockroom read of a floor item
    #: cannot pull a placed item there: a move still needs
    #: ``arrival_min_reads`` reads and the margin.
    single_read_arrival: frozenset[ZoneType] = frozenset({ZoneType.STOCKROOM})
    #: A zone change needs the new zone's mean RSSI over the window to beat the
    #: current zone's by this much. Tag RSSI moves ±3-4 dB with orientation and
    #: bodies; 6 dB is twice that, yet smaller than the ~10 dB+ a tag gains by
    #: being in front of an antenna rather than across the room.
    rssi_margin_db: float = 6.0
    #: Without RSSI (Zebra SIMPLE/CUSTOM/CONVEYOR modes send none), the new zone
    #: must have this many times the current zone's read count in the window.
    count_ratio: float = 2.0
    #: The new zone must keep winning for this long before the item "moves":
    #: two to three inventory rounds, so a tag read across zones for a moment
    #: (a shopper walking past with it) does not generate a move and a move back.
    #: Judged on the tick too: with no read since to say otherwise, the move
    #: comes when the time is up, not at the next read (10 s later at a Zebra
    #: ``reportFilter`` of 10 s), dated challenger start + this.
    move_sustain_s: float = 2.0
    #: Departure delay per zone type (seconds unseen in that zone).
    departure_s: dict[ZoneType, float] = field(default_factory=_departures)
    #: A silent antenna (docs/gateway.md, "A silent antenna is not an empty
    #: rack"): one that reads nothing at all for this many of its read rounds
    #: (its learnt cadence; ``window_s`` until learnt), bounded to
    #: [``window_s``, ``max_window_s``], while another antenna of its reader
    #: reads on. Three rounds: one missed round is common (a body in front of
    #: the rack, a late batch), three in a row of *every* tag is not; a 10 s
    #: Zebra ``reportFilter`` gives 30 s, inside the sales floor's 60 s.
    silent_rounds: float = 3.0
    #: ... having read at least this many tags in its last round. Shoppers pick
    #: garments one to a few at a time and staff move a few per trip (a fitting
    #: room takes about five), so five or more tags quiet in one round, with not
    #: one left read, is a fault, not a sale. An antenna over fewer tags is not
    #: judged: it may have been emptied.
    silent_min_tags: int = 5
    #: ... in these zone types only: racks and shelves, where goods are stocked
    #: and taken one by one. Fitting rooms, tills and portals see tags leave
    #: together (a shopper's armful, a paid basket) by design.
    silent_antenna_zones: frozenset[ZoneType] = frozenset(
        {ZoneType.SALES_FLOOR, ZoneType.STOCKROOM}
    )
    #: A silent antenna holds its items' departures for at most this long after
    #: its last read: EdgeX's ``DepartedThresholdSeconds``, the industry default
    #: for "unseen means gone", so an inference never keeps an item longer than
    #: that baseline keeps every item (a rack that really was emptied at once,
    #: a rare sweep, is not "in stock" forever). The health report keeps showing
    #: the antenna silent until it reads again.
    silent_hold_max_s: float = 600.0

    def arrival_reads_for(self, zone_type: ZoneType) -> int:
        return 1 if zone_type in self.single_read_arrival else self.arrival_min_reads

    def departure_for(self, zone_type: ZoneType) -> float:
        return self.departure_s.get(zone_type, 60.0)


@dataclass(frozen=True, slots=True)
class ShopperRules:
    """Smoothing and hysteresis for shopper devices seen by BLE scanners."""

    #: Time constant of the per-scanner exponential moving average of RSSI.
    #: Phones advertise ~1/s per scanner (QUALITY.md); with tau = 1 s one new
    #: report carries 63 % of the weight (alpha = 1 - e^-1), which still cuts
    #: σ 3-6 dB noise by ~1.4x while a real 20-30 dB swing shows in one or two
    #: reports. 1.5 s lagged every zone change by about a report: on
    #: busy-saturday (seeds 1-2) 1 s placed shoppers right 0.4-1 % more often.
    ema_tau_s: float = 1.0
    #: A scanner silent this long no longer counts (the phone left its range).
    scanner_stale_s: float = 5.0
    #: The strongest zone must beat the current one by this margin (dB) to take
    #: over. With σ 6 dB noise the smoothed difference of two scanners has σ of
    #: ~6 dB, so the margin alone does not stop flapping: it is the margin *and*
    #: the sustain below (two reports in a row) *and* the minimum stay. 8 dB
    #: (the first choice) delayed every real move by a report or two, and
    #: shoppers walk through zones in tens of seconds: on busy-saturday seeds 1-2
    #: 6 dB with a 2 s stay placed them right 1-2 % more often, and 20 minutes
    #: 10 dB nearer one scanner at σ 6 dB still made no spurious switch (tests).
    margin_db: float = 6.0
    #: ... and keep winning for this long: one more report, which turns the
    #: rare single noisy excursion into a joint event (probability squared).
    switch_sustain_s: float = 0.9
    #: After a switch, stay at least this long: bounds flapping at the border
    #: of two zones to one change per 2 s even in the worst case (two reports).
    min_stay_s: float = 2.0
    #: Reports within ``enter_window_s`` before a device "enters": a phone
    #: walking past the shop window is caught once or twice by the entrance
    #: scanner; a shopper coming in is reported continuously.
    enter_min_reports: int = 3
    enter_window_s: float = 10.0
    #: ... spread over at least this long, so each scanner's average holds two
    #: or three reports before the first zone is chosen (a zone picked from one
    #: noisy report per scanner is wrong often enough to need a correction).
    enter_settle_s: float = 2.0
    #: No report from any scanner for this long: the device "left". A phone in
    #: a pocket behind a body drops out for tens of seconds; the exit zone is
    #: the fast path, this is the safety net.
    left_timeout_s: float = 60.0
    #: Placed in the exit zone for this long: the device "left". Not at once:
    #: a shopper walking between two floor areas along the front of the store
    #: passes the exit scanner and is placed there for 3-6 s (the minimum stay
    #: plus the margin to switch back; busy-saturday, seeds 1-3), and an
    #: immediate leave made that a ``shopper_left`` + ``shopper_entered`` pair,
    #: i.e. a second staff alert for one visit. One leaving is through the
    #: door and out of range within seconds; 8 s still closes the visit
    #: 50 s sooner than the silence timeout.
    exit_confirm_s: float = 8.0
    #: A stay this long in one zone is a "dwell" (once per stay): walking
    #: through a zone takes < 10 s, stopping at a rack to look takes longer.
    dwell_s: float = 20.0
    #: Path-loss exponent and reference power used to turn a distance-only
    #: report into a pseudo-RSSI (ESPresense v4 default absorption 2.7 and
    #: Tx reference -59 dBm, WIRE-FORMATS.md §5).
    path_loss_n: float = 2.7
    ref_rssi_1m_dbm: float = -59.0


@dataclass(frozen=True, slots=True)
class PipelineRules:
    items: ItemRules = field(default_factory=ItemRules)
    shoppers: ShopperRules = field(default_factory=ShopperRules)
    #: How often anonymous device hashes change their salt (daily: footfall
    #: within a day counts a device once; nothing links days).
    anonymous_salt_period_s: int = 86_400

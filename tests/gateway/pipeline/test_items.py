"""Items: arrival, moves with a margin, departures per zone type, restarts."""

from __future__ import annotations

import random

from gateway.pipeline import Pipeline
from gateway.reads import DeviceEvent, RfidRead
from tests.gateway.pipeline.conftest import at, make_pipeline
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemDeparted,
    ItemMoved,
    ReadsLost,
    dump_fact,
    parse_fact,
)
from vitrine.contracts.ids import Epc

#: TDS Annex E.3 worked example: GTIN-14 80614141123458, serial 6789.
SGTIN = Epc("3074257BF7194E4000001A85")
OPAQUE = Epc("E28011002000564500000002")


def read(
    epc: Epc = SGTIN, antenna: int | None = 1, rssi: float | None = -50.0, seq: int | None = None
) -> RfidRead:
    return RfidRead(
        epc=epc, antenna=antenna, rssi_dbm=rssi, timestamp=None, reader=None, sequence=seq
    )


def feed(p: Pipeline, t: float, r: RfidRead, reader: str = "fx1") -> list[Fact]:
    return p.feed(r, at(t), reader=reader)


def kinds(facts: list[Fact]) -> list[str]:
    return [f.kind for f in facts]


def test_one_read_is_not_an_arrival_two_rounds_are(pipeline: Pipeline) -> None:
    assert feed(pipeline, 0, read()) == []
    facts = feed(pipeline, 1, read())
    assert kinds(facts) == ["item_arrived"]
    fact = facts[0]
    assert isinstance(fact, ItemArrived)
    assert (fact.zone, fact.rack, fact.reader, fact.antenna) == ("floor", "rack-a", "fx1", 1)
    assert (fact.gtin, fact.serial) == ("80614141123458", "6789")
    assert fact.occurred_at == at(1)
    assert parse_fact(dump_fact(fact)) == fact


def test_reads_within_the_dedupe_window_count_once(pipeline: Pipeline) -> None:
    assert feed(pipeline, 0.0, read()) == []
    assert feed(pipeline, 0.1, read()) == []
    assert feed(pipeline, 0.2, read()) == []
    assert kinds(feed(pipeline, 0.6, read())) == ["item_arrived"]


def test_a_repeat_inside_the_dedupe_window_still_keeps_the_item_in_its_zone() -> None:
    """A collapsed repeat only refreshes "last seen": the departure runs from it."""
    pipeline = make_pipeline()
    feed(pipeline, 0, read(antenna=2))
    assert kinds(feed(pipeline, 1, read(antenna=2))) == ["item_arrived"]
    assert feed(pipeline, 1.3, read(antenna=2)) == []  # 0.3 s after the kept read: a repeat
    facts = [f for s in range(2, 30) for f in pipeline.tick(at(s))]
    assert kinds(facts) == ["item_departed"]
    assert facts[0].occurred_at == at(1.3 + 15)  # fitting room: 15 s after the repeat


def test_opaque_epcs_arrive_without_gtin(pipeline: Pipeline) -> None:
    feed(pipeline, 0, read(OPAQUE))
    (fact,) = feed(pipeline, 1, read(OPAQUE))
    assert isinstance(fact, ItemArrived)
    assert fact.epc == OPAQUE and fact.gtin is None and fact.serial is None


def test_a_move_needs_the_rssi_margin_sustained(pipeline: Pipeline) -> None:
    feed(pipeline, 0, read(rssi=-55))
    feed(pipeline, 1, read(rssi=-55))
    # Read from the fitting room too, but only 3 dB stronger: no move, however long.
    for t in range(2, 30):
        assert feed(pipeline, t, read(rssi=-55)) == []
        assert feed(pipeline, t + 0.5, read(antenna=2, rssi=-52)) == []
    # Now the fitting-room antenna is 15 dB stronger: a move after the sustain time.
    moves: list[tuple[float, Fact]] = []
    for t in range(30, 40):
        for f in feed(pipeline, t, read(rssi=-65)) + feed(
            pipeline, t + 0.5, read(antenna=2, rssi=-50)
        ):
            moves.append((t, f))
    assert [f.kind for _, f in moves] == ["item_moved"]
    t_move, fact = moves[0]
    assert isinstance(fact, ItemMoved)
    assert (fact.from_zone, fact.zone) == ("floor", "fitting")
    assert t_move <= 33  # margin beaten at once, sustained 2 s


def test_an_item_carried_away_moves_once_its_old_zone_falls_silent(pipeline: Pipeline) -> None:
    feed(pipeline, 0, read(rssi=-50))
    feed(pipeline, 1, read(rssi=-50))
    facts: list[Fact] = []
    for t in range(2, 12):  # now only the till reads it, weaker than the floor did
        facts += feed(pipeline, t, read(antenna=3, rssi=-70))
    assert kinds(facts) == ["item_moved"]
    assert isinstance(facts[0], ItemMoved) and facts[0].zone == "till"


def test_no_move_on_rssi_noise_between_neighbouring_antennas() -> None:
    rng = random.Random(7)
    pipeline = make_pipeline()
    facts: list[Fact] = []
    for i in range(1200):  # 10 minutes at 2 reads/s per antenna, σ 4 dB
        t = i * 0.5
        facts += feed(pipeline, t, read(rssi=rng.gauss(-55, 4)))
        facts += feed(pipeline, t + 0.25, read(antenna=2, rssi=rng.gauss(-62, 4)))
    assert kinds(facts) == ["item_arrived"]


def test_simple_mode_reads_without_rssi_or_antenna() -> None:
    pipeline = make_pipeline()
    # simple1 has one antenna, in the stockroom: reads without antenna place there
    # (and one read is a stockroom arrival).
    (fact,) = feed(pipeline, 0, read(antenna=None, rssi=None), reader="simple1")
    assert isinstance(fact, ItemArrived) and fact.zone == "stock" and fact.rssi_dbm is None
    # fx1 covers several zones: an antenna-less read from it cannot be placed.
    assert feed(pipeline, 2, read(antenna=None, rssi=None)) == []
    assert pipeline.stats.unplaced == {"no_antenna": 1}


def test_a_move_by_read_count_when_rssi_is_absent(pipeline: Pipeline) -> None:
    feed(pipeline, 0, read(antenna=4, rssi=None))
    feed(pipeline, 1, read(antenna=4, rssi=None))
    facts: list[Fact] = []
    for t in range(2, 10):  # read twice as often on the floor, once in the stockroom
        facts += feed(pipeline, t, read(antenna=1, rssi=None))
        facts += feed(pipeline, t + 0.5, read(antenna=1, rssi=None))
        if t < 4:
            facts += feed(pipeline, t + 0.7, read(antenna=4, rssi=None))
    assert kinds(facts) == ["item_moved"]


def test_a_reader_reporting_every_10_s_still_gets_its_tags_to_arrive(pipeline: Pipeline) -> None:
    # Zebra reportFilter.duration 10 s: each tag is reported once per 10 s, and a
    # batched message can land a little late. The antenna's cadence (learnt from
    # other tags) widens the evidence window, so the second report arrives it.
    others = [Epc(f"E2801100200056450000{i:04X}") for i in range(8)]
    for round_ in range(6):
        for i, epc in enumerate(others):
            feed(pipeline, round_ * 10.4 + i * 0.01, read(epc))
    assert feed(pipeline, 100.0, read()) == []
    assert kinds(feed(pipeline, 111.0, read())) == ["item_arrived"]


def test_without_a_learnt_cadence_two_reads_must_fall_in_the_10_s_window(
    pipeline: Pipeline,
) -> None:
    assert feed(pipeline, 0, read()) == []
    assert feed(pipeline, 10.5, read()) == []  # the first has expired: still one read
    assert kinds(feed(pipeline, 12, read())) == ["item_arrived"]


def test_one_stockroom_read_is_an_arrival_but_does_not_pull_a_floor_item(
    pipeline: Pipeline,
) -> None:
    (fact,) = feed(pipeline, 0, read(OPAQUE, antenna=4))
    assert isinstance(fact, ItemArrived) and fact.zone == "stock"
    # A floor item read once by the stockroom antenna, even strongly, stays on the floor.
    feed(pipeline, 0, read(antenna=1, rssi=-60))
    feed(pipeline, 1, read(antenna=1, rssi=-60))
    facts = feed(pipeline, 3, read(antenna=4, rssi=-40))
    facts += feed(pipeline, 6, read(antenna=1, rssi=-60))
    assert facts == [] and pipeline.items.zone_of(SGTIN) == "floor"


def _departure_after(antenna: int) -> float:
    pipeline = make_pipeline()
    feed(pipeline, 0, read(antenna=antenna))
    feed(pipeline, 1, read(antenna=antenna))
    for second in range(2, 2000):
        facts = pipeline.tick(at(second))
        if facts:
            (fact,) = facts
            assert isinstance(fact, ItemDeparted)
            return (fact.occurred_at - at(1)).total_seconds()
    raise AssertionError("never departed")


def test_departure_delays_follow_the_zone_type() -> None:
    fitting, till, floor, stock = (_departure_after(a) for a in (2, 3, 1, 4))
    assert till == 10 and fitting == 15 and floor == 60 and stock == 900
    assert till < fitting < floor < 600 < stock  # EdgeX departs everything at 600 s


def test_departure_is_deterministic_whatever_the_tick_phase() -> None:
    ids = set()
    for phase in (0.0, 0.3, 0.9):
        pipeline = make_pipeline()
        feed(pipeline, 0, read(antenna=2))
        feed(pipeline, 1, read(antenna=2))
        facts = [f for s in range(2, 30) for f in pipeline.tick(at(s + phase))]
        assert kinds(facts) == ["item_departed"]
        ids.add(facts[0].event_id)
    assert len(ids) == 1


def test_restore_from_snapshot_emits_no_arrivals_and_no_departure_storm() -> None:
    import orjson

    before = make_pipeline()
    for epc_n in range(20):
        epc = Epc(f"E2000000000000000000{epc_n:04X}")
        feed(before, 0, read(epc))
        feed(before, 1, read(epc))
    state = orjson.loads(orjson.dumps(before.snapshot()))  # through JSON, as on disk
    after = make_pipeline()
    after.restore(state, at(3600))  # back an hour later
    facts: list[Fact] = []
    for epc_n in range(20):
        epc = Epc(f"E2000000000000000000{epc_n:04X}")
        facts += feed(after, 3601, read(epc)) + feed(after, 3602, read(epc))
    facts += after.tick(at(3610))
    assert facts == []
    # ... and items that are really gone still depart, counted from the restart.
    (fact, *_) = after.tick(at(3602 + 60))
    assert isinstance(fact, ItemDeparted)


def test_zebra_eventnum_gaps_become_reads_lost(pipeline: Pipeline) -> None:
    assert feed(pipeline, 0, read(seq=100)) == []
    assert feed(pipeline, 1, read(seq=101)) != []  # the arrival
    facts = feed(pipeline, 2, read(seq=110))
    (lost,) = [f for f in facts if isinstance(f, ReadsLost)]
    assert (lost.reader, lost.count) == ("fx1", 8)
    assert feed(pipeline, 3, read(seq=110)) == []  # a redelivery is not a gap
    assert feed(pipeline, 4, read(seq=3)) == []  # the reader rebooted: counter reset
    assert feed(pipeline, 5, read(seq=4)) == []


def test_overflow_events_report_the_loss_and_antennas_feed_health(pipeline: Pipeline) -> None:
    (lost,) = pipeline.feed(
        DeviceEvent(device=None, event="overflow", timestamp=None, lost=42), at(0), reader="fx1"
    )
    assert isinstance(lost, ReadsLost) and lost.count == 42 and lost.reader == "fx1"
    pipeline.feed(
        DeviceEvent(device="fx1", event="antenna_disconnected", timestamp=None, antenna=3), at(1)
    )
    pipeline.feed(DeviceEvent(device="fx1", event="heartbeat", timestamp=None), at(2))
    health = pipeline.health.device("reader", "fx1")
    assert health is not None
    report = health.report(2)
    assert report["disconnected_antennas"] == [3]
    assert report["overflows"] == 1 and report["lost_reads"] == 42
    assert report["last_heartbeat"] == at(2).isoformat()


def test_a_dead_antenna_holds_its_items_and_restarts_their_clock_when_back() -> None:
    """Fitting-room items (15 s departure) on an antenna the reader reports
    disconnected stay put; once it is back, unseen items depart 15 s later."""
    pipeline = make_pipeline()
    other = Epc("E28011002000564500000099")
    for t in (0, 1):
        feed(pipeline, t, read(antenna=2))
        feed(pipeline, t, read(other, antenna=3))
    pipeline.feed(
        DeviceEvent(device="fx1", event="antenna_disconnected", timestamp=None, antenna=2), at(5)
    )
    facts = [f for s in range(2, 300) for f in pipeline.tick(at(s))]
    # The till's item (antenna 3, alive) departs as usual; the fitting room's stays.
    assert [(f.kind, f.epc) for f in facts if isinstance(f, ItemDeparted)] == [
        ("item_departed", other)
    ]
    pipeline.feed(
        DeviceEvent(device="fx1", event="antenna_connected", timestamp=None, antenna=2), at(300)
    )
    assert [f for s in range(300, 315) for f in pipeline.tick(at(s))] == []
    (gone,) = pipeline.tick(at(315))
    assert isinstance(gone, ItemDeparted) and gone.epc == SGTIN
    assert gone.occurred_at == at(315)


def _zebra_rounds(pipeline: Pipeline, until: float, antenna: int = 1) -> None:
    """Eight other tags reported every 10 s (a Zebra ``reportFilter`` of 10 s) up to ``until``."""
    others = [Epc(f"E2801100200056450000{i:04X}") for i in range(8)]
    for round_ in range(int(until // 10)):
        for i, epc in enumerate(others):
            feed(pipeline, round_ * 10 + i * 0.01, read(epc, antenna=antenna))


def test_an_antenna_with_no_learnt_cadence_yet_borrows_its_readers() -> None:
    """A tag first seen by the till antenna of a reader that reports every 10 s:
    its second report, 10.4 s later, still finds the first in the window."""
    pipeline = make_pipeline()
    _zebra_rounds(pipeline, 60)  # the reader's pace, learnt on antenna 1 only
    assert feed(pipeline, 100.0, read(antenna=3)) == []
    assert kinds(feed(pipeline, 110.4, read(antenna=3))) == ["item_arrived"]


def test_a_sustained_challenger_moves_when_its_sustain_is_over_not_at_its_next_read() -> None:
    """At 10 s between reports, the move comes at the tick 2 s after the
    challenger started winning, the same whatever the tick's phase."""
    others = [Epc(f"E2801100200056450000{i:04X}") for i in range(8)]
    for phase in (0.0, 0.4, 0.9):
        pipeline = make_pipeline()
        facts: list[Fact] = []
        for t in range(0, 60, 10):  # a Zebra reportFilter of 10 s
            for i, epc in enumerate(others):
                feed(pipeline, t + i * 0.01, read(epc))
            # On the floor rack, then carried into the fitting room at 30 s.
            facts += feed(pipeline, t + 0.5, read(antenna=1 if t < 30 else 2, rssi=-45))
            facts += [f for s in range(t + 1, t + 10) for f in pipeline.tick(at(s + phase))]
        moves = [f for f in facts if isinstance(f, ItemMoved)]
        assert [(f.from_zone, f.zone) for f in moves] == [("floor", "fitting")]
        assert moves[0].occurred_at == at(42.5)  # 2 s after the 2nd fitting read, not at 50.5

"""A silent antenna: a reader that says nothing of a failed antenna (Zebra) is
caught by what it stops sending, and its items do not depart while it is silent."""

from __future__ import annotations

import orjson
import pytest

from gateway.pipeline import Pipeline
from gateway.reads import RfidRead
from tests.gateway.pipeline.conftest import at, make_pipeline
from vitrine.contracts.facts import Fact, ItemDeparted
from vitrine.contracts.ids import Epc

#: Tags on fx1's antenna 1 (the sales floor's rack) and antenna 4 (the stockroom).
RACK = [Epc(f"E280110020005645000001{i:02X}") for i in range(8)]
SHELF = [Epc(f"E280110020005645000002{i:02X}") for i in range(8)]
#: A read round every 5 s (a Zebra ``reportFilter`` of 5 s): silent after 3 rounds, 15 s.
ROUND_S = 5


def read(epc: Epc, antenna: int) -> RfidRead:
    return RfidRead(
        epc=epc, antenna=antenna, rssi_dbm=-50.0, timestamp=None, reader=None, sequence=None
    )


def run(
    p: Pipeline,
    start: float,
    end: float,
    tags: dict[int, list[Epc]],
    reader: str = "fx1",
    batched: bool = False,
) -> list[Fact]:
    """Read rounds of ``tags`` (antenna -> tags) from ``start`` to ``end``, a tick a second;
    ``batched``: each round in one message (a Zebra batch, ``Pipeline.feed_many``)."""
    facts: list[Fact] = []
    for second in range(int(start), int(end)):
        if (second - int(start)) % ROUND_S == 0:
            if batched:
                batch = [read(epc, antenna) for antenna, epcs in tags.items() for epc in epcs]
                facts += p.feed_many(list(batch), at(second), reader=reader)
            else:
                for antenna, epcs in tags.items():
                    for i, epc in enumerate(epcs):
                        facts += p.feed(read(epc, antenna), at(second + i * 0.01), reader=reader)
        facts += p.tick(at(second + 0.5))
    return facts


def departed(facts: list[Fact]) -> list[tuple[Epc, float]]:
    """(epc, second it departed), to the second (a round's reads are 10 ms apart)."""
    return [
        (f.epc, round((f.occurred_at - at(0)).total_seconds()))
        for f in facts
        if isinstance(f, ItemDeparted)
    ]


def silent(p: Pipeline, reader: str = "fx1") -> list[int]:
    health = p.health.device("reader", reader)
    assert health is not None
    antennas: list[int] = health.report(0)["silent_antennas"]
    return antennas


@pytest.mark.parametrize("batched", [False, True], ids=["read by read", "batches"])
def test_an_antenna_that_stops_reading_every_tag_while_its_siblings_read_holds_them(
    batched: bool,
) -> None:
    p = make_pipeline()
    run(p, 0, 60, {1: RACK, 4: SHELF}, batched=batched)
    assert all(p.items.zone_of(e) == "floor" for e in RACK)
    # Antenna 1's cable fails at 60 s; the reader says nothing and reads on with antenna 4.
    facts = run(p, 60, 400, {4: SHELF}, batched=batched)
    assert departed(facts) == []  # without the inference: all 8 at 115 s (last read + 60 s)
    assert all(p.items.zone_of(e) == "floor" for e in RACK)
    assert silent(p) == [1]
    (hold,) = p.items.silent_antennas()
    assert (hold.reader, hold.antenna, hold.tags) == ("fx1", 1, len(RACK))
    # Fixed at 400 s: it reads five of them again; the three not read depart a
    # sales floor's 60 s after it came back, not at once.
    facts = run(p, 400, 500, {1: RACK[:5], 4: SHELF}, batched=batched)
    assert sorted(departed(facts)) == sorted((e, 460.0) for e in RACK[5:])
    assert silent(p) == []


def test_a_rack_emptied_one_garment_at_a_time_departs_as_usual() -> None:
    p = make_pipeline()
    run(p, 0, 60, {1: RACK, 4: SHELF})
    facts: list[Fact] = []
    for k in range(1, len(RACK) + 1):  # one garment taken every 10 s (every 2 rounds)
        start = 60 + (k - 1) * 10
        facts += run(p, start, start + 10, {1: RACK[k:], 4: SHELF})
    # When the rack is empty, six of them are still within their 60 s: they fell
    # quiet one by one, not in one round, so they depart on time.
    facts += run(p, 140, 400, {4: SHELF})
    assert len(departed(facts)) == len(RACK)
    assert silent(p) == []


def test_a_few_tags_falling_quiet_at_once_is_a_sale_not_a_fault() -> None:
    p = make_pipeline()
    few = RACK[:4]  # under silent_min_tags (5): a shopper's armful, the rack then empty
    run(p, 0, 60, {1: few, 4: SHELF})
    facts = run(p, 60, 200, {4: SHELF})
    assert sorted(departed(facts)) == sorted((e, 115.0) for e in few)
    assert silent(p) == []


def test_fitting_room_tags_leave_together_and_depart() -> None:
    p = make_pipeline()
    run(p, 0, 60, {2: RACK, 4: SHELF})  # antenna 2 covers the fitting room
    facts = run(p, 60, 200, {4: SHELF})
    assert sorted(departed(facts)) == sorted((e, 70.0) for e in RACK)  # 55 s + 15 s
    assert silent(p) == []


def test_a_whole_reader_going_quiet_is_not_an_antenna_fault() -> None:
    p = make_pipeline()
    run(p, 0, 60, {1: RACK, 4: SHELF})
    facts = run(p, 60, 200, {})  # nothing from fx1 at all (off, unplugged)
    assert sorted(departed(facts)) == sorted((e, 115.0) for e in RACK)
    assert silent(p) == []


def test_a_reader_reboot_is_not_an_antenna_fault() -> None:
    p = make_pipeline()
    run(p, 0, 60, {1: RACK, 4: SHELF})
    run(p, 60, 90, {})  # rebooting for 30 s
    # Back: antenna 4 reads first, antenna 1 a round later.
    run(p, 90, 92, {4: SHELF})
    # Antenna 1 was quiet for 35 s but so was its whole reader: not judged yet.
    assert p.items.silent_antennas() == []
    facts = run(p, 92, 200, {1: RACK, 4: SHELF})
    assert departed(facts) == [] and silent(p) == []
    assert p.items.silent_antennas() == []


def test_a_silent_antenna_holds_its_items_for_at_most_silent_hold_max_s() -> None:
    p = make_pipeline()
    run(p, 0, 60, {1: RACK, 4: SHELF})
    facts = run(p, 60, 700, {4: SHELF})
    assert sorted(departed(facts)) == sorted((e, 655.0) for e in RACK)  # last read 55 + 600
    assert silent(p) == [1]  # the health report still shows it


def test_after_a_restart_an_antenna_still_silent_is_found() -> None:
    before = make_pipeline()
    run(before, 0, 60, {1: RACK, 4: SHELF})
    state = orjson.loads(orjson.dumps(before.snapshot()))
    after = make_pipeline()
    after.restore(state, at(100))
    facts = run(after, 100, 400, {4: SHELF})  # antenna 1 died while the gateway was down
    assert departed(facts) == []
    assert silent(after) == [1]

"""``Pipeline.feed_many`` (one clock read per message, a fast loop for a run of RFID reads)
is :meth:`Pipeline.feed` on each output in turn: same facts, same order, same state."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline import Pipeline
from gateway.reads import AdapterOutput, RfidRead
from tests.gateway.pipeline.conftest import at, make_pipeline
from tests.gateway.pipeline.test_properties import EPCS, ble, event, output, rssi
from vitrine.contracts.facts import Fact, dump_fact

#: Reads a Zebra batch would carry: a few tags, sequence numbers that climb by
#: one, jump (a gap), repeat (a redelivery) or fall 1000+ (a reader reboot).
rfid = st.builds(
    RfidRead,
    epc=st.sampled_from(EPCS),
    antenna=st.one_of(st.none(), st.integers(0, 5)),
    rssi_dbm=rssi,
    timestamp=st.none(),
    reader=st.sampled_from([None, "fx1", "simple1", "unknown"]),
    sequence=st.one_of(st.none(), st.integers(0, 12), st.integers(1500, 1503)),
)
message = st.tuples(
    st.floats(-1, 30),  # seconds since the previous message (< 0: the wall clock stepped back)
    st.sampled_from(["fx1", "simple1", "unknown", "", None]),
    st.lists(st.one_of(rfid, rfid, rfid, output, ble, event), max_size=12),
    st.booleans(),  # a tick after it
)


def _state(pipeline: Pipeline, t: float) -> dict[str, Any]:
    """Everything a later input or the service can see, JSON-normalised where it can be."""
    return {
        "snapshot": orjson.loads(orjson.dumps(pipeline.snapshot())),
        "stats": repr(pipeline.stats),
        "health": orjson.loads(orjson.dumps(pipeline.health.reports(t))),
        # The evidence and de-duplication memory, which the snapshot leaves out on purpose.
        "items": repr(pipeline.items._items),
        "cadence": repr(pipeline.items._cadence),
        "now": pipeline._now,
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message, max_size=30))
def test_feed_many_is_feed_on_each_output(
    messages: list[tuple[float, str | None, list[AdapterOutput], bool]],
) -> None:
    many, one = make_pipeline(), make_pipeline()
    facts_many: list[Fact] = []
    facts_one: list[Fact] = []
    t = 0.0
    for gap, reader, outputs, tick in messages:
        t += gap
        facts_many += many.feed_many(outputs, at(t), reader=reader)
        for out in outputs:
            facts_one += one.feed(out, at(t), reader=reader)
        if tick:
            facts_many += many.tick(at(t + 0.5))
            facts_one += one.tick(at(t + 0.5))
        assert _state(many, t) == _state(one, t)
    facts_many += many.tick(at(t + 3600))
    facts_one += one.tick(at(t + 3600))
    assert [dump_fact(f) for f in facts_many] == [dump_fact(f) for f in facts_one]
    assert _state(many, t + 3600) == _state(one, t + 3600)


def test_a_batch_of_one_readers_reads_takes_the_fast_loop_and_reports_its_gap() -> None:
    """The shape the bench and a Zebra reader send: it must not fall back to :meth:`feed`."""
    pipeline = make_pipeline()
    calls: list[int] = []
    run = pipeline._rfid_run

    def counting(reads: list[RfidRead], reader: str, t: float, facts: list[Fact]) -> None:
        calls.append(len(reads))
        run(reads, reader, t, facts)

    pipeline._rfid_run = counting  # type: ignore[method-assign]
    batch: list[AdapterOutput] = [
        RfidRead(EPCS[i % 2], 1, -50.0, None, None, sequence=s) for i, s in enumerate((1, 2, 5))
    ]
    facts = pipeline.feed_many(batch, at(0), reader="fx1")
    assert calls == [3]
    assert [f.kind for f in facts] == ["reads_lost"]
    assert facts[0].model_dump()["count"] == 2
    health = pipeline.health.device("reader", "fx1")
    assert health is not None and health.total_reads == 3

"""The checkpoint journal's replay: a snapshot plus the facts since equals the later snapshot."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline import fold_facts
from gateway.reads import AdapterOutput
from tests.gateway.pipeline.conftest import at, make_pipeline
from tests.gateway.pipeline.test_properties import step
from vitrine.contracts.facts import Fact, dump_fact


def _view(snapshot: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a restore takes from a snapshot besides clocks (rebuilt from ``occurred_at``,
    which JSON keeps to the microsecond) and fields later reads refresh."""
    items = {epc: v["zone"] for epc, v in snapshot["items"].items()}
    shoppers = {d: (v["kind"], v["zone"], v["dwelled"]) for d, v in snapshot["shoppers"].items()}
    return items, shoppers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40), st.lists(step, max_size=40), st.booleans())
def test_a_snapshot_folded_with_the_facts_since_is_the_later_snapshot(
    before: list[tuple[float, str | None, AdapterOutput | None]],
    after: list[tuple[float, str | None, AdapterOutput | None]],
    replay_twice: bool,
) -> None:
    pipeline = make_pipeline()
    t = 0.0

    def run(steps: list[tuple[float, str | None, AdapterOutput | None]]) -> list[Fact]:
        nonlocal t
        facts: list[Fact] = []
        for gap, reader, out in steps:
            t += gap
            if out is None:
                facts += pipeline.tick(at(t))
            else:
                facts += pipeline.feed(out, at(t), reader=reader)
        return facts

    run(before)
    base = orjson.loads(orjson.dumps(pipeline.snapshot()))
    facts = run(after) + pipeline.tick(at(t + 30))
    journal = [orjson.loads(dump_fact(f)) for f in facts]
    fold_facts(base, journal)
    if replay_twice:  # a crash between the snapshot's rename and the journal's truncation
        fold_facts(base, journal)
    assert _view(base) == _view(orjson.loads(orjson.dumps(pipeline.snapshot())))

"""Smoke test of the bench machinery on tiny sizes: it runs, and what it writes is complete.

Never asserts a performance figure (QUALITY.md: numbers on a shared machine move).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.accuracy import run_accuracy
from bench.baselines import EdgexRules, StrongestWins
from bench.runner import Sizes, _aims, render_markdown, run_bench
from bench.stats import percentile
from bench.workload import marker_seq


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0


def test_marker_sequence_read_back_from_a_reads_lost_reason() -> None:
    assert marker_seq("sequence gap: events 3..4 never arrived") == 5
    assert marker_seq("reader overflow") is None


def test_baselines_follow_their_rules() -> None:
    strongest, edgex = StrongestWins(), EdgexRules()
    for m in (strongest, edgex):
        m.rfid("E1", "floor", -60.0, 0.0)
    assert strongest.item_zone("E1") == "floor"  # first read wins
    assert edgex.item_zone("E1") is None  # EdgeX waits for a second read
    for m in (strongest, edgex):
        m.rfid("E1", "floor", -60.0, 1.0)
        m.rfid("E1", "till", -57.0, 2.0)  # 3 dB stronger: under EdgeX's 6 dB threshold
    assert strongest.item_zone("E1") == "till"
    assert edgex.item_zone("E1") == "floor"
    edgex.tick(2.0 + 601)
    assert edgex.item_zone("E1") is None  # departed after 600 s


def test_accuracy_attributes_every_report_and_scores_all_three_methods() -> None:
    result = run_accuracy("viewed-online", seed=3, duration_s=90.0)
    assert result.unattributed_ble == 0
    assert set(result.methods) == {"vitrine", "strongest_wins", "edgex_rules"}
    for figures in result.methods.values():
        assert figures["shopper_zone"] is not None
        assert 0.0 <= figures["item_zone"] <= 1.0


def test_the_warm_figures_come_from_a_second_copy_and_leave_the_cold_ones_alone() -> None:
    cold = run_accuracy("busy-saturday", seed=3, duration_s=60.0, warmup_s=0)
    warm = run_accuracy("busy-saturday", seed=3, duration_s=60.0, warmup_s=60.0)
    for name, figures in warm.methods.items():
        assert cold.methods[name]["item_zone_warm"] is None
        assert 0.0 <= figures["item_zone_warm"] <= 1.0
        # The warm-up feeds only the copies: every cold figure is the same.
        assert {k: v for k, v in figures.items() if not k.endswith("_warm")} == {
            k: v for k, v in cold.methods[name].items() if not k.endswith("_warm")
        }
    # A minute of reading before second 0: the rate-limited stockroom Impinj has
    # read more of its tags by the first sample, for every method.
    for name, figures in warm.methods.items():
        assert figures["item_zone_warm"] > cold.methods[name]["item_zone"]


@pytest.mark.mqtt
def test_quick_machinery_writes_every_required_key(tmp_path: Path) -> None:
    results = run_bench(
        ("floor", "ingest", "accuracy"), Sizes.tiny(), tmp_path, progress=lambda _: None
    )
    written = sorted(p.suffix for p in tmp_path.iterdir())
    assert written == [".json", ".md"]
    data = orjson.loads(next(tmp_path.glob("*.json")).read_bytes())
    assert data["meta"]["utc"] == results["meta"]["utc"]
    _assert_keys(
        data,
        "ingest.single.msgs_per_s",
        "ingest.single.floor_msgs_per_s",
        "ingest.batched.reads_per_s",
        "accuracy.shopper_zone",
        "accuracy.item_zone",
        "accuracy.arrival_p95_s",
        "accuracy.baselines.strongest_wins.shopper_zone",
        "accuracy.baselines.edgex_rules.item_zone",
    )
    assert data["ingest"]["single"]["msgs_per_s"] > 0
    assert data["floor"]["broker_msgs_per_s"] > 0


def _assert_keys(data: dict[str, Any], *paths: str) -> None:
    for path in paths:
        node = data
        for part in path.split("."):
            assert part in node, path
            node = node[part]


@pytest.mark.mqtt
def test_e2e_measures_device_message_to_phone_beside_the_relay(tmp_path: Path) -> None:
    """10 phones walk into one store (SQLite) through the real processes; every push arrives."""
    results = run_bench(("e2e", "scale"), Sizes.tiny(), tmp_path, progress=lambda _: None)
    data = orjson.loads(next(tmp_path.glob("*.json")).read_bytes())
    assert data["e2e"] == orjson.loads(orjson.dumps(results["e2e"]))
    _assert_keys(
        data,
        "e2e.store1.p50_ms",
        "e2e.store1.p99_ms",
        "e2e.store1.floor_p99_ms",
        "e2e.store1.p99_ratio_to_floor",
        "e2e.store1.legs.gateway.p99_ms",
        "e2e.store1.legs.server.p99_ms",
        "e2e.store1.legs.mobile_api.p99_ms",
        "e2e.store5.skipped",
        "e2e.store20.skipped",
        "scale.idle_ws.kb_per_socket",
        "scale.rss_mb.mobile_api",
        "scale.rss_mb.ingest",
        "scale.rss_mb.gateway_total",
        "scale.rss_mb.mosquitto",
    )
    s1 = data["e2e"]["store1"]
    assert s1["backend"] == "sqlite"
    assert s1["pushes_expected"] == 10
    assert s1["pushes_received"] == 10, s1
    assert s1["lost"] == 0
    assert s1["floor_received"] == s1["floor_expected"] == 10
    assert 0 < s1["p50_ms"] <= s1["p99_ms"] <= s1["max_ms"] < 30_000
    assert 0 < s1["floor_p50_ms"] <= s1["floor_p99_ms"] <= s1["floor_max_ms"]
    # The legs add up to the whole (each is its own percentile, so only roughly).
    legs = s1["legs"]
    assert all(legs[k]["n"] == 10 for k in ("gateway", "server", "mobile_api"))
    assert legs["gateway"]["p50_ms"] < s1["max_ms"]
    assert s1["events_to_phones"]["guidance"] >= 10
    for name in ("mobile_api", "ingest", "gateway_total", "mosquitto"):
        assert data["scale"]["rss_mb"][name] > 1, name
    assert data["scale"]["idle_ws"]["sockets"] == 20
    assert data["scale"]["idle_ws"]["rss_after_mb"] >= data["scale"]["idle_ws"]["rss_before_mb"] > 1
    assert "## e2e" in (next(tmp_path.glob("*.md")).read_text())


def test_aims_name_every_scenario_where_a_baseline_is_not_beaten() -> None:
    def run(scenario: str, mine: float, strongest: float, edgex: float) -> dict[str, Any]:
        def m(v: float) -> dict[str, float]:
            return {"shopper_zone": 0.9, "item_zone": v}

        return {
            "scenario": scenario,
            "methods": {"vitrine": m(mine), "strongest_wins": m(strongest), "edgex": m(edgex)},
        }

    runs = [run("busy", 0.98, 0.94, 0.96), run("dead", 0.94, 0.91, 0.999)]
    acc = {
        "shopper_zone": 0.9,
        "item_zone": 0.98,
        "item_zone_warm": 0.996,
        "arrival_p95_s": 3,
        "vitrine": runs[0]["methods"]["vitrine"],
        "baselines": {k: v for k, v in runs[0]["methods"].items() if k != "vitrine"},
        "runs": runs,
    }
    aims = {a["aim"]: a for a in _aims({"accuracy": acc})}
    every = aims["item zone better than both baselines, every scenario"]
    assert every["met"] is False and every["value"] == "dead (0.9400 vs 0.9990)"
    # A tie is not "better": shopper zone is 0.9 for all three.
    assert aims["shopper zone better than both baselines, every scenario"]["met"] is False
    assert aims["item zone accuracy, store already running (warm)"]["met"] is True
    assert aims["item zone better than both baselines"]["met"] is True  # the first scenario
    meta = {"utc": "-", "commit": "-", "python": "-", "cpus": 2, "load_avg_at_start": []}
    meta |= {"sizes": {}}
    acc |= {"scenario": "busy", "seed": 1}
    text = render_markdown({"meta": meta, "accuracy": acc, "aims": list(aims.values())})
    assert "| dead | " in text and "dead (0.9400 vs 0.9990) | > baselines | **no** |" in text

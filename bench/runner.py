"""``vitrine bench``: run the sections, print a table, write ``bench/results/<UTC>.json``/``.md``.

Every speed figure sits beside a floor measured in the same run (QUALITY.md,
"Performance"): the machine is shared and small, so only ratios compare across runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.accuracy import run_accuracy
from bench.drain import broker_relay, drain_gateway, drain_relay, queued_messages
from bench.e2e import E2eSizes, render_e2e, render_scale, run_e2e_and_scale
from bench.stats import ratio
from vitrine.runtime.broker import start_local_broker

__all__ = ["SECTIONS", "Sizes", "run_bench"]

SECTIONS = ("floor", "ingest", "e2e", "scale", "accuracy")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The gateway runs on its defaults. (Before d210793 a queue deeper than ~1k
#: messages stalled it under the default receive maximum; see docs/performance.md.)
GATEWAY_ENV: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Sizes:
    broker_msgs: int
    single_msgs: int
    batched_msgs: int
    batch: int
    repeats: int
    accuracy_scenarios: tuple[str, ...]
    accuracy_seconds: float | None
    e2e_seconds: float
    #: Store counts of the e2e runs (``store1`` always; 5 and 20 outside ``--quick``).
    e2e_stores: tuple[int, ...] = (1,)
    #: ``store1_postgres`` when ``VITRINE_TEST_POSTGRES_URL`` is set.
    e2e_postgres: bool = True
    #: Stores per ramp step (``scale``); empty: memory figures only.
    scale_ramp: tuple[int, ...] = ()
    #: Extra idle sockets opened to measure memory per WebSocket.
    idle_sockets: int = 500
    phones_per_store: int = 100
    e2e_warmup: bool = True

    @classmethod
    def quick(cls) -> Sizes:
        # No store1_postgres: each chain run costs ~40 s of process start-up, sign-in
        # and warm-up on the shared 2-core machine, and --quick must stay under 3 min.
        return cls(50_000, 20_000, 4_000, 50, 1, ("busy-saturday",), None, 15.0, e2e_postgres=False)

    def e2e(self) -> E2eSizes:
        return E2eSizes(
            self.e2e_seconds,
            self.e2e_stores,
            self.e2e_postgres,
            self.scale_ramp,
            self.idle_sockets,
            self.phones_per_store,
            self.e2e_warmup,
        )

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            200_000,
            60_000,
            10_000,
            50,
            3,
            ("busy-saturday", "dead-antenna", "stockroom-size"),
            None,
            60.0,
            e2e_stores=(1, 5, 20),
            scale_ramp=(1, 2, 5, 10, 20, 40),
            idle_sockets=2_000,
        )

    @classmethod
    def tiny(cls) -> Sizes:
        """For the smoke test: seconds, not minutes."""
        return cls(
            500,
            300,
            40,
            50,
            1,
            ("viewed-online",),
            60.0,
            5.0,
            e2e_postgres=False,
            idle_sockets=20,
            phones_per_store=10,
            e2e_warmup=False,
        )


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 1)


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _uncommitted() -> list[str]:
    """Code files the measured processes run that differ from ``commit`` (a shared tree)."""
    try:
        out = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "gateway",
                "server",
                "mobile_api",
                "firmware_sim",
                "vitrine",
                "bench",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(line[3:] for line in out.stdout.splitlines() if line[3:].endswith(".py"))


def run_bench(
    sections: Sequence[str],
    sizes: Sizes,
    out_dir: Path | None = RESULTS_DIR,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    started = time.monotonic()
    now = datetime.now(UTC)
    results: dict[str, Any] = {
        "meta": {
            "utc": now.isoformat(timespec="seconds"),
            "commit": _commit(),
            "uncommitted": _uncommitted(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "sections": list(sections),
            "sizes": asdict(sizes),
        }
    }
    with tempfile.TemporaryDirectory(prefix="vitrine-bench-") as tmp:
        work = Path(tmp)
        if {"floor", "ingest", "e2e", "scale"} & set(sections):
            with start_local_broker(work / "broker") as broker:
                if "floor" in sections or "ingest" in sections:
                    results["floor"] = _floor(broker.url, work, sizes, progress)
                if "ingest" in sections:
                    results["ingest"] = _ingest(broker.url, work, sizes, results["floor"], progress)
                if {"e2e", "scale"} & set(sections):
                    results.update(
                        run_e2e_and_scale(
                            broker.url,
                            broker.process.pid,
                            work / "e2e",
                            sizes.e2e(),
                            sections,
                            progress,
                        )
                    )
        if "accuracy" in sections:
            results["accuracy"] = _accuracy(sizes, progress)
    results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    results["aims"] = _aims(results)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = now.strftime("%Y%m%dT%H%M%SZ")
        (out_dir / f"{stem}.json").write_bytes(
            orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
        (out_dir / f"{stem}.md").write_text(render_markdown(results))
        results["meta"]["written"] = str(out_dir / f"{stem}.json")
    return results


def _floor(url: str, work: Path, sizes: Sizes, progress: Callable[[str], None]) -> dict[str, Any]:
    progress("floor: mosquitto_pub -> mosquitto_sub")
    broker = [broker_relay(url, sizes.broker_msgs).msgs_per_s for _ in range(sizes.repeats)]
    single, batched = [], []
    for i in range(sizes.repeats):
        progress(f"floor: bare relay drain, 1 read/message ({i + 1}/{sizes.repeats})")
        msgs = queued_messages(sizes.single_msgs, 1)
        single.append(drain_relay(url, work / f"relay1-{i}", msgs, 1).msgs_per_s)
        progress(f"floor: bare relay drain, {sizes.batch} reads/message")
        msgs = queued_messages(sizes.batched_msgs, sizes.batch)
        batched.append(drain_relay(url, work / f"relayb-{i}", msgs, sizes.batch).reads_per_s)
    return {
        "broker_msgs_per_s": _median(broker),
        "relay_single_msgs_per_s": _median(single),
        "relay_batched_reads_per_s": _median(batched),
        "runs": {"broker": broker, "relay_single": single, "relay_batched": batched},
    }


def _ingest(
    url: str, work: Path, sizes: Sizes, floor: dict[str, Any], progress: Callable[[str], None]
) -> dict[str, Any]:
    single, batched, batched_msgs = [], [], []
    for i in range(sizes.repeats):
        progress(f"ingest: gateway drain, 1 read/message ({i + 1}/{sizes.repeats})")
        msgs = queued_messages(sizes.single_msgs, 1)
        single.append(drain_gateway(url, work / f"gw1-{i}", msgs, 1, GATEWAY_ENV).msgs_per_s)
        progress(f"ingest: gateway drain, {sizes.batch} reads/message")
        msgs = queued_messages(sizes.batched_msgs, sizes.batch)
        r = drain_gateway(url, work / f"gwb-{i}", msgs, sizes.batch, GATEWAY_ENV)
        batched.append(r.reads_per_s)
        batched_msgs.append(r.msgs_per_s)
    s, b = _median(single), _median(batched)
    return {
        "single": {
            "msgs_per_s": s,
            "floor_msgs_per_s": floor["relay_single_msgs_per_s"],
            "ratio_to_floor": ratio(s, floor["relay_single_msgs_per_s"]),
            "broker_msgs_per_s": floor["broker_msgs_per_s"],
            "ratio_to_broker": ratio(s, floor["broker_msgs_per_s"]),
            "runs": single,
        },
        "batched": {
            "reads_per_message": sizes.batch,
            "reads_per_s": b,
            "msgs_per_s": _median(batched_msgs),
            "floor_reads_per_s": floor["relay_batched_reads_per_s"],
            "ratio_to_floor": ratio(b, floor["relay_batched_reads_per_s"]),
            "runs": batched,
        },
        "gateway_env": GATEWAY_ENV,
    }


def _accuracy(sizes: Sizes, progress: Callable[[str], None]) -> dict[str, Any]:
    runs = []
    for name in sizes.accuracy_scenarios:
        progress(f"accuracy: {name} through Vitrine's pipeline and two baselines")
        r = run_accuracy(name, seed=1, duration_s=sizes.accuracy_seconds, progress=progress)
        runs.append(asdict(r))
    first = runs[0]["methods"]
    vit = first["vitrine"]
    return {
        "scenario": runs[0]["scenario"],
        "seed": 1,
        "shopper_zone": vit["shopper_zone"],
        "shopper_zone_all_zones": vit["shopper_zone_all_zones"],
        "shopper_zone_settled": vit["shopper_zone_settled"],
        "item_zone": vit["item_zone"],
        "item_zone_warm": vit.get("item_zone_warm"),
        "arrival_p50_s": vit["arrival_p50_s"],
        "arrival_p95_s": vit["arrival_p95_s"],
        "staff_alerts_false": vit["staff_alerts_false"],
        "staff_alerts_missed": vit["staff_alerts_missed"],
        "vitrine": vit,
        "baselines": {k: v for k, v in first.items() if k != "vitrine"},
        "runs": runs,
    }


def _aims(r: dict[str, Any]) -> list[dict[str, Any]]:
    aims: list[dict[str, Any]] = []

    def aim(name: str, value: Any, target: str, met: bool | None) -> None:
        aims.append({"aim": name, "value": value, "target": target, "met": met})

    ing = r.get("ingest")
    if ing:
        rs = ing["single"]["ratio_to_floor"]
        aim("gateway drain / bare relay", rs, ">= 0.8", None if rs is None else rs >= 0.8)
        b = ing["batched"]["reads_per_s"]
        aim("batched ingest reads/s", b, ">= 450000", b >= 450_000)
    if "e2e" in r:
        q = r["e2e"]["store1"].get("p99_ratio_to_floor")
        aim(
            "store-load p99 / relay p99 (device message → phone)",
            q,
            "<= 2",
            None if q is None else q <= 2,
        )

    acc = r.get("accuracy")
    if acc:
        base = acc["baselines"]

        def better(key: str, lower: bool = False) -> bool | None:
            mine = acc["vitrine"][key]
            others = [b[key] for b in base.values()]
            if mine is None or any(o is None for o in others):
                return None
            return all((mine < o) if lower else (mine > o) for o in others)

        sz, iz, ap = acc["shopper_zone"], acc["item_zone"], acc["arrival_p95_s"]
        aim("shopper zone accuracy", sz, ">= 0.95", sz is not None and sz >= 0.95)
        aim("shopper zone better than both baselines", sz, "> baselines", better("shopper_zone"))
        aim("arrival p95 (s)", ap, "<= 3", ap is not None and ap <= 3)
        aim("item zone accuracy", iz, ">= 0.995", iz is not None and iz >= 0.995)
        aim("item zone better than both baselines", iz, "> baselines", better("item_zone"))
        warm = acc.get("item_zone_warm")
        if warm is not None:
            aim(
                "item zone accuracy, store already running (warm)",
                warm,
                ">= 0.995",
                warm >= 0.995,
            )
        if len(acc["runs"]) > 1:
            for key in ("shopper_zone", "item_zone"):
                behind = _behind(acc["runs"], key)
                aim(
                    f"{key.replace('_', ' ')} better than both baselines, every scenario",
                    ", ".join(behind) or "all ahead",
                    "> baselines",
                    not behind,
                )
    return aims


def _behind(runs: list[dict[str, Any]], key: str) -> list[str]:
    """The scenarios where Vitrine's ``key`` is not above every baseline's."""
    behind = []
    for run in runs:
        methods = run["methods"]
        mine = methods["vitrine"][key]
        others = [m[key] for name, m in methods.items() if name != "vitrine"]
        if not all(mine > o for o in others):
            best = max(others)
            behind.append(f"{run['scenario']} ({mine:.4f} vs {best:.4f})")
    return behind


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def render_markdown(r: dict[str, Any]) -> str:
    m = r["meta"]
    lines = [
        f"# vitrine bench — {m['utc']}",
        "",
        f"commit `{m['commit']}`, Python {m['python']}, {m['cpus']} CPUs, "
        f"load average at start {m['load_avg_at_start']}, wall {m.get('wall_s')} s, "
        f"sizes {m['sizes']}",
        "",
    ]
    if m.get("uncommitted"):
        lines += [f"Uncommitted changes in the tree: {', '.join(m['uncommitted'])}.", ""]
    if "floor" in r:
        f = r["floor"]
        lines += [
            "## Floor (same run)",
            "",
            "| relay | rate |",
            "|---|---|",
            f"| mosquitto_pub → Mosquitto → mosquitto_sub | {_fmt(f['broker_msgs_per_s'])} msg/s |",
            f"| bare Python relay, 1 read/msg (paho → orjson → WebSocket) "
            f"| {_fmt(f['relay_single_msgs_per_s'])} msg/s |",
            f"| bare Python relay, batched | {_fmt(f['relay_batched_reads_per_s'])} reads/s |",
            "",
        ]
    if "ingest" in r:
        s, b = r["ingest"]["single"], r["ingest"]["batched"]
        lines += [
            "## Ingest (gateway drain → facts on the bus)",
            "",
            "| | gateway | bare relay | ratio |",
            "|---|---|---|---|",
            f"| 1 read/msg | {_fmt(s['msgs_per_s'])} msg/s | {_fmt(s['floor_msgs_per_s'])} msg/s "
            f"| {_fmt(s['ratio_to_floor'])} |",
            f"| {b['reads_per_message']} reads/msg | {_fmt(b['reads_per_s'])} reads/s "
            f"| {_fmt(b['floor_reads_per_s'])} reads/s | {_fmt(b['ratio_to_floor'])} |",
            "",
        ]
    if "e2e" in r:
        lines += render_e2e(r["e2e"])
    if "scale" in r:
        lines += render_scale(r["scale"])
    if "accuracy" in r:
        a = r["accuracy"]
        methods = {"vitrine": a["vitrine"], **a["baselines"]}
        keys = [
            "shopper_zone",
            "shopper_zone_all_zones",
            "shopper_zone_settled",
            "shopper_transition_share",
            "item_zone",
            "item_zone_warm",
            "item_ghost_share",
            "arrival_p50_s",
            "arrival_p95_s",
            "arrivals_missed",
            "staff_alerts_true",
            "staff_alerts_false",
            "staff_alerts_missed",
        ]
        lines += [
            f"## Accuracy ({a['scenario']}, seed {a['seed']}, against ground truth)",
            "",
            "| | " + " | ".join(methods) + " |",
            "|---|" + "---|" * len(methods),
        ]
        for k in keys:
            lines.append(
                f"| {k} | " + " | ".join(_fmt(mv.get(k)) for mv in methods.values()) + " |"
            )
        lines.append("")
        if len(a["runs"]) > 1:
            lines += [
                "Every scenario (seed 1): shopper zone / item zone / item zone warm",
                "",
                "| scenario | " + " | ".join(methods) + " |",
                "|---|" + "---|" * len(methods),
            ]
            for run in a["runs"]:
                cells = [
                    " / ".join(
                        _fmt(run["methods"][m].get(k))
                        for k in ("shopper_zone", "item_zone", "item_zone_warm")
                    )
                    for m in methods
                ]
                lines.append(f"| {run['scenario']} | " + " | ".join(cells) + " |")
            lines.append("")
    if r.get("aims"):
        lines += ["## Aims", "", "| aim | value | target | met |", "|---|---|---|---|"]
        for a in r["aims"]:
            met = {True: "yes", False: "**no**", None: "not measured"}[a["met"]]
            lines.append(f"| {a['aim']} | {_fmt(a['value'])} | {a['target']} | {met} |")
        lines.append("")
    return "\n".join(lines)

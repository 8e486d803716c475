"""The ``e2e`` and ``scale`` sections: the whole chain at 1, 5 and 20 stores' load.

``e2e.store<N>`` is one :func:`bench.chain.chain_run` (device message → Mosquitto →
gateway → ``server ingest`` → outbox → ``mobile-api`` → the phone's WebSocket) beside
:func:`bench.chain.relay_floor` (the bare relay offered the same readers and the same
phone walk, in the same run). ``store1`` runs on SQLite and, when
``VITRINE_TEST_POSTGRES_URL`` names a server, ``store1_postgres`` on a database
created for the run; 5 and 20 stores run on PostgreSQL when there is one (the
multi-store backend), else on SQLite.

``scale``: memory per idle authenticated WebSocket (the ``mobile-api``'s RSS before
and after opening idle sockets), the RSS of each process at the end of the store-1
run, and — outside ``--quick`` — a ramp of stores (100 phones each) until the p99
passes ``RAMP_P99_LIMIT_MS`` or a push is lost; the last passing step is reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chain import (
    READERS_PER_STORE,
    READS_PER_S,
    ChainResult,
    FloorResult,
    Latency,
    chain_run,
    postgres_database,
    relay_floor,
)
from bench.phones import TRIGGER_AFTER_S
from bench.stats import ratio

__all__ = ["RAMP_P99_LIMIT_MS", "E2eSizes", "render_e2e", "render_scale", "run_e2e_and_scale"]

#: The issue's limit for the ramp: a push more than 100 ms after the device message
#: is no longer "live" for a shopper at a rack.
RAMP_P99_LIMIT_MS = 100.0
POSTGRES_ENV = "VITRINE_TEST_POSTGRES_URL"


@dataclass(frozen=True, slots=True)
class E2eSizes:
    """What the sections run (``bench.runner.Sizes.e2e``)."""

    seconds: float
    stores: tuple[int, ...]
    postgres: bool
    ramp: tuple[int, ...]
    idle_sockets: int
    phones_per_store: int
    #: Wait for the store opening's item facts before the phones walk in.
    warmup: bool = True


def _lat(prefix: str, lat: Latency) -> dict[str, Any]:
    return {
        f"{prefix}p50_ms": lat.p50_ms,
        f"{prefix}p99_ms": lat.p99_ms,
        f"{prefix}max_ms": lat.max_ms,
    }


def _entry(run: ChainResult, floor: FloorResult) -> dict[str, Any]:
    lat = run.latency
    return {
        "backend": run.backend,
        "stores": run.stores,
        "phones": run.phones,
        "load": (
            f"{run.stores} × ({READERS_PER_STORE} readers × {READS_PER_S:.0f} reads/s, QoS 1, "
            f"batches of 50) + {run.phones} app phones walking in, 2 scanners × 1 report/s each"
        ),
        "offered_reads_per_s": run.stores * READERS_PER_STORE * READS_PER_S,
        "offered_ble_msgs_per_s": run.ble_msgs_per_s,
        # Phones walk in evenly over the walk but its last TRIGGER_AFTER_S + 2 s.
        "arrivals_per_s": round(run.phones / max(run.seconds - TRIGGER_AFTER_S - 2.0, 1.0), 1),
        "seconds": run.seconds,
        **_lat("", lat),
        "pushes_expected": lat.expected,
        "pushes_received": lat.received,
        "lost": lat.lost,
        **_lat("floor_", floor.latency),
        "floor_received": floor.latency.received,
        "floor_expected": floor.latency.expected,
        "floor_ble_msgs_per_s": floor.ble_msgs_per_s,
        "p99_ratio_to_floor": ratio(lat.p99_ms, floor.latency.p99_ms),
        "legs": {name: _lat("", leg) | {"n": leg.received} for name, leg in run.legs.items()},
        "events_to_phones": run.events,
        "sockets_closed_early": run.closed_early,
        "setup_s": run.setup_s,
        "warmup_s": run.warmup_s,
        "opening_facts": run.opening_facts,
        "warmup_complete": run.warmup_complete,
        "ingest_facts_per_s_opening": round(run.opening_facts / run.warmup_s, 1)
        if run.warmup_s
        else None,
        "rss_mb": run.rss_mb,
    }


@contextmanager
def _database(backend: str, work: Path, name: str) -> Iterator[str]:
    if backend == "postgresql":
        with postgres_database(os.environ[POSTGRES_ENV]) as url:
            yield url
    else:
        with nullcontext(f"sqlite:///{work / name}.db") as url:
            yield url


def run_e2e_and_scale(
    mqtt_url: str,
    broker_pid: int | None,
    work: Path,
    sizes: E2eSizes,
    sections: Sequence[str],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """``{"e2e": …, "scale": …}`` for the sections asked for."""
    have_pg = bool(os.environ.get(POSTGRES_ENV))
    multi = "postgresql" if have_pg else "sqlite"
    floors: dict[int, FloorResult] = {}
    runs: dict[int, ChainResult] = {}
    per = sizes.phones_per_store

    def floor(stores: int) -> FloorResult:
        if stores not in floors:
            progress(
                f"e2e: bare relay, {stores} store(s)' readers and phones ({sizes.seconds:.0f} s)"
            )
            floors[stores] = relay_floor(
                mqtt_url, work / f"floor-{stores}", stores, sizes.seconds, per_store=per
            )
        return floors[stores]

    def chain(stores: int, backend: str, idle: int = 0) -> ChainResult:
        with _database(backend, work, f"e2e-{stores}") as url:
            return chain_run(
                mqtt_url,
                work / f"chain-{backend}-{stores}",
                url,
                backend,
                stores,
                sizes.seconds,
                broker_pid=broker_pid,
                per_store=per,
                extra_idle=idle,
                warmup=sizes.warmup,
                progress=progress,
            )

    out: dict[str, Any] = {}
    e2e: dict[str, Any] = {
        "leg": "device message → Mosquitto → gateway → server ingest → outbox → mobile-api → "
        "phone WebSocket",
        "latency": "publish of the report that makes the gateway decide shopper_entered → the "
        "phone receiving its arrival guidance (CLOCK_MONOTONIC, one machine)",
    }
    store1 = chain(1, "sqlite", sizes.idle_sockets if "scale" in sections else 0)
    runs[1] = store1
    e2e["store1"] = _entry(store1, floor(1))
    if "e2e" in sections:
        if sizes.postgres and have_pg:
            runs[1] = chain(1, "postgresql")  # the ramp's first step when it runs on PostgreSQL
            e2e["store1_postgres"] = _entry(runs[1], floor(1))
        elif sizes.postgres:
            e2e["store1_postgres"] = {"skipped": f"{POSTGRES_ENV} is not set"}
        else:
            e2e["store1_postgres"] = {"skipped": "--full only (not run in --quick)"}
        for n in sizes.stores:
            if n == 1:
                continue
            runs[n] = chain(n, multi)
            e2e[f"store{n}"] = _entry(runs[n], floor(n))
        for n in (5, 20):
            e2e.setdefault(f"store{n}", {"skipped": "--full only (not run in --quick)"})
        out["e2e"] = e2e
    if "scale" in sections:
        out["scale"] = _scale(store1, sizes, multi, runs, floor, chain, progress)
    return out


def _scale(
    store1: ChainResult,
    sizes: E2eSizes,
    backend: str,
    runs: dict[int, ChainResult],
    floor: Callable[[int], FloorResult],
    chain: Callable[[int, str], ChainResult],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    idle = store1.extra_idle
    scale: dict[str, Any] = {
        "idle_ws": {
            "sockets": idle.sockets if idle else None,
            "rss_before_mb": idle.rss_before_mb if idle else None,
            "rss_after_mb": idle.rss_after_mb if idle else None,
            "kb_per_socket": idle.kb_per_socket if idle else None,
            "how": "mobile-api RSS before and after opening this many more authenticated, idle "
            "/v1/me/stream sockets (auth frame sent, ready received), at the end of the "
            "store-1 run",
        },
        "phone_sockets": {
            "sockets": store1.phone_sockets.sockets,
            "kb_per_socket": store1.phone_sockets.kb_per_socket,
        },
        "rss_mb": store1.rss_mb,
        "rss_at": "end of e2e.store1 (SQLite), 1 store's load",
    }
    ramp: list[dict[str, Any]] = []
    for n in sizes.ramp:
        run = runs.get(n)
        if run is None or run.backend != backend:
            progress(f"scale: ramp step {n} store(s)")
            run = chain(n, backend)
        p99 = run.latency.p99_ms
        passed = p99 is not None and p99 <= RAMP_P99_LIMIT_MS and run.latency.lost == 0
        step = {
            "stores": n,
            "phones": run.phones,
            "backend": run.backend,
            "p50_ms": run.latency.p50_ms,
            "p99_ms": p99,
            "lost": run.latency.lost,
            "floor_p99_ms": floor(n).latency.p99_ms,
            "passed": passed,
            "rss_mb": run.rss_mb,
        }
        ramp.append(step)
        if not passed:
            break
    passing = [s for s in ramp if s["passed"]]
    scale["ramp_limit"] = f"p99 <= {RAMP_P99_LIMIT_MS:.0f} ms and nothing lost"
    scale["ramp"] = ramp or None
    scale["max_stores_passing"] = passing[-1]["stores"] if passing else None
    scale["max_phones_passing"] = passing[-1]["phones"] if passing else None
    if not sizes.ramp:
        scale["ramp_note"] = "--full only (not run in --quick)"
    return scale


def _f(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def render_e2e(e: dict[str, Any]) -> list[str]:
    lines = [
        f"## e2e — {e['leg']}",
        "",
        f"Latency: {e['latency']}. Floor: the bare relay (paho → orjson → WebSocket) offered "
        "the same readers and phone walk in the same run.",
        "",
        "| run | backend | phones | p50 ms | p99 ms | max ms | received | floor p50 / p99 / max ms "
        "| p99 ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ("store1", "store1_postgres", "store5", "store20"):
        r = e.get(key)
        if r is None:
            continue
        if "skipped" in r:
            lines.append(f"| {key} | skipped: {r['skipped']} | | | | | | | |")
            continue
        lines.append(
            f"| {key} | {r['backend']} | {r['phones']} | {_f(r['p50_ms'])} | {_f(r['p99_ms'])} "
            f"| {_f(r['max_ms'])} | {r['pushes_received']}/{r['pushes_expected']} "
            f"| {_f(r['floor_p50_ms'])} / {_f(r['floor_p99_ms'])} / {_f(r['floor_max_ms'])} "
            f"| {_f(r['p99_ratio_to_floor'])} |"
        )
    lines += ["", "Where the time goes (p50 / p99 ms per leg):", ""]
    lines += [
        "| run | gateway (report → fact) | server (fact → outbox message) "
        "| mobile-api (message → phone) |",
        "|---|---|---|---|",
    ]
    for key in ("store1", "store1_postgres", "store5", "store20"):
        r = e.get(key)
        if not r or "legs" not in r:
            continue
        cells = [
            f"{_f(r['legs'][k]['p50_ms'])} / {_f(r['legs'][k]['p99_ms'])}"
            for k in ("gateway", "server", "mobile_api")
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def render_scale(s: dict[str, Any]) -> list[str]:
    idle = s["idle_ws"]
    lines = [
        "## scale",
        "",
        f"Memory per idle WebSocket: {_f(idle['kb_per_socket'])} KB "
        f"({idle['sockets']} sockets, mobile-api RSS {_f(idle['rss_before_mb'])} → "
        f"{_f(idle['rss_after_mb'])} MB).",
        "",
        f"RSS at {s['rss_at']} (MB): " + ", ".join(f"{k} {_f(v)}" for k, v in s["rss_mb"].items()),
        "",
    ]
    if s.get("ramp"):
        lines += [
            f"Ramp ({s['ramp_limit']}):",
            "",
            "| stores | phones | backend | p50 ms | p99 ms | floor p99 ms | lost | passed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for st in s["ramp"]:
            lines.append(
                f"| {st['stores']} | {st['phones']} | {st['backend']} | {_f(st['p50_ms'])} "
                f"| {_f(st['p99_ms'])} | {_f(st['floor_p99_ms'])} | {st['lost']} "
                f"| {'yes' if st['passed'] else '**no**'} |"
            )
        lines += [
            "",
            f"Last passing: {s['max_stores_passing']} store(s), {s['max_phones_passing']} phones.",
            "",
        ]
    else:
        lines += [f"Ramp: {s.get('ramp_note', 'not run')}.", ""]
    return lines

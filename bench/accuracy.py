"""Accuracy against the simulator's ground truth, for Vitrine and two baselines.

Offline and deterministic: the simulator runs in-process (a scenario and a
seed), every MQTT message it emits is routed and parsed by the gateway's own
router and adapters, then fed to

* Vitrine's pure gateway ``Pipeline`` (exactly what ``gateway/service.py`` runs),
* :class:`bench.baselines.StrongestWins` and :class:`bench.baselines.EdgexRules`
  (reads placed in zones from the layout, the same way the pipeline places them),

all at the message's own time, ticked every simulated second. After each
second the three answers are compared with the truth:

* ``shopper_zone`` — share of shopper-seconds (shopper in a zone, not the exit)
  where the method puts the shopper's phone in the true zone, counted in the
  zones a BLE scanner is mapped to (the sample store's one fitting-room scanner
  is mapped to fitting-1, so no method can ever say fitting-2);
  ``shopper_zone_all_zones`` counts every zone;
* ``item_zone`` — share of item samples (every 10 s, after a 30 s warm-up, item
  not gone) where the item's zone is right, the system *cold-started* with the
  store: every method's first input is the scenario's second 0;
* ``item_zone_warm`` (and ``item_ghost_share_warm``) — the same samples scored
  on a second copy of each method that first saw ``READERS_WARMUP_S`` of the
  store's readers reading with nobody in the store (the same scenario, seed,
  stock and reader settings; no shoppers, staff or faults), as a gateway that
  runs continuously has when the doors open. Both are reported; neither
  replaces the other;
* arrival delay — from the truth's entry to the first second the phone is present;
* staff alerts — the engine raises one when a ``staff_recognition`` shopper's
  phone is seen entering (``server/engine/rules.py``); measured here at that
  trigger: a presence starting while the shopper is truly in and not yet
  alerted for this visit is right, any other is *false*, a visit without one is
  *missed*.

Which phone belongs to which shopper: the harness recomputes each shopper's
advertised id (rotating MAC or app iBeacon token) with the simulator's own
formula (``firmware_sim/engine.py`` ``_ble``); reports it cannot attribute are
counted in ``unattributed_ble``, so a drift in that formula shows up.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.baselines import EdgexRules, StrongestWins, ZoneMethod
from bench.stats import percentile
from firmware_sim.engine import MAC_ROTATION_S, Simulation
from firmware_sim.scenario import Arrivals, Scenario, load_scenario
from gateway.adapters import AdapterError, parse
from gateway.pipeline import Identity, Pipeline
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, RfidRead
from gateway.routing import Router
from vitrine.contracts.app_token import AppBeacon, token_of
from vitrine.contracts.ids import DeviceToken, Epc, normalise_epc
from vitrine.contracts.layout import StoreLayout, ZoneType

__all__ = ["AccuracyResult", "run_accuracy"]

#: ``shopper_zone_settled`` leaves out the first seconds after each true zone
#: change: a shopper crossing a zone edge is equidistant from two scanners, and
#: phones advertise about once a second, so no online method can name the new
#: zone at once. 3 s is three reports. It explains ``shopper_zone``; it does not
#: replace it (busy-saturday: a shopper changes zone every ~40 s).
SETTLED_S = 3.0
#: Items are sampled every 10 s: one Zebra report interval, so each sample sees new data.
ITEM_SAMPLE_S = 10
#: No method can know an item before its antenna's first report round (10 s) and
#: Vitrine/EdgeX need a second read; the first 30 s are excluded for every method.
ITEM_WARMUP_S = 30.0
#: ``item_zone_warm``: the readers read this long, store empty, before second 0.
#: A gateway runs continuously and a store opens with its readers long up; five
#: minutes is enough for the slowest reader here (busy-saturday's Impinj over
#: ~200 stockroom tags at ``eventPerSecondLimit`` 15, a tag every 10-30 s) to
#: have read every tag a few times, and short next to a night.
READERS_WARMUP_S = 300.0


def _fixed_salt(period: int) -> bytes:
    # Deterministic for the benchmark only; the service draws 256 random bits.
    return hashlib.sha256(f"bench-salt-{period}".encode()).digest()


class _VitrineMethod(ZoneMethod):
    name = "vitrine"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def item_zone(self, epc: str) -> str | None:
        return self.pipeline.items.zone_of(Epc(epc))

    def shopper_zone(self, device: str) -> str | None:
        return self.pipeline.shoppers.zone_of(DeviceToken(device))


@dataclass(slots=True)
class _Score:
    shopper_ok: int = 0
    shopper_n: int = 0
    shopper_all_ok: int = 0
    shopper_all_n: int = 0
    #: Scored shopper-seconds at least SETTLED_S after the truth's last zone change.
    shopper_settled_ok: int = 0
    shopper_settled_n: int = 0
    #: pid -> (true zone, simulated second it became the true zone).
    truth_since: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    item_ok: int = 0
    item_n: int = 0
    item_ghost: int = 0
    arrival_delays: list[float] = field(default_factory=list)
    arrivals_missed: int = 0
    alerts_true: int = 0
    alerts_false: int = 0
    alerts_missed: int = 0
    #: pid -> (time the truth visit began, detected yet?)
    pending_arrival: dict[str, float] = field(default_factory=dict)
    present: dict[str, bool] = field(default_factory=dict)
    alerted_visit: dict[str, bool] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        d = sorted(self.arrival_delays)
        return {
            "shopper_zone": _ratio(self.shopper_ok, self.shopper_n),
            "shopper_zone_all_zones": _ratio(self.shopper_all_ok, self.shopper_all_n),
            "shopper_zone_settled": _ratio(self.shopper_settled_ok, self.shopper_settled_n),
            "shopper_transition_share": _ratio(
                self.shopper_n - self.shopper_settled_n, self.shopper_n
            ),
            "item_zone": _ratio(self.item_ok, self.item_n),
            "item_ghost_share": _ratio(self.item_ghost, self.item_n + self.item_ghost),
            "item_zone_warm": None,
            "item_ghost_share_warm": None,
            "arrival_p50_s": percentile(d, 50),
            "arrival_p95_s": percentile(d, 95),
            "arrivals_detected": len(d),
            "arrivals_missed": self.arrivals_missed,
            "staff_alerts_true": self.alerts_true,
            "staff_alerts_false": self.alerts_false,
            "staff_alerts_missed": self.alerts_missed,
        }


def _warm_summary(s: _Score | None) -> dict[str, Any]:
    if s is None:
        return {}
    return {
        "item_zone_warm": _ratio(s.item_ok, s.item_n),
        "item_ghost_share_warm": _ratio(s.item_ghost, s.item_n + s.item_ghost),
    }


def _ratio(ok: int, n: int) -> float | None:
    return round(ok / n, 5) if n else None


@dataclass(frozen=True, slots=True)
class AccuracyResult:
    scenario: str
    seed: int
    sim_seconds: float
    messages: int
    unattributed_ble: int
    methods: dict[str, dict[str, Any]]


class _Placer:
    """(reader, antenna) / scanner → zone, as ``gateway/pipeline/core.py`` places reads."""

    def __init__(self, layout: StoreLayout) -> None:
        self.antennas = {(r.id, a.port): a.zone for r in layout.readers for a in r.antennas}
        self.reader_zone: dict[str, str | None] = {}
        for r in layout.readers:
            zones = {a.zone for a in r.antennas}
            self.reader_zone[r.id] = next(iter(zones)) if len(zones) == 1 else None
        self.scanners: dict[str, str] = {}
        for s in layout.scanners:
            self.scanners[s.id] = s.zone
            self.scanners[s.room] = s.zone

    def rfid(self, read: RfidRead, reader: str | None) -> str | None:
        reader = reader or read.reader
        if reader is None:
            return None
        if read.antenna is not None:
            return self.antennas.get((reader, read.antenna))
        return self.reader_zone.get(reader)

    def ble(self, read: BleRead, reader: str | None) -> str | None:
        for key in (read.room, read.scanner, reader):
            if key is not None and key in self.scanners:
                return self.scanners[key]
        return None


def _advertised_ids(sim: Simulation, t: float) -> dict[str, str]:
    """Raw BLE device id (lower case) → shopper id, recomputed as the simulator does."""
    epoch = sim.scenario.start.timestamp() + t
    out: dict[str, str] = {}
    for person in sim.people:
        if person.role != "shopper" or t < person.start or person.done:
            continue
        window = int((epoch + person.mac_seed % MAC_ROTATION_S) // MAC_ROTATION_S)
        mac_bytes = hashlib.sha256(
            f"{person.secret.hex()}:{person.pid}:{sim.seed}:{window}".encode()
        ).digest()[:6]
        mac = f"{(mac_bytes[0] & 0x3F) | 0x40:02x}" + mac_bytes[1:].hex()
        if person.app:
            beacon = AppBeacon.for_token(sim.scenario.app_uuid, token_of(person.secret, epoch))
            out[f"ibeacon:{beacon.uuid}-{beacon.major}-{beacon.minor}".lower()] = person.pid
        else:
            out[mac.lower()] = person.pid
    return out


def _outputs(router: Router, e: Any) -> tuple[str | None, list[AdapterOutput]] | None:
    """An emitted MQTT message routed and parsed as the gateway does; None if unroutable."""
    route = router.route(e.topic)
    if route is None:
        return None
    try:
        return route.reader, parse(route.format, e.payload, topic=e.topic, reader=route.reader)
    except AdapterError as exc:
        return route.reader, list(exc.partial)


def _feed_items(
    methods: list[ZoneMethod],
    placer: _Placer,
    reader: str | None,
    outputs: list[AdapterOutput],
    at: datetime,
) -> None:
    """RFID reads and reader events only, to a Vitrine pipeline and the baselines."""
    pipeline = methods[0].pipeline if isinstance(methods[0], _VitrineMethod) else None
    ts = at.timestamp()
    for out in outputs:
        if isinstance(out, RfidRead):
            if pipeline is not None:
                pipeline.feed(out, at, reader=reader)
            zone = placer.rfid(out, reader)
            if zone is not None:
                for m in methods[1:]:
                    m.rfid(out.epc, zone, out.rssi_dbm, ts)
        elif isinstance(out, DeviceEvent) and pipeline is not None:
            pipeline.feed(out, at, reader=reader)


def _warm_up(sc: Scenario, seed: int, seconds: float, methods: list[ZoneMethod]) -> None:
    """Feed ``methods`` the readers of ``seconds`` before ``sc``'s start, the store empty."""
    before = sc.model_copy(
        update={
            "start": sc.start - timedelta(seconds=seconds),
            # The last step is one tick before the scenario's second 0.
            "duration_s": seconds - sc.tick_s,
            "arrivals": Arrivals(),
            "shoppers": (),
            "staff": (),
            "faults": (),
        }
    )
    sim = Simulation(before.bundle(), before, seed)
    router = Router(sim.layout)
    placer = _Placer(sim.layout)
    for step in sim.steps():
        for e in step.emissions:
            if e.kind != "mqtt":
                continue
            routed = _outputs(router, e)
            if routed is not None:
                _feed_items(methods, placer, routed[0], routed[1], e.at.astimezone(UTC))
        _tick(methods, datetime.fromtimestamp(before.start.timestamp() + step.t, UTC))


def _tick(methods: list[ZoneMethod], now: datetime) -> None:
    for m in methods:
        if isinstance(m, _VitrineMethod):
            m.pipeline.tick(now)
        else:
            m.tick(now.timestamp())


def run_accuracy(
    scenario: str = "busy-saturday",
    seed: int = 1,
    duration_s: float | None = None,
    progress: Callable[[str], None] | None = None,
    warmup_s: float = READERS_WARMUP_S,
) -> AccuracyResult:
    """One scenario and seed; ``warmup_s`` 0 leaves the ``*_warm`` figures None."""
    sc = load_scenario(scenario)
    if duration_s is not None:
        sc = sc.model_copy(update={"duration_s": duration_s})
    sim = Simulation(sc.bundle(), sc, seed)
    layout = sim.layout
    zone_type = {z.id: z.type for z in layout.zones}
    router = Router(layout)
    placer = _Placer(layout)
    pipeline = Pipeline(layout, "bench", salt_source=_fixed_salt, app_beacon_uuid=sc.app_uuid)
    identity = Identity(sc.app_uuid, _fixed_salt)
    methods: list[ZoneMethod] = [_VitrineMethod(pipeline), StrongestWins(), EdgexRules()]
    scores = {m.name: _Score() for m in methods}
    warm: list[ZoneMethod] = []
    if warmup_s > 0:
        warm_pipeline = Pipeline(
            layout, "bench", salt_source=_fixed_salt, app_beacon_uuid=sc.app_uuid
        )
        warm = [_VitrineMethod(warm_pipeline), StrongestWins(), EdgexRules()]
        _warm_up(sc, seed, warmup_s, warm)
    warm_scores = {m.name: _Score() for m in warm}
    truth_shopper: dict[str, str | None] = {}
    truth_item: dict[str, str | None] = {}
    alerted_kind: set[str] = set()
    leaves_at: dict[str, float] = {}
    between: set[str] = set()
    #: Zones a BLE scanner is mapped to: the only ones any method can name.
    resolvable = {sc_.zone for sc_ in layout.scanners}
    keys_of: dict[str, list[str]] = {}
    messages = unattributed = 0
    last_t = 0.0
    for step in sim.steps():
        t = step.t
        last_t = t
        for rec in step.truth:
            kind = rec["kind"]
            if kind == "shopper_zone":
                pid = rec["shopper"]
                before = truth_shopper.get(pid)
                if rec["zone"] is None and t < leaves_at.get(pid, 0.0) - 1.0:
                    # Between two zones' rectangles (a corridor), not out of the store:
                    # the shopper keeps the last zone for arrival/alert purposes and
                    # the second is not scored.
                    between.add(pid)
                    continue
                between.discard(pid)
                truth_shopper[pid] = rec["zone"]
                if before is None and rec["zone"] is not None:
                    for s in scores.values():
                        s.pending_arrival[pid] = t
                        s.alerted_visit[pid] = False
                elif before is not None and rec["zone"] is None:
                    for s in scores.values():
                        if s.pending_arrival.pop(pid, None) is not None:
                            s.arrivals_missed += 1
                        if pid in alerted_kind and not s.alerted_visit.get(pid, False):
                            s.alerts_missed += 1
            elif kind == "item":
                truth_item[normalise_epc(rec["epc"])] = rec["zone"]
            elif kind == "shopper":
                leaves_at[rec["shopper"]] = float(rec.get("leaves_s") or math.inf)
                if rec.get("app") and "staff_recognition" in rec.get("consents", ()):
                    alerted_kind.add(rec["shopper"])
        ids: dict[str, str] | None = None
        for e in step.emissions:
            if e.kind != "mqtt":
                continue
            messages += 1
            routed = _outputs(router, e)
            if routed is None:
                continue
            reader, outputs = routed
            at = e.at.astimezone(UTC)
            ts = at.timestamp()
            if warm:
                _feed_items(warm, placer, reader, outputs, at)
            for out in outputs:
                pipeline.feed(out, at, reader=reader)
                if isinstance(out, RfidRead):
                    zone = placer.rfid(out, reader)
                    if zone is not None:
                        for m in methods[1:]:
                            m.rfid(out.epc, zone, out.rssi_dbm, ts)
                elif isinstance(out, BleRead):
                    zone = placer.ble(out, reader)
                    rssi = pipeline.shoppers.rssi_of(out.rssi_dbm, out.distance_m, out.rssi_at_1m)
                    if zone is None or rssi is None:
                        continue
                    key = identity.of(out, ts).device
                    if ids is None:
                        ids = _advertised_ids(sim, t)
                    pid = ids.get(out.device_id.strip().lower())
                    if pid is None:
                        unattributed += 1
                    else:
                        keys = keys_of.setdefault(pid, [])
                        if not keys or keys[-1] != key:
                            keys.append(key)
                    for m in methods[1:]:
                        m.ble(key, zone, rssi, ts)
        now = datetime.fromtimestamp(sc.start.timestamp() + t, UTC)
        _tick(methods, now)
        _tick(warm, now)
        for m in methods:
            _score_second(
                m,
                scores[m.name],
                t,
                truth_shopper,
                keys_of,
                alerted_kind,
                zone_type,
                resolvable,
                between,
            )
            if t >= ITEM_WARMUP_S and int(t) % ITEM_SAMPLE_S == 0:
                _score_items(m, scores[m.name], truth_item)
        if warm and t >= ITEM_WARMUP_S and int(t) % ITEM_SAMPLE_S == 0:
            for m in warm:
                _score_items(m, warm_scores[m.name], truth_item)
        if progress is not None and int(t) % 300 == 0 and t > 0:
            progress(f"accuracy {scenario}: {t:.0f}/{sc.duration_s:.0f} sim s")
    for s in scores.values():
        # Visits still open at the end: undetected arrivals are missed only if the
        # shopper had at least 30 s to be seen.
        for pid, since in list(s.pending_arrival.items()):
            if last_t - since >= 30.0:
                s.arrivals_missed += 1
            del s.pending_arrival[pid]
    return AccuracyResult(
        scenario=scenario,
        seed=seed,
        sim_seconds=last_t,
        messages=messages,
        unattributed_ble=unattributed,
        methods={
            name: s.summary() | _warm_summary(warm_scores.get(name)) for name, s in scores.items()
        },
    )


def _score_second(
    m: ZoneMethod,
    s: _Score,
    t: float,
    truth: dict[str, str | None],
    keys_of: dict[str, list[str]],
    alerted_kind: set[str],
    zone_type: dict[str, ZoneType],
    resolvable: set[str],
    between: set[str],
) -> None:
    for pid, zone in truth.items():
        keys = keys_of.get(pid, [])
        predicted: str | None = None
        for key in reversed(keys[-3:]):  # the newest id first; rotation leaves older ones
            predicted = m.shopper_zone(key)
            if predicted is not None:
                break
        present = predicted is not None
        was = s.present.get(pid, False)
        s.present[pid] = present
        if s.truth_since.get(pid, (None, 0.0))[0] != zone:
            s.truth_since[pid] = (zone, t)
        if zone is not None and pid not in between and zone_type.get(zone) != ZoneType.EXIT:
            s.shopper_all_n += 1
            s.shopper_all_ok += predicted == zone
            if zone in resolvable:
                s.shopper_n += 1
                s.shopper_ok += predicted == zone
                if t - s.truth_since[pid][1] >= SETTLED_S:
                    s.shopper_settled_n += 1
                    s.shopper_settled_ok += predicted == zone
        if present and pid in s.pending_arrival:
            s.arrival_delays.append(t - s.pending_arrival.pop(pid))
        if pid in alerted_kind and present and not was:
            if zone is not None and not s.alerted_visit.get(pid, False):
                s.alerts_true += 1
                s.alerted_visit[pid] = True
            else:
                s.alerts_false += 1


def _score_items(m: ZoneMethod, s: _Score, truth: dict[str, str | None]) -> None:
    for epc, zone in truth.items():
        predicted = m.item_zone(epc)
        if zone is None:
            s.item_ghost += predicted is not None
            continue
        s.item_n += 1
        s.item_ok += predicted == zone


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.accuracy [--scenario S ...] [--seed N ...]``: one table line per run."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m bench.accuracy", description=main.__doc__)
    ap.add_argument("--scenario", action="append", help="scenario name (repeatable)")
    ap.add_argument("--seed", action="append", type=int, help="simulator seed (repeatable)")
    ap.add_argument("--duration", type=float, default=None, help="simulated seconds")
    ap.add_argument("--json", action="store_true", help="print every run as one JSON line")
    args = ap.parse_args(argv)
    keys = (
        "shopper_zone",
        "shopper_zone_all_zones",
        "shopper_zone_settled",
        "shopper_transition_share",
        "item_zone",
        "item_ghost_share",
        "item_zone_warm",
        "item_ghost_share_warm",
        "arrival_p50_s",
        "arrival_p95_s",
        "arrivals_missed",
        "staff_alerts_true",
        "staff_alerts_false",
        "staff_alerts_missed",
    )
    for scenario in args.scenario or ["busy-saturday"]:
        for seed in args.seed or [1]:
            r = run_accuracy(scenario, seed=seed, duration_s=args.duration)
            if args.json:
                print(json.dumps({"scenario": scenario, "seed": seed, "methods": r.methods}))
                continue
            for name, m in r.methods.items():
                cells = " ".join(f"{k}={m[k]}" for k in keys)
                print(f"{scenario} seed={seed} {name:15s} {cells}", flush=True)


if __name__ == "__main__":
    main()

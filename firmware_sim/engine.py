"""The simulation core: a seeded, discrete-time model of one store.

Pure and deterministic: a :class:`Simulation` is a function of (store files,
scenario, seed). Each :meth:`Simulation.steps` item is the tick's emitted
messages — MQTT publishes in the vendors' formats and HTTP web-tracker events —
and its ground-truth records. No clock, no I/O: the shells in
:mod:`firmware_sim.shell` pace, publish and write.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from firmware_sim import formats
from firmware_sim.scenario import (
    ALL_CONSENTS,
    DeadAntenna,
    Reboot,
    Scenario,
    ShopperSpec,
    StaffMove,
)
from firmware_sim.store import StoreBundle
from vitrine.contracts.app_token import AppBeacon, token_of
from vitrine.contracts.catalogue import Product, Variant
from vitrine.contracts.layout import ReaderConfig

__all__ = ["EVENTS_PATH", "AppShopper", "Emission", "Simulation", "Step"]

#: Where web-tracker events go on the server (built by the server engineer).
EVENTS_PATH = "/v1/events"
#: Adult indoor walking speed while browsing (m/s).
WALK_SPEED = 1.0
#: Zebra heartbeat period on the management events interface.
HEARTBEAT_S = 60.0
#: At most this many events in one batched Zebra message.
ZEBRA_BATCH_MAX = 50
#: ETSI EN 302 208 channels (kHz), what an EU store's reader hops over.
ETSI_CHANNELS_KHZ = (865700, 866300, 866900, 867500)
#: 30 dBm conducted, the R700's maximum and a common store setting (centi-dBm).
IMPINJ_TX_CDBM = 3000
#: Phones rotate their random private address about every 15 min (Bluetooth Core
#: Vol 3 Part C §10.7, default ``TGAP(private_addr_int)``).
MAC_ROTATION_S = 900.0


@dataclass(frozen=True, slots=True)
class Emission:
    """One message as the device (or web tracker) sends it."""

    t: float
    at: datetime
    kind: Literal["mqtt", "http"]
    #: MQTT topic, or the HTTP path for ``http``.
    topic: str
    payload: bytes
    qos: int = 0
    #: ``segment`` / ``ga4`` / ``shopify`` for http; the reader/scanner id for mqtt.
    source: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    t: float
    emissions: tuple[Emission, ...]
    truth: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class AppShopper:
    """A shopper with the companion app, as the retailer's app backend knows them.

    What it would register with the server when they sign in
    (``POST /v1/admin/installs``, docs/server-api.md): the install and the secret
    keying its rotating token, who they are online, and their consents.
    """

    pid: str
    arrive_s: float
    #: A UUID derived from the secret: stable for a seed, so a re-run is a repeat.
    install_id: str
    secret: bytes = field(repr=False)
    #: ``namespace:value`` keys, as ``POST /v1/events`` resolves the shopper's web events.
    keys: tuple[str, ...] = field(repr=False)
    #: Every purpose with the shopper's answer in the app.
    consents: tuple[tuple[str, bool], ...]


@dataclass(slots=True)
class _Item:
    epc: str
    gtin: str
    rack: str | None
    x: float
    y: float
    holder: str | None = None  # person id carrying it
    sold: bool = False
    gone: bool = False
    zone: str | None = None
    antennas: list[tuple[int, int, float]] | None = None  # (reader idx, port, distance)


@dataclass(slots=True)
class _Person:
    pid: str
    role: Literal["shopper", "staff"]
    path: list[tuple[float, float, float]]  # (t, x, y) keypoints
    actions: list[tuple[float, str, dict[str, Any]]]
    app: bool = False
    secret: bytes = b""
    consents: tuple[str, ...] = ()
    mac_seed: int = 0
    zone: str | None = None
    carrying: list[str] = field(default_factory=list)
    slots: dict[int, str] = field(default_factory=dict)
    done: bool = False

    @property
    def start(self) -> float:
        return self.path[0][0]

    @property
    def end(self) -> float:
        return self.path[-1][0]

    def position(self, t: float) -> tuple[float, float]:
        path = self.path
        if t <= path[0][0]:
            return path[0][1], path[0][2]
        for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(path):
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        return path[-1][1], path[-1][2]


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


class Simulation:
    """A store, a scenario and a seed; iterate :meth:`steps` to run it."""

    def __init__(
        self,
        bundle: StoreBundle,
        scenario: Scenario,
        seed: int,
        *,
        phone_clock_rate: float = 1.0,
    ) -> None:
        """``phone_clock_rate``: phone-clock seconds per simulated second, for the app's
        rotating token only. 1 (the default) is the simulated world's own time. A live
        run paced at ``--speed N`` against a gateway that stamps facts with the wall
        clock sets ``1/N``: the phones' tokens then rotate on the wall clock too, the
        clock the server resolves them against."""
        self.bundle = bundle
        self.phone_clock_rate = phone_clock_rate
        self.scenario = scenario
        self.seed = seed
        self.layout = bundle.layout
        self.tz = ZoneInfo(self.layout.store.timezone)
        self.radio = scenario.radio
        self._rng = random.Random(f"vitrine-sim:{seed}:{scenario.name}:physics")
        self._plan_rng = random.Random(f"vitrine-sim:{seed}:{scenario.name}:people")
        self._variants = bundle.variant_by_gtin()
        self._by_sku = {v.sku: (p, v) for p, v in bundle.catalogue.variants()}
        self._racks = {r.id: r for r in self.layout.racks}
        self._readers: list[ReaderConfig] = sorted(self.layout.readers, key=lambda r: r.id)
        self.items: dict[str, _Item] = {}
        for it in bundle.stock.items:
            rx, ry = self._racks[it.rack].position
            jx, jy = self._jitter(it.epc)
            self.items[it.epc] = _Item(it.epc, it.gtin, it.rack, rx + jx, ry + jy)
        self._item_order = sorted(self.items)
        self.people: list[_Person] = []
        self._online: list[tuple[float, str, dict[str, Any]]] = []
        self._event_num = {r.id: 0 for r in self._readers}
        self._mgmt_num = {r.id: 0 for r in self._readers}
        self._last_report: dict[tuple[str, int, str], float] = {}
        self._seen: dict[tuple[str, int, str], int] = {}
        self._truth_people: list[dict[str, Any]] = []
        self._app_shoppers: list[AppShopper] = []
        self._plan_people()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _jitter(epc: str) -> tuple[float, float]:
        """A fixed offset (±0.4 m) of an item from its rack centre: hangers spread out."""
        h = hashlib.sha256(epc.encode()).digest()
        return (h[0] / 255 - 0.5) * 0.8, (h[1] / 255 - 0.5) * 0.8

    def _at(self, t: float) -> datetime:
        return (self.scenario.start + timedelta(seconds=t)).astimezone(self.tz)

    def _zone_of(self, x: float, y: float) -> str | None:
        for z in self.layout.zones:
            if z.area.contains(x, y):
                return z.id
        return None

    def _zone_point(self, zone_id: str, rng: random.Random) -> tuple[float, float]:
        a = self.layout.zone(zone_id).area
        return (a.x + a.w * (0.25 + 0.5 * rng.random()), a.y + a.h * (0.25 + 0.5 * rng.random()))

    def _zones_of_type(self, kind: str) -> list[str]:
        return [z.id for z in self.layout.zones if z.type.value == kind]

    # ------------------------------------------------------------------ planning
    def _plan_people(self) -> None:
        sc = self.scenario
        rng = self._plan_rng
        specs: list[ShopperSpec] = list(sc.shoppers)
        t = 0.0
        n = 0
        if sc.arrivals.per_minute > 0:
            while True:
                t += rng.expovariate(sc.arrivals.per_minute / 60.0)
                if t > sc.arrivals.until_s:
                    break
                n += 1
                app = rng.random() < sc.arrivals.app_share
                consents = ALL_CONSENTS if rng.random() < sc.arrivals.consent_share else ()
                variants = self.bundle.catalogue.variants()
                viewed = tuple(
                    variants[rng.randrange(len(variants))][1].sku for _ in range(rng.randint(0, 2))
                )
                specs.append(
                    ShopperSpec(
                        name=f"random-{n:03d}",
                        arrive_s=round(t, 3),
                        app=app,
                        consents=consents,
                        viewed=viewed,
                    )
                )
        specs.sort(key=lambda s: (s.arrive_s, s.name))
        for index, spec in enumerate(specs):
            self._plan_shopper(index, spec)
        for index, move in enumerate(sc.staff):
            self._plan_staff(index, move)

    def _walk(self, path: list[tuple[float, float, float]], x: float, y: float) -> float:
        t0, x0, y0 = path[-1]
        t1 = t0 + math.hypot(x - x0, y - y0) / WALK_SPEED
        path.append((t1, x, y))
        return t1

    def _dwell(self, path: list[tuple[float, float, float]], seconds: float) -> float:
        t0, x0, y0 = path[-1]
        path.append((t0 + seconds, x0, y0))
        return t0 + seconds

    def _plan_shopper(self, index: int, spec: ShopperSpec) -> None:
        rng = random.Random(f"vitrine-sim:{self.seed}:shopper:{index}:{spec.name}")
        pid = f"shopper-{index + 1:03d}"
        ex, ey = self._zone_point("entrance", rng) if self._has_zone("entrance") else (0.0, 0.0)
        path: list[tuple[float, float, float]] = [(spec.arrive_s, ex, ey)]
        actions: list[tuple[float, str, dict[str, Any]]] = []
        self._dwell(path, rng.uniform(3, 8))
        viewed = [self._by_sku[s] for s in spec.viewed if s in self._by_sku]
        wanted_gtins = [v.gtin for _, v in viewed]
        # Racks to visit: those holding the viewed products first, then browsing.
        floor_racks = [
            r.id for r in self.layout.racks if self.layout.zone(r.zone).type.value == "sales_floor"
        ]
        targets: list[tuple[str, str | None]] = []
        for product, variant in viewed:
            rack = self._home_rack(product)
            if rack is not None:
                targets.append((rack, variant.gtin))
        for _ in range(rng.randint(1, 3) if not targets else rng.randint(0, 1)):
            targets.append((floor_racks[rng.randrange(len(floor_racks))], None))
        slot = 0
        slot_plans: list[tuple[int, str, bool]] = []  # (slot, home rack, keep)
        for rack_id, gtin in targets:
            rx, ry = self._racks[rack_id].position
            t = self._walk(path, rx + rng.uniform(-0.6, 0.6), ry - 0.8)
            dwell = rng.uniform(20, 60) + (spec.waits_s if gtin else 0.0)
            # Pick near the end of the dwell, so a staff member bringing the size has time.
            picks = 1 if gtin else (1 if rng.random() < 0.6 else 0)
            for _ in range(picks):
                actions.append(
                    (
                        t + dwell * 0.9,
                        "pick",
                        {"rack": rack_id, "gtin": gtin, "slot": slot},
                    )
                )
                keep = (gtin is not None and spec.buys_viewed) or rng.random() < 0.5
                slot_plans.append((slot, rack_id, keep))
                slot += 1
            self._dwell(path, dwell)
        rooms = self._zones_of_type("fitting_room")
        if slot_plans and rooms and rng.random() < 0.8:
            room = rooms[index % len(rooms)]
            fx, fy = self.layout.zone(room).area.centre
            t = self._walk(path, fx, fy)
            actions.append((t + 1, "try", {"zone": room}))
            self._dwell(path, rng.uniform(60, 150))
        for s, rack_id, keep in slot_plans:
            if not keep:
                rx, ry = self._racks[rack_id].position
                t = self._walk(path, rx, ry - 0.8)
                actions.append((t + 2, "put_back", {"slot": s, "rack": rack_id}))
                self._dwell(path, rng.uniform(3, 10))
        if any(keep for _, _, keep in slot_plans) and self._has_zone("till"):
            tx, ty = self.layout.zone("till").area.centre
            till_x = tx
            t = self._walk(path, till_x, ty)
            pay = rng.uniform(30, 60)
            actions.append((t + pay * 0.8, "buy", {}))
            self._dwell(path, pay)
        if self._has_zone("exit"):
            x, y = self._zone_point("exit", rng)
            t = self._walk(path, x, y)
            self._dwell(path, 2.0)
        actions.append((path[-1][0], "leave", {}))
        secret = hashlib.sha256(f"vitrine-sim:{self.seed}:install:{pid}".encode()).digest()
        person = _Person(
            pid=pid,
            role="shopper",
            path=path,
            actions=actions,
            app=spec.app,
            secret=secret if spec.app else b"",
            consents=tuple(spec.consents) if spec.app else (),
            mac_seed=rng.getrandbits(32),
        )
        self.people.append(person)
        customer = f"cust-{hashlib.sha256(secret + b'customer').hexdigest()[:12]}"
        ga4_client = f"{rng.randint(10**8, 10**9 - 1)}.{rng.randint(10**8, 10**9 - 1)}"
        shopify_client = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        anonymous = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self._truth_people.append(
            {
                "kind": "shopper",
                "t": spec.arrive_s,
                "shopper": pid,
                "name": spec.name,
                "app": spec.app,
                "consents": list(person.consents),
                # The install secret is simulated, and needed to join the rotating
                # tokens the scanners report with this shopper.
                "install_secret_hex": secret.hex() if spec.app else None,
                "customer_id": customer,
                "segment_anonymous_id": anonymous,
                "ga4_client_id": ga4_client,
                "shopify_client_id": shopify_client,
                "viewed": list(spec.viewed),
                "wanted_gtins": wanted_gtins,
                "leaves_s": round(path[-1][0], 3),
            }
        )
        if spec.app:
            self._app_shoppers.append(
                AppShopper(
                    pid=pid,
                    arrive_s=spec.arrive_s,
                    install_id=str(
                        uuid.UUID(
                            bytes=hashlib.sha256(secret + b"install").digest()[:16], version=4
                        )
                    ),
                    secret=secret,
                    keys=(
                        f"userId:{customer}",
                        f"anonymousId:{anonymous}",
                        f"client_id:{ga4_client}",
                        f"shopify_client_id:{shopify_client}",
                    ),
                    consents=tuple((c, c in person.consents) for c in ALL_CONSENTS),
                )
            )
        self._plan_online(rng, spec, customer, anonymous, ga4_client, shopify_client, path)

    def _plan_online(
        self,
        rng: random.Random,
        spec: ShopperSpec,
        customer: str,
        anonymous: str,
        ga4_client: str,
        shopify_client: str,
        path: list[tuple[float, float, float]],
    ) -> None:
        """Online views: the ``viewed`` SKUs (and a few more) before, some after the visit."""
        sc = self.scenario
        variants = self.bundle.catalogue.variants()
        before = [self._by_sku[s] for s in spec.viewed if s in self._by_sku]
        for _ in range(max(0, sc.online_views_before - len(before))):
            before.append(variants[rng.randrange(len(variants))])
        ids = {"customer": customer, "anonymous": anonymous, "ga4": ga4_client}
        ids["shopify"] = shopify_client
        for n, (product, variant) in enumerate(before):
            # Viewed in the days before; sent at second 0 with their own timestamps.
            viewed_at = spec.arrive_s - rng.uniform(3600, 5 * 86400)
            self._online.append(
                (0.0, "view", {"ids": ids, "p": product, "v": variant, "at": viewed_at, "n": n})
            )
        if rng.random() < sc.online_after_share and before:
            product, variant = before[rng.randrange(len(before))]
            after = path[-1][0] + rng.uniform(30, 300)
            self._online.append(
                (after, "view", {"ids": ids, "p": product, "v": variant, "at": after, "n": 99})
            )

    def app_shoppers(self) -> tuple[AppShopper, ...]:
        """The run's shoppers with the app, by arrival (for registering them with a server)."""
        return tuple(sorted(self._app_shoppers, key=lambda a: (a.arrive_s, a.pid)))

    def _has_zone(self, zone_id: str) -> bool:
        return any(z.id == zone_id for z in self.layout.zones)

    def _home_rack(self, product: Product) -> str | None:
        """The sales-floor rack where this product's items hang at the start."""
        gtins = {v.gtin for v in product.variants}
        for epc in self._item_order:
            item = self.items[epc]
            if item.gtin in gtins and item.rack is not None:
                rack = self._racks[item.rack]
                if self.layout.zone(rack.zone).type.value == "sales_floor":
                    return rack.id
        return None

    def _plan_staff(self, index: int, move: StaffMove) -> None:
        pid = f"staff-{index + 1:02d}"
        a = self._racks[move.from_rack].position
        b = self._racks[move.to_rack].position
        path: list[tuple[float, float, float]] = [(move.at_s, a[0], a[1] - 0.8)]
        actions: list[tuple[float, str, dict[str, Any]]] = []
        actions.append(
            (move.at_s + 5, "take", {"sku": move.sku, "count": move.count, "rack": move.from_rack})
        )
        self._dwell(path, 10)
        t = self._walk(path, b[0], b[1] - 0.8)
        actions.append((t + 5, "hang", {"rack": move.to_rack}))
        self._dwell(path, 15)
        actions.append((path[-1][0], "leave", {}))
        self.people.append(_Person(pid=pid, role="staff", path=path, actions=actions))

    # ------------------------------------------------------------------ running
    def steps(self) -> Iterator[Step]:
        sc = self.scenario
        n_ticks = math.floor(sc.duration_s / sc.tick_s + 1e-9)
        pending = sorted(
            ((a[0], i, j) for i, p in enumerate(self.people) for j, a in enumerate(p.actions)),
        )
        online = sorted(self._online, key=lambda o: (o[0], o[2]["ids"]["customer"], o[2]["n"]))
        reboots = {f.reader: f for f in sc.faults if isinstance(f, Reboot)}
        dead = [f for f in sc.faults if isinstance(f, DeadAntenna)]
        truth0: list[dict[str, Any]] = [
            {
                "kind": "scenario",
                "t": 0.0,
                "name": sc.name,
                "seed": self.seed,
                "start": sc.start.isoformat(),
                "store": self.layout.store.id,
            },
        ]
        truth0.extend(self._truth_people)
        for epc in self._item_order:
            item = self.items[epc]
            item.zone = self._zone_of(item.x, item.y)
            truth0.append(self._item_truth(0.0, item, "initial"))
        ai = 0
        oi = 0
        down: set[str] = set()
        dead_now: set[tuple[str, int]] = set()
        for k in range(n_ticks + 1):
            t = round(k * sc.tick_s, 6)
            em: list[Emission] = []
            tr: list[dict[str, Any]] = truth0 if k == 0 else []
            # Faults.
            for reader_id, rb in sorted(reboots.items()):
                if rb.at_s <= t < rb.at_s + rb.down_s and reader_id not in down:
                    down.add(reader_id)
                    tr.append(
                        {
                            "kind": "fault",
                            "t": t,
                            "fault": "reboot",
                            "reader": reader_id,
                            "state": "down",
                        }
                    )
                elif t >= rb.at_s + rb.down_s and reader_id in down:
                    down.discard(reader_id)
                    self._event_num[reader_id] = 0  # eventNum restarts after a reboot
                    self._mgmt_num[reader_id] = 0
                    for key in [key for key in self._last_report if key[0] == reader_id]:
                        del self._last_report[key]
                    tr.append(
                        {
                            "kind": "fault",
                            "t": t,
                            "fault": "reboot",
                            "reader": reader_id,
                            "state": "up",
                        }
                    )
            for f in dead:
                port_key = (f.reader, f.port)
                active = f.from_s <= t and (f.until_s is None or t < f.until_s)
                if active and port_key not in dead_now:
                    dead_now.add(port_key)
                    tr.append(
                        {
                            "kind": "fault",
                            "t": t,
                            "fault": "dead_antenna",
                            "reader": f.reader,
                            "port": f.port,
                            "state": "dead",
                        }
                    )
                    em.extend(self._antenna_event(t, f.reader, f.port, False))
                elif not active and port_key in dead_now:
                    dead_now.discard(port_key)
                    tr.append(
                        {
                            "kind": "fault",
                            "t": t,
                            "fault": "dead_antenna",
                            "reader": f.reader,
                            "port": f.port,
                            "state": "alive",
                        }
                    )
                    em.extend(self._antenna_event(t, f.reader, f.port, True))
            # People act.
            while ai < len(pending) and pending[ai][0] <= t:
                _, i, j = pending[ai]
                ai += 1
                tr.extend(self._act(t, self.people[i], self.people[i].actions[j]))
            # People move.
            for person in self.people:
                if person.done or t < person.start:
                    continue
                x, y = person.position(t)
                zone = self._zone_of(x, y)
                if zone != person.zone:
                    person.zone = zone
                    if person.role == "shopper":
                        tr.append(
                            {"kind": "shopper_zone", "t": t, "shopper": person.pid, "zone": zone}
                        )
                for epc in person.carrying:
                    item = self.items[epc]
                    item.x, item.y, item.antennas = x, y, None
                    if item.zone != zone:
                        item.zone = zone
                        tr.append(self._item_truth(t, item, "carried"))
            # Radios.
            em.extend(self._rfid(t, down, dead_now))
            em.extend(self._ble(t))
            if k % int(max(1, HEARTBEAT_S / sc.tick_s)) == 0:
                em.extend(self._heartbeats(t, down))
            while oi < len(online) and online[oi][0] <= t:
                em.extend(self._online_view(t, online[oi][2], tr))
                oi += 1
            yield Step(t, tuple(em), tuple(tr))

    def _item_truth(self, t: float, item: _Item, why: str) -> dict[str, Any]:
        return {
            "kind": "item",
            "t": t,
            "epc": item.epc,
            "gtin": item.gtin,
            "zone": None if item.gone else item.zone,
            "rack": item.rack,
            "holder": item.holder,
            "sold": item.sold,
            "gone": item.gone,
            "why": why,
        }

    def _place(self, item: _Item, rack_id: str) -> None:
        rx, ry = self._racks[rack_id].position
        jx, jy = self._jitter(item.epc)
        item.rack, item.holder, item.antennas = rack_id, None, None
        item.x, item.y = rx + jx, ry + jy
        item.zone = self._zone_of(item.x, item.y)

    def _act(
        self, t: float, person: _Person, action: tuple[float, str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        _, verb, args = action
        out: list[dict[str, Any]] = []

        def interaction(kind: str, item: _Item, **extra: Any) -> None:
            out.append(
                {
                    "kind": "interaction",
                    "t": t,
                    "interaction": kind,
                    "shopper": person.pid,
                    "epc": item.epc,
                    "gtin": item.gtin,
                    "zone": person.zone,
                    **extra,
                }
            )

        if verb == "pick":
            rack = args["rack"]
            gtin = args["gtin"]
            on_rack = [
                e
                for e in self._item_order
                if self.items[e].rack == rack
                and self.items[e].holder is None
                and not self.items[e].sold
            ]
            choice = [e for e in on_rack if self.items[e].gtin == gtin] if gtin else on_rack
            if gtin and not choice:
                out.append(
                    {
                        "kind": "interaction",
                        "t": t,
                        "interaction": "not_found",
                        "shopper": person.pid,
                        "gtin": gtin,
                        "rack": rack,
                    }
                )
                return out
            if not choice:
                return out
            rng = random.Random(f"vitrine-sim:{self.seed}:{person.pid}:{t}")
            epc = choice[rng.randrange(len(choice))]
            item = self.items[epc]
            item.rack, item.holder, item.antennas = None, person.pid, None
            person.carrying.append(epc)
            person.slots[args["slot"]] = epc
            interaction("picked", item, rack=rack)
            out.append(self._item_truth(t, item, "picked"))
        elif verb == "try":
            for epc in person.carrying:
                interaction("tried", self.items[epc])
        elif verb == "put_back":
            epc = person.slots.pop(args["slot"], "")
            if epc in person.carrying:
                person.carrying.remove(epc)
                item = self.items[epc]
                self._place(item, args["rack"])
                interaction("put_back", item, rack=args["rack"])
                out.append(self._item_truth(t, item, "put_back"))
        elif verb == "buy":
            for epc in person.carrying:
                item = self.items[epc]
                item.sold = True
                interaction("bought", item)
                out.append(self._item_truth(t, item, "bought"))
        elif verb == "take":
            _, variant = self._by_sku[args["sku"]]
            taken = 0
            for epc in self._item_order:
                item = self.items[epc]
                if (
                    taken < args["count"]
                    and item.rack == args["rack"]
                    and item.gtin == variant.gtin
                ):
                    item.rack, item.holder, item.antennas = None, person.pid, None
                    person.carrying.append(epc)
                    out.append(self._item_truth(t, item, "staff_take"))
                    taken += 1
        elif verb == "hang":
            for epc in person.carrying:
                item = self.items[epc]
                self._place(item, args["rack"])
                out.append(self._item_truth(t, item, "staff_hang"))
            person.carrying.clear()
        elif verb == "leave":
            for epc in person.carrying:
                item = self.items[epc]
                item.gone, item.holder, item.antennas = True, None, None
                out.append(self._item_truth(t, item, "left_store"))
            person.carrying.clear()
            person.done = True
            person.zone = None
            if person.role == "shopper":
                out.append({"kind": "shopper_zone", "t": t, "shopper": person.pid, "zone": None})
        return out

    # ------------------------------------------------------------------ RFID
    def _antennas_for(self, item: _Item) -> list[tuple[int, int, float]]:
        if item.antennas is None:
            found: list[tuple[int, int, float]] = []
            for ri, reader in enumerate(self._readers):
                for ant in reader.antennas:
                    d = math.hypot(item.x - ant.position[0], item.y - ant.position[1])
                    if d <= ant.range_m:
                        found.append((ri, ant.port, d))
            item.antennas = found
        return item.antennas

    def _rfid(self, t: float, down: set[str], dead: set[tuple[str, int]]) -> list[Emission]:
        radio = self.radio
        rng = self._rng
        in_field: dict[tuple[int, int], list[tuple[str, float]]] = {}
        for epc in self._item_order:
            item = self.items[epc]
            if item.gone:
                continue
            for ri, port, d in self._antennas_for(item):
                in_field.setdefault((ri, port), []).append((epc, d))
        per_reader: dict[int, list[tuple[str, int, float]]] = {}
        for (ri, port), tags in sorted(in_field.items()):
            reader = self._readers[ri]
            if reader.id in down or (reader.id, port) in dead:
                continue
            rng_m = next(a.range_m for a in reader.antennas if a.port == port)
            density = 1.0 / (1.0 + len(tags) / radio.rfid_density_half)
            interval = self.scenario.reader(reader.id).report_interval_s
            for epc, d in tags:
                p = radio.rfid_p_max * density * (1.0 - (d / rng_m) ** 4)
                if rng.random() >= p:
                    continue
                key = (reader.id, port, epc)
                self._seen[key] = self._seen.get(key, 0) + 1
                last = self._last_report.get(key)
                if last is not None and t - last < interval - 1e-9:
                    continue
                self._last_report[key] = t
                per_reader.setdefault(ri, []).append((epc, port, d))
        out: list[Emission] = []
        for ri in sorted(per_reader):
            reader = self._readers[ri]
            reads = per_reader[ri]
            if reader.format == "impinj":
                out.extend(self._impinj(t, reader, reads))
            else:
                out.extend(self._zebra(t, reader, reads))
        return out

    def _rssi(self, d: float) -> float:
        r = self.radio
        return (
            r.rfid_rssi_at_1m
            - r.rfid_rssi_exponent * math.log10(max(d, 0.2))
            + self._rng.gauss(0.0, r.rfid_sigma_db)
        )

    def _zebra(
        self, t: float, reader: ReaderConfig, reads: list[tuple[str, int, float]]
    ) -> list[Emission]:
        setup = self.scenario.reader(reader.id)
        events: list[dict[str, Any]] = []
        for epc, port, d in reads:
            self._event_num[reader.id] += 1
            at = self._at(t + self._rng.random() * self.scenario.tick_s * 0.999)
            seen = self._seen.pop((reader.id, port, epc), 1)
            events.append(
                formats.zebra_tag_event(
                    setup.mode,
                    self._event_num[reader.id],
                    epc,
                    at,
                    antenna=port,
                    peak_rssi=round(self._rssi(d)),
                    reads=seen,
                )
            )
        at = self._at(t)
        if setup.batching:
            return [
                Emission(
                    t,
                    at,
                    "mqtt",
                    reader.topic,
                    _dumps(events[i : i + ZEBRA_BATCH_MAX]),
                    self.scenario.qos,
                    reader.id,
                )
                for i in range(0, len(events), ZEBRA_BATCH_MAX)
            ]
        return [
            Emission(t, at, "mqtt", reader.topic, _dumps(e), self.scenario.qos, reader.id)
            for e in events
        ]

    def _impinj(
        self, t: float, reader: ReaderConfig, reads: list[tuple[str, int, float]]
    ) -> list[Emission]:
        setup = self.scenario.reader(reader.id)
        limit = setup.events_per_second_limit * self.scenario.tick_s
        out: list[Emission] = []
        host = f"impinj-{hashlib.sha256(reader.id.encode()).hexdigest()[:6]}"
        kept = reads if not limit else reads[: int(limit)]
        for epc, port, d in kept:
            at = self._at(t + self._rng.random() * self.scenario.tick_s * 0.999)
            self._seen.pop((reader.id, port, epc), None)
            tid = "E2801190" + hashlib.sha256(epc.encode()).hexdigest()[:16].upper()
            doc = formats.impinj_tag_event(
                host,
                at,
                epc,
                tid,
                antenna_port=port,
                peak_rssi_cdbm=round(self._rssi(d) * 100),
                frequency_khz=ETSI_CHANNELS_KHZ[self._rng.randrange(len(ETSI_CHANNELS_KHZ))],
                transmit_power_cdbm=IMPINJ_TX_CDBM,
            )
            out.append(
                Emission(t, at, "mqtt", reader.topic, _dumps(doc), self.scenario.qos, reader.id)
            )
        purged = len(reads) - len(kept)
        if purged:
            doc = formats.impinj_overflow_event(
                host, self._at(t + 0.999), self._at(t), self._at(t + 0.999), purged, 0
            )
            out.append(
                Emission(
                    t, self._at(t), "mqtt", reader.topic, _dumps(doc), self.scenario.qos, reader.id
                )
            )
        return out

    def _antenna_event(
        self, t: float, reader_id: str, port: int, connected: bool
    ) -> list[Emission]:
        reader = next(r for r in self._readers if r.id == reader_id)
        if reader.format != "impinj":
            return []  # Zebra reports antenna faults in management events we have no sample of
        host = f"impinj-{hashlib.sha256(reader.id.encode()).hexdigest()[:6]}"
        doc = formats.impinj_antenna_event(host, self._at(t), port, connected)
        return [
            Emission(
                t, self._at(t), "mqtt", reader.topic, _dumps(doc), self.scenario.qos, reader.id
            )
        ]

    def _heartbeats(self, t: float, down: set[str]) -> list[Emission]:
        out: list[Emission] = []
        for reader in self._readers:
            if reader.format != "zebra" or reader.id in down or not reader.management_topic:
                continue
            self._mgmt_num[reader.id] += 1
            doc = formats.zebra_heartbeat(self._mgmt_num[reader.id], self._at(t))
            out.append(
                Emission(
                    t,
                    self._at(t),
                    "mqtt",
                    reader.management_topic,
                    _dumps(doc),
                    self.scenario.qos,
                    reader.id,
                )
            )
        return out

    # ------------------------------------------------------------------ BLE
    def _ble(self, t: float) -> list[Emission]:
        radio = self.radio
        rng = self._rng
        epoch = self.scenario.start.timestamp() + t
        out: list[Emission] = []
        for person in self.people:
            if person.role != "shopper" or person.done or t < person.start:
                continue
            x, y = person.position(t)
            window = int((epoch + person.mac_seed % MAC_ROTATION_S) // MAC_ROTATION_S)
            mac_bytes = hashlib.sha256(
                f"{person.secret.hex()}:{person.pid}:{self.seed}:{window}".encode()
            ).digest()[:6]
            # Resolvable private address: the two top bits are 0b01 (Core Vol 6 Part B §1.3.2.2).
            mac = f"{(mac_bytes[0] & 0x3F) | 0x40:02x}" + mac_bytes[1:].hex()
            if person.app:
                phone_epoch = self.scenario.start.timestamp() + t * self.phone_clock_rate
                beacon = AppBeacon.for_token(
                    self.scenario.app_uuid, token_of(person.secret, phone_epoch)
                )
                device_id = f"iBeacon:{beacon.uuid}-{beacon.major}-{beacon.minor}"
                interval = radio.app_advertising_interval_ms
            else:
                device_id = mac
                interval = radio.other_advertising_interval_ms
            adverts = max(1, int(self.scenario.tick_s * 1000 // interval))
            for scanner in self.layout.scanners:
                d = max(0.1, math.hypot(x - scanner.position[0], y - scanner.position[1]))
                mean = radio.ble_rssi_at_1m - 10 * radio.ble_path_loss_n * math.log10(d)
                got = []
                for _ in range(adverts):
                    rssi = mean + rng.gauss(0.0, radio.ble_sigma_db)
                    if (
                        rng.random() < radio.ble_miss_probability
                        or rssi < radio.ble_sensitivity_dbm
                    ):
                        continue
                    got.append(rssi)
                if not got:
                    continue
                rssi = sum(got) / len(got)
                var = sum((g - rssi) ** 2 for g in got) / len(got)
                dist = 10 ** ((radio.ble_rssi_at_1m - rssi) / (10 * radio.espresense_absorption))
                if dist > radio.ble_max_distance_m:
                    continue
                doc = formats.espresense_payload(
                    device_id=device_id,
                    mac=mac,
                    rssi_at_1m=radio.ble_rssi_at_1m,
                    rssi=rssi,
                    rssi_var=var,
                    distance=dist,
                    var=dist * 0.1 * math.sqrt(var),
                    close=rssi > radio.ble_rssi_at_1m,
                    interval_ms=interval,
                )
                topic = formats.espresense_topic(
                    self.layout.espresense_prefix, device_id, scanner.room
                )
                out.append(
                    Emission(
                        t, self._at(t), "mqtt", topic, _dumps(doc), self.scenario.qos, scanner.id
                    )
                )
        return out

    # ------------------------------------------------------------------ online
    def _online_view(
        self, t: float, view: dict[str, Any], tr: list[dict[str, Any]]
    ) -> list[Emission]:
        product: Product = view["p"]
        variant: Variant = view["v"]
        ids = view["ids"]
        at = self.scenario.start + timedelta(seconds=view["at"])
        rng = random.Random(f"vitrine-sim:{self.seed}:online:{ids['customer']}:{view['n']}")
        doc = {
            "product_id": product.product_id,
            "variant_id": variant.variant_id,
            "sku": variant.sku,
            "category": product.category,
            "name": product.title,
            "brand": product.brand,
            "variant": f"{variant.size} / {variant.colour}",
            "price": str(variant.price),
            "currency": self.bundle.catalogue.currency,
            "url": product.url,
            "image_url": product.image_url,
        }
        payloads = [
            (
                "segment",
                formats.segment_product_viewed(
                    message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    user_id=ids["customer"],
                    anonymous_id=ids["anonymous"],
                    at=at,
                    product=doc,
                    currency_lower=rng.random() < 0.5,
                ),
            ),
            (
                "ga4",
                formats.ga4_view_item(
                    client_id=ids["ga4"],
                    user_id=ids["customer"],
                    at=at,
                    product=doc,
                    with_currency=rng.random() < 0.7,
                ),
            ),
            (
                "shopify",
                formats.shopify_product_viewed(
                    event_id=f"sh-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    client_id=ids["shopify"],
                    at=at,
                    product=doc,
                ),
            ),
        ]
        tr.append(
            {
                "kind": "online_view",
                "t": t,
                "customer_id": ids["customer"],
                "sku": variant.sku,
                "gtin": variant.gtin,
                "viewed_at": at.isoformat(),
                "after_visit": view["n"] == 99,
            }
        )
        return [
            Emission(t, self._at(t), "http", EVENTS_PATH, _dumps(p), 0, source)
            for source, p in payloads
        ]

"""The whole chain at a store's load: device message → … → the phone's WebSocket.

Real processes on one machine, one clock (``CLOCK_MONOTONIC``):

    vitrine sim load (10 readers × 200 reads/s per store, QoS 1)  ─┐
    python -m bench.phones (app phones' ESPresense reports, QoS 1) ─┤
        → Mosquitto → vitrine gateway run (one per store)
        → vitrine server ingest (engine → database → outbox → publisher)
        → vitrine mobile-api run → WebSocket clients (the phones, in this process)

Setup goes through the supported doors: the store layouts and the sample catalogue
by ``server.stores``/``server.catalogue`` services (what ``vitrine store import`` and
``vitrine catalogue import`` run), each phone signs in like the app
(``POST /v1/installs``, ``POST /v1/auth/login`` with the online store's identity
assertion, ``PUT /v1/me/consents/guidance``) and opens ``/v1/me/stream``; each
shopper's product view is ingested by ``server.ingest_web`` (``POST /v1/events``'s
service) so that walking in yields an arrival ``guidance`` with a card.

The measured latency is, per phone, the publish of the report that makes the
gateway decide ``shopper_entered`` (``bench.phones``) → the phone receiving the
``guidance`` event (``moment: arrival``) on its WebSocket. The floor is the bare
relay (``bench.relay``) offered the same readers and the same phone walk in the
same run, timed from the same trigger reports to its WebSocket sink.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import WsSink, forget_session, wait_for
from bench.phones import FLOOR_ROOM, TILL_ROOM, TRIGGER_AFTER_S
from bench.stats import percentile
from bench.workload import bench_layout
from firmware_sim.load import TAGS_PER_READER
from mobile_api.tokens import TokenSigner
from server.engine.rules import derived_id
from vitrine.contracts.topics import facts_subscription, shopper_out_subscription
from vitrine.runtime.broker import free_port
from vitrine.runtime.mqtt import make_client, parse_mqtt_url
from vitrine.runtime.supervise import Child, ProcessGroup, vitrine_command

__all__ = [
    "ChainResult",
    "FloorResult",
    "IdleSockets",
    "chain_run",
    "postgres_database",
    "relay_floor",
    "rss_mb",
    "store_layout",
]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "firmware_sim" / "data" / "catalogue.json"
#: The app's iBeacon proximity UUID for the run (``VITRINE_APP_BEACON_UUID``).
APP_UUID = "7b0f8a52-3c1d-4e6f-9a2b-5c4d3e2f1a0b"
IDENTITY_SECRET = "bench-identity-secret-not-for-production"  # noqa: S105 (local bench)
#: The sample catalogue's variant whose GTIN ``vitrine sim load``'s tags carry, so
#: the viewed product is on the floor once the readers have placed its items.
VIEW = {
    "sku": "LSX00-WHI-XS",
    "product_id": "7001000000",
    "variant_id": "41000000001",
    "name": "Linen shirt",
    "variant": "XS / white",
    "price": "49.90",
    "quantity": 1,
}
#: Phones per store (QUALITY.md / issue #9: one store = 10 readers + 100 phones).
PHONES_PER_STORE = 100
READERS_PER_STORE = 10
READS_PER_S = 200.0
#: Concurrent sign-ins / socket opens: enough to keep the API busy, few enough not
#: to time out on a 2-core machine.
CONCURRENCY = 16
#: After the walk: how long a late push may still arrive before it counts as lost
#: (the wait ends as soon as every push is in). Late pushes count in the
#: percentiles; 30 s is long enough for an ingest still busy with the opening's
#: item facts (the smoke test walks in without warming up) to deliver.
GRACE_S = 30.0
#: The item facts of the load's first seconds (its ``TAGS_PER_READER`` tags arrive
#: in every store) are the store's opening, not its steady state: the phones start
#: once the database holds that many processed facts and has seen no new one for
#: ``SETTLED_S`` (at most ``WARMUP_BASE_S`` + ``WARMUP_PER_STORE_S`` per store).
SETTLED_S = 2.0
#: The ingest committed 26-110 item facts/s on the shared 2-core machine
#: (docs/performance.md), so a store's 500-tag opening takes 5-20 s; the cap
#: leaves room for a busy hour.
WARMUP_BASE_S = 60.0
WARMUP_PER_STORE_S = 20.0


def store_id(s: int) -> str:
    return f"bench-s{s}"


def store_layout(s: int, readers: int) -> dict[str, Any]:
    """Store ``s`` as ``vitrine sim load`` offers it, with the phones' two scanners."""
    return bench_layout(
        store_id(s),
        s,
        readers,
        espresense_prefix=f"esp-s{s}",
        scanners=[
            {"id": "scan-floor", "room": FLOOR_ROOM, "zone": "floor", "position": [2, 2]},
            {"id": "scan-till", "room": TILL_ROOM, "zone": "till", "position": [12, 2]},
        ],
    )


def rss_mb(pid: int) -> float | None:
    """Resident set size from ``/proc/<pid>/status`` (``VmRSS``), MB; None once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server ``admin_url`` names, dropped afterwards."""
    base = make_url(admin_url)
    name = f"vitrine_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# ------------------------------------------------------------------ phones (this process)


@dataclass(frozen=True, slots=True)
class Account:
    index: int
    store: int
    secret_b64: str
    access_token: str


class Fleet:
    """Phones' HTTP sign-in and WebSocket clients on one asyncio loop in a thread."""

    def __init__(self, http_base: str) -> None:
        self.http_base = http_base
        self.ws_url = http_base.replace("http://", "ws://") + "/v1/me/stream"
        self.arrivals: dict[int, float] = {}
        self.events: dict[str, int] = {}
        self.ready = 0
        self.closed_early = 0
        self._conns: list[ClientConnection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def sign_in_all(self, stores: int, per_store: int) -> list[Account]:
        gate = asyncio.Semaphore(CONCURRENCY)
        signer = TokenSigner(IDENTITY_SECRET.encode(), time.time)
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=self.http_base, limits=limits, timeout=60) as http:

            async def one(index: int) -> Account:
                async with gate:
                    store = index % stores
                    install = (await http.post("/v1/installs")).raise_for_status().json()
                    identity = signer.issue("identity", web_user(store, index), 600)
                    body = {
                        "install_id": install["install_id"],
                        "install_secret": install["secret"],
                        "identity": identity,
                    }
                    tokens = (await http.post("/v1/auth/login", json=body)).raise_for_status()
                    access = tokens.json()["access_token"]
                    headers = {"Authorization": f"Bearer {access}"}
                    consent = await http.put(
                        "/v1/me/consents/guidance", json={"granted": True}, headers=headers
                    )
                    consent.raise_for_status()
                    return Account(index, store, install["secret"], access)

            return list(await asyncio.gather(*(one(i) for i in range(stores * per_store))))

    async def open_all(self, accounts: list[tuple[int, str]], watch: bool) -> None:
        """One authenticated socket per ``(index, token)``; ``watch`` records arrivals."""
        gate = asyncio.Semaphore(CONCURRENCY)
        started = self.ready

        async def one(index: int, token: str) -> None:
            async with gate:
                ws = await connect(self.ws_url, open_timeout=60, max_size=None)
                await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
                hello = orjson.loads(await ws.recv())
                if hello.get("type") not in ("ready", "reset"):
                    raise RuntimeError(f"unexpected first frame {hello.get('type')!r}")
                self._conns.append(ws)
                self.ready += 1
                self._tasks.append(asyncio.create_task(self._listen(index, ws, watch)))

        await asyncio.gather(*(one(i, t) for i, t in accounts))
        if self.ready - started != len(accounts):
            raise RuntimeError("not every socket became ready")

    async def _listen(self, index: int, ws: ClientConnection, watch: bool) -> None:
        try:
            async for frame in ws:
                now = time.monotonic()
                doc = orjson.loads(frame)
                if doc.get("type") != "event":
                    continue
                event = doc.get("event") or {}
                kind = str(event.get("kind"))
                self.events[kind] = self.events.get(kind, 0) + 1
                if (
                    watch
                    and kind == "guidance"
                    and event.get("moment") == "arrival"
                    and index not in self.arrivals
                ):
                    self.arrivals[index] = now
        except Exception:  # a closed socket ends its listener; counted, not fatal
            self.closed_early += 1

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self._conns), return_exceptions=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._close(), 60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


def web_user(store: int, index: int) -> str:
    """A synthetic web user id (no real shopper's identifier anywhere in the bench)."""
    return f"bench-shopper-{store}-{index}"


# ------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class Latency:
    expected: int
    received: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def lost(self) -> int:
        return self.expected - self.received


def summarise(triggers: dict[int, float], got: dict[int, float]) -> Latency:
    lat = sorted((got[i] - t) * 1000 for i, t in triggers.items() if i in got)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    return Latency(
        expected=len(triggers),
        received=len(lat),
        p50_ms=None if p50 is None else round(p50, 2),
        p99_ms=None if p99 is None else round(p99, 2),
        max_ms=round(lat[-1], 2) if lat else None,
    )


@dataclass(frozen=True, slots=True)
class IdleSockets:
    sockets: int
    rss_before_mb: float | None
    rss_after_mb: float | None

    @property
    def kb_per_socket(self) -> float | None:
        if self.rss_before_mb is None or self.rss_after_mb is None or not self.sockets:
            return None
        return round((self.rss_after_mb - self.rss_before_mb) * 1024 / self.sockets, 1)


@dataclass(frozen=True, slots=True)
class ChainResult:
    backend: str
    stores: int
    phones: int
    seconds: float
    latency: Latency
    ble_msgs_per_s: float
    setup_s: float
    warmup_s: float
    opening_facts: int
    #: False when the cap ran out before the ingest had absorbed the opening.
    warmup_complete: bool
    rss_mb: dict[str, float | None]
    phone_sockets: IdleSockets
    extra_idle: IdleSockets | None
    legs: dict[str, Latency]
    events: dict[str, int] = field(default_factory=dict)
    closed_early: int = 0


@dataclass(frozen=True, slots=True)
class FloorResult:
    stores: int
    latency: Latency
    ble_msgs_per_s: float


class LegTap:
    """Where the time goes: the ``shopper_entered`` fact and the outbox's ``guidance``
    message on the bus, matched to a phone by its token and the visit id the engine
    derives from the fact's ``event_id`` (``server.engine.rules.derived_id``)."""

    def __init__(self, mqtt_url: str) -> None:
        self.facts: dict[str, tuple[str, float]] = {}  # token → (visit id, time)
        self.pushes: dict[str, float] = {}  # visit id → time
        self._lock = threading.Lock()
        subscribed = threading.Event()
        target = parse_mqtt_url(mqtt_url)
        self.client, props = make_client(f"bench-legs-{uuid.uuid4().hex[:8]}", target)
        filters = [
            (facts_subscription(), 1),
            (shopper_out_subscription(), 1),
        ]
        self.client.on_connect = lambda c, *_: c.subscribe(filters)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(target.host, target.port, properties=props)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("leg tap never subscribed")

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        doc = orjson.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/facts/shopper_entered"):
                token = str(doc.get("device"))
                if token not in self.facts:
                    self.facts[token] = (derived_id(doc["event_id"], "visit"), now)
            elif doc.get("kind") == "guidance" and doc.get("moment") == "arrival":
                self.pushes.setdefault(str(doc.get("visit_id")), now)

    def legs(
        self, triggers: dict[int, float], tokens: dict[str, int], phones: dict[int, float]
    ) -> dict[str, Latency]:
        with self._lock:
            facts, pushes = dict(self.facts), dict(self.pushes)
        at_fact: dict[int, float] = {}
        at_push: dict[int, float] = {}
        for token, (visit, t) in facts.items():
            if token in tokens:
                at_fact[tokens[token]] = t
                if visit in pushes:
                    at_push[tokens[token]] = pushes[visit]
        return {
            "gateway": summarise(triggers, at_fact),
            "server": summarise(at_fact, {i: t for i, t in at_push.items() if i in at_fact}),
            "mobile_api": summarise(at_push, {i: t for i, t in phones.items() if i in at_push}),
        }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------ processes


def _http_ready(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def _load(group: ProcessGroup, mqtt_url: str, stores: int, seconds: float) -> Child:
    return group.start(
        "load",
        vitrine_command(
            "sim",
            "load",
            "--stores",
            str(stores),
            "--readers",
            str(READERS_PER_STORE),
            "--reads-per-second",
            str(READS_PER_S),
            "--phones",
            "0",
            "--duration",
            str(seconds),
            "--qos",
            "1",
            "--mqtt-url",
            mqtt_url,
        ),
    )


def _plan(
    path: Path, accounts: list[tuple[int, int, str]], stores: int, seconds: float, start: float
) -> None:
    """Arrivals spread evenly over the walk, stores interleaved; triggers end 2 s early."""
    window = max(seconds - TRIGGER_AFTER_S - 2.0, 1.0)
    n = len(accounts)
    phones = [
        {"store": s, "prefix": f"esp-s{s}", "secret": secret, "at": k * window / n}
        for k, (_, s, secret) in enumerate(accounts)
    ]
    plan = {"start": start, "seconds": seconds, "app_uuid": APP_UUID, "phones": phones}
    path.write_bytes(orjson.dumps(plan))


def _walk(
    group: ProcessGroup,
    mqtt_url: str,
    work: Path,
    accounts: list[tuple[int, int, str]],
    stores: int,
    seconds: float,
    marker: bool,
) -> tuple[dict[int, float], dict[str, int], float]:
    """Run the phones' walk: trigger times and tokens by phone index, BLE messages/s offered."""
    plan, out = work / "phones-plan.json", work / "phones-out.json"
    out.unlink(missing_ok=True)
    # 2 s for the publisher process to import and connect before the first arrival.
    start = time.monotonic() + 2.0
    _plan(plan, accounts, stores, seconds, start)
    argv = [sys.executable, "-m", "bench.phones", mqtt_url, str(plan), str(out)]
    phones = group.start("phones", argv + (["--marker"] if marker else []))
    wait_for(lambda: phones.process.poll() is not None, seconds + 60, "the phones' walk")
    if not out.exists():
        raise RuntimeError(f"bench.phones wrote nothing:\n{phones.tail()}")
    doc = orjson.loads(out.read_bytes())
    by_order = {int(k): float(v) for k, v in doc["triggers"].items()}
    # The plan lists phones in order; map back to account indexes.
    triggers = {accounts[k][0]: t for k, t in by_order.items()}
    tokens = {tok: accounts[k][0] for k, tok in enumerate(doc["tokens"])}
    return triggers, tokens, round(doc["messages"] / seconds, 1)


class ProcessedCount:
    """Rows in ``processed_events``: how many facts the ingest has committed."""

    def __init__(self, url: str) -> None:
        from server.db import make_engine

        self.engine = make_engine(url)

    def __call__(self) -> int:
        try:
            with self.engine.connect() as conn:
                query = sa.text("SELECT count(*) FROM processed_events")
                return int(conn.execute(query).scalar_one())
        except SQLAlchemyError:
            return -1

    def close(self) -> None:
        self.engine.dispose()


def _settle(count: Callable[[], int], expected: int, cap_s: float) -> tuple[float, int]:
    """Wait for ``expected`` processed facts, then ``SETTLED_S`` with nothing new.

    Returns the seconds waited and the facts processed by then.
    """
    started = time.monotonic()
    last, since = count(), time.monotonic()
    while time.monotonic() - started < cap_s:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif last >= expected and time.monotonic() - since >= SETTLED_S:
            break
    return round(time.monotonic() - started, 1), last


def _setup_database(url: str, stores: int) -> None:
    from sqlmodel import Session

    from server import migrate
    from server.catalogue.service import import_catalogue, parse_catalogue
    from server.db import make_engine
    from server.stores.service import import_layout, parse_layout

    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            for k in range(stores):
                import_layout(s, parse_layout(orjson.dumps(store_layout(k, READERS_PER_STORE))))
            import_catalogue(s, parse_catalogue(CATALOGUE.read_bytes(), "json"))
            s.commit()
    finally:
        engine.dispose()


def _views(url: str, accounts: list[Account]) -> None:
    """Each shopper viewed the linen shirt online an hour ago (native format, NDJSON)."""
    from sqlmodel import Session

    from server.db import make_engine
    from server.ingest_web.service import ingest

    now = datetime.now(UTC)
    at = (now - timedelta(hours=1)).isoformat()
    lines = [
        orjson.dumps(
            {
                "type": "product_viewed",
                "event_id": f"bench-view-{a.index}",
                "occurred_at": at,
                "shopper": {"user_id": web_user(a.store, a.index)},
                "currency": "EUR",
                "products": [VIEW],
            }
        )
        for a in accounts
    ]
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            report = ingest(s, b"\n".join(lines), now)
            s.commit()
    finally:
        engine.dispose()
    if report.rejected:
        raise RuntimeError(f"{report.rejected} bench views rejected: {report}")


def chain_run(
    mqtt_url: str,
    work: Path,
    db_url: str,
    backend: str,
    stores: int,
    seconds: float,
    *,
    broker_pid: int | None = None,
    per_store: int = PHONES_PER_STORE,
    extra_idle: int = 0,
    warmup: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> ChainResult:
    """One measured run of the whole chain at ``stores`` stores' load.

    ``warmup=False`` (the smoke test) lets the phones walk in during the store's
    opening burst of item facts instead of after it.
    """
    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    _setup_database(db_url, stores)
    api_port, ingest_port = free_port(), free_port()
    env = {
        "VITRINE_DATABASE_URL": db_url,
        "VITRINE_MQTT_URL": mqtt_url,
        "VITRINE_LOG_LEVEL": "WARNING",
        "VITRINE_SECRET_KEY": "bench-secret-key-not-for-production",
        "VITRINE_MOBILE_SECRET_KEY": "bench-mobile-key-not-for-production",
        "VITRINE_MOBILE_IDENTITY_SECRET": IDENTITY_SECRET,
        "VITRINE_APP_BEACON_UUID": APP_UUID,
        # Every phone signs in from 127.0.0.1 within seconds (a store's phones sign in
        # over days): the per-address limit on /v1/installs and /v1/auth is lifted.
        "VITRINE_MOBILE_RATE_PUBLIC": "1000000/minute",
    }
    group = ProcessGroup(work / "logs", env)
    fleet: Fleet | None = None
    ingest_id = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    gateway_ids: list[str] = []
    count = ProcessedCount(db_url)
    tap = LegTap(mqtt_url)
    try:
        # Every process starts at once; each is waited for only when it is needed.
        api = group.start(
            "mobile-api",
            vitrine_command("mobile-api", "run", "--host", "127.0.0.1", "--port", str(api_port)),
        )
        ingest = group.start(
            "ingest",
            vitrine_command("server", "ingest"),
            {"VITRINE_OPS_PORT": str(ingest_port), "VITRINE_INGEST_CLIENT_ID": ingest_id},
        )
        gateways: list[tuple[Child, int]] = []
        for k in range(stores):
            layout = work / f"layout-{k}.json"
            layout.write_bytes(orjson.dumps(store_layout(k, READERS_PER_STORE)))
            gid = f"bench{k}x{uuid.uuid4().hex[:6]}"
            gateway_ids.append(f"vitrine-gateway-{store_id(k)}-{gid}")
            port = free_port()
            gw = group.start(
                f"gateway-{k}",
                vitrine_command(
                    "gateway",
                    "run",
                    "--layout",
                    str(layout),
                    "--state-dir",
                    str(work / "gw"),
                    "--gateway-id",
                    gid,
                ),
                {"VITRINE_OPS_PORT": str(port)},
            )
            gateways.append((gw, port))
        http = f"http://127.0.0.1:{api_port}"
        group.wait_until(api, _http_ready(f"{http}/readyz"), 120)
        fleet = Fleet(http)
        progress(f"e2e {backend} {stores} store(s): signing in {stores * per_store} phones")
        accounts = fleet.run(fleet.sign_in_all(stores, per_store), 600)
        _views(db_url, accounts)
        for gw, port in gateways:
            group.wait_until(gw, _http_ready(f"http://127.0.0.1:{port}/readyz"), 120)
        group.wait_until(ingest, _http_ready(f"http://127.0.0.1:{ingest_port}/readyz"), 120)
        rss_before = rss_mb(api.pid)
        progress(f"e2e {backend} {stores} store(s): opening {len(accounts)} phone sockets")
        fleet.run(fleet.open_all([(a.index, a.access_token) for a in accounts], True), 600)
        phone_sockets = IdleSockets(len(accounts), rss_before, rss_mb(api.pid))
        setup_s = round(time.monotonic() - t0, 1)
        cap = WARMUP_BASE_S + WARMUP_PER_STORE_S * stores
        load = _load(group, mqtt_url, stores, cap + seconds + 30)
        progress(f"e2e {backend} {stores} store(s): warming up (the store opening's item facts)")
        warmup_s, opening_facts = 0.0, 0
        if warmup:
            warmup_s, opening_facts = _settle(count, TAGS_PER_READER * stores, cap)
        progress(
            f"e2e {backend} {stores} store(s): {len(accounts)} phones walk in ({seconds:.0f} s)"
        )
        plan = [(a.index, a.store, a.secret_b64) for a in accounts]
        triggers, tokens, ble = _walk(group, mqtt_url, work, plan, stores, seconds, marker=False)
        with contextlib.suppress(TimeoutError):  # the late and the lost are reported
            wait_for(lambda: len(fleet.arrivals) >= len(triggers), GRACE_S, "late pushes")
        latency = summarise(triggers, dict(fleet.arrivals))
        legs = tap.legs(triggers, tokens, dict(fleet.arrivals))
        rss: dict[str, float | None] = {
            "mobile_api": rss_mb(api.pid),
            "ingest": rss_mb(ingest.pid),
            "gateway_each_max": max((rss_mb(g.pid) or 0.0) for g, _ in gateways) or None,
            "gateway_total": round(sum((rss_mb(g.pid) or 0.0) for g, _ in gateways), 1),
            "sim_load": rss_mb(load.pid),
            "bench_process": rss_mb(os.getpid()),
        }
        if broker_pid is not None:
            rss["mosquitto"] = rss_mb(broker_pid)
        idle = None
        if extra_idle:
            before = rss_mb(api.pid)
            idle_tokens = [
                (-1, accounts[k % len(accounts)].access_token) for k in range(extra_idle)
            ]
            fleet.run(fleet.open_all(idle_tokens, False), 600)
            idle = IdleSockets(extra_idle, before, rss_mb(api.pid))
        return ChainResult(
            backend=backend,
            stores=stores,
            phones=len(accounts),
            seconds=seconds,
            latency=latency,
            ble_msgs_per_s=ble,
            setup_s=setup_s,
            warmup_s=warmup_s,
            opening_facts=opening_facts,
            warmup_complete=not warmup or opening_facts >= TAGS_PER_READER * stores,
            rss_mb=rss,
            phone_sockets=phone_sockets,
            extra_idle=idle,
            legs=legs,
            events=dict(fleet.events),
            closed_early=fleet.closed_early,
        )
    finally:
        if fleet is not None:
            fleet.close()
        group.stop()
        count.close()
        tap.close()
        for client_id in [ingest_id, *gateway_ids]:
            with contextlib.suppress(TimeoutError, OSError):
                forget_session(mqtt_url, client_id)


def relay_floor(
    mqtt_url: str, work: Path, stores: int, seconds: float, per_store: int = PHONES_PER_STORE
) -> FloorResult:
    """The bare relay offered the same readers and the same phone walk (secrets are random)."""
    work.mkdir(parents=True, exist_ok=True)

    def probe(data: bytes) -> int | None:
        if b"bench_phone" not in data:
            return None
        return int(orjson.loads(data)["bench_phone"])

    sink = WsSink(probe)
    group = ProcessGroup(work / "logs")
    client_id = f"bench-relay-e2e-{time.monotonic_ns()}"
    try:
        relay = group.start(
            "relay",
            [
                sys.executable,
                "-m",
                "bench.relay",
                mqtt_url,
                sink.url,
                client_id,
                "tevents/#",
                "+/devices/#",
            ],
        )
        wait_for(
            lambda: "subscribed" in relay.log_path.read_text(errors="replace"), 30, "relay ready"
        )
        _load(group, mqtt_url, stores, seconds + 10)
        n = stores * per_store
        plan = [(i, i % stores, base64.b64encode(os.urandom(32)).decode()) for i in range(n)]
        sent, _, ble = _walk(group, mqtt_url, work, plan, stores, seconds, marker=True)
        # The plan's order is the phone index, which the marker carries.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: len(sink.arrivals.probes) >= len(sent), GRACE_S, "late frames")
        return FloorResult(stores, summarise(sent, dict(sink.arrivals.probes)), ble)
    finally:
        group.stop()
        sink.close()
        with contextlib.suppress(TimeoutError, OSError):
            forget_session(mqtt_url, client_id)

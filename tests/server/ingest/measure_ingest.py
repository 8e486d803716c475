"""Facts per second through the ingest's unit of work, and where the time goes.

Not a test (timings assert nothing on a shared machine); docs/engine.md and
docs/performance.md quote it::

    set -a && . .venv/postgres.env && set +a
    uv run python -m tests.server.ingest.measure_ingest [--profile] [--installs N]

The workload is a store opening then a walk, as ``vitrine bench``'s e2e offers it:
500 ``item_arrived`` facts (new EPCs whose GTIN is in the catalogue), 100
``item_moved`` between the floor and a fitting room, and shoppers walking in and
between zones — half of them app shoppers with consent who viewed products
online (guidance, staff alert, offers), half anonymous footfall — among N app
installs. Each mode runs on a fresh database with the same facts:

- ``one-by-one``: :func:`server.ingest.service.handle_fact_message` per fact
  (what a worker did before batching);
- ``batch``: :func:`server.ingest.service.handle_fact_batch` on slices of
  :data:`BATCH` (what a worker does when facts are waiting).

SQLite in a temporary file always; PostgreSQL too when
``VITRINE_TEST_POSTGRES_URL`` is set (a scratch database, dropped after).
``--profile`` adds a cProfile of each mode (top 25 by cumulative time);
``--sqlite-synchronous NORMAL`` measures SQLite with that pragma instead of ours.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from server import migrate
from server.db import make_engine
from server.ingest import service
from server.ingest.service import IngestConfig, handle_fact_message
from server.models import AppInstall, Consent, ConsentPurpose, ProductView, ShopperProfile
from tests.server.ingest.support import Seeded, seed
from vitrine.contracts.app_token import rotating_token, window_of
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemMoved,
    ShopperEntered,
    ShopperZoneChanged,
    dump_fact,
    make_event_id,
)
from vitrine.contracts.ids import DeviceToken, Epc, GatewayId, Gtin, StoreId
from vitrine.contracts.topics import fact_topic

#: Facts a batch takes at most in the ``batch`` mode: the consumer's bound.
BATCH = 200
OPENING = 500
MOVES = 100
SHOPPERS = 40
CONFIG = IngestConfig(footfall_key=b"m" * 32)


def _facts(seeded: Seeded, secrets_: list[bytes], at: datetime) -> list[tuple[str, bytes]]:
    store = StoreId(seeded.store)
    gw = GatewayId("gw-measure")
    out: list[Fact] = []
    tag = seeded.store[-8:].upper()
    epcs = [Epc(f"30349{tag}{i:011X}") for i in range(OPENING)]
    for i, epc in enumerate(epcs):
        out.append(
            ItemArrived(
                event_id=make_event_id("arr", store, epc),
                store=store,
                gateway=gw,
                occurred_at=at + timedelta(milliseconds=i),
                epc=epc,
                gtin=Gtin(seeded.gtin_a_m),
                serial=str(i),
                zone="women",
                rack="r3",
            )
        )
    for i in range(MOVES):
        epc = epcs[i]
        zone, before = ("fit-1", "women") if i % 2 == 0 else ("women", "fit-1")
        out.append(
            ItemMoved(
                event_id=make_event_id("mov", store, epc, i),
                store=store,
                gateway=gw,
                occurred_at=at + timedelta(seconds=1, milliseconds=i),
                epc=epc,
                gtin=Gtin(seeded.gtin_a_m),
                zone=zone,
                from_zone=before,
            )
        )
    window = window_of(at.timestamp())
    for k in range(SHOPPERS):
        app = k % 2 == 0
        device = (
            DeviceToken(f"{rotating_token(secrets_[k], window):08x}")
            if app
            else DeviceToken(f"{secrets.randbits(32):08x}")
        )
        kind = "app" if app else "anonymous"
        t = at + timedelta(seconds=2, milliseconds=10 * k)
        out.append(
            ShopperEntered(
                event_id=make_event_id("ent", store, k),
                store=store,
                gateway=gw,
                occurred_at=t,
                device=device,
                device_kind=kind,
                zone="entrance",
            )
        )
        for step, (a, b) in enumerate([("entrance", "women"), ("women", "fit-1")]):
            out.append(
                ShopperZoneChanged(
                    event_id=make_event_id("zone", store, k, step),
                    store=store,
                    gateway=gw,
                    occurred_at=t + timedelta(seconds=1 + step),
                    device=device,
                    device_kind=kind,
                    from_zone=a,
                    zone=b,
                )
            )
    return [(fact_topic(store, fact.kind), dump_fact(fact)) for fact in out]


def _seed_installs(engine: Engine, seeded: Seeded, n: int) -> list[bytes]:
    """``n`` installs; the first SHOPPERS with a consenting profile that viewed both products."""
    now = datetime.now(UTC)
    keys = [secrets.token_bytes(32) for _ in range(n)]
    with Session(engine) as s:
        for k, key in enumerate(keys):
            profile_id: str | None = None
            if k < SHOPPERS:
                profile = ShopperProfile(display_name=f"P{k}", known_size="M")
                s.add(profile)
                s.flush()
                profile_id = profile.id
                for purpose in ConsentPurpose:
                    s.add(Consent(profile_id=profile.id, purpose=purpose, granted=True))
                for product in (seeded.product_a, seeded.product_b):
                    s.add(
                        ProductView(
                            event_id=f"view-{k}-{product}",
                            profile_id=profile.id,
                            product_id=product,
                            platform="segment",
                            viewed_at=now - timedelta(days=1),
                        )
                    )
            s.add(AppInstall(profile_id=profile_id, secret=key))
        s.commit()
    return keys


class QueryCounter:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, *args: Any) -> None:
        self.count += 1


def one_by_one(engine: Engine, facts: list[tuple[str, bytes]]) -> None:
    for topic, payload in facts:
        assert handle_fact_message(engine, topic, payload, CONFIG) == "applied"


def batched(engine: Engine, facts: list[tuple[str, bytes]]) -> None:
    handle_batch = service.handle_fact_batch
    for start in range(0, len(facts), BATCH):
        outcomes = handle_batch(engine, facts[start : start + BATCH], CONFIG)
        assert all(o == "applied" for o in outcomes), outcomes


MODES: dict[str, Callable[[Engine, list[tuple[str, bytes]]], None]] = {
    "one-by-one": one_by_one,
    "batch": batched,
}


def measure(url: str, mode: str, installs: int, profile: bool, synchronous: str = "") -> str:
    migrate.upgrade(url)
    engine = make_engine(url)
    if synchronous and engine.dialect.name == "sqlite":
        # What the durability trade-off would buy (docs/database.md): not the default.
        @sa.event.listens_for(engine, "connect")
        def _sync(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")

    try:
        seeded = seed(engine)
        keys = _seed_installs(engine, seeded, installs)
        facts = _facts(seeded, keys, datetime.now(UTC) - timedelta(minutes=1))
        counter = QueryCounter(engine)
        profiler = cProfile.Profile() if profile else None
        start = time.perf_counter()
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        MODES[mode](engine, facts)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        line = (
            f"{mode:10s} {len(facts)} facts: {len(facts) / wall:7.1f} facts/s wall, "
            f"{1000 * wall / len(facts):6.2f} ms/fact, {1000 * cpu / len(facts):6.2f} ms CPU/fact, "
            f"{counter.count / len(facts):5.1f} queries/fact"
        )
        if profiler is not None:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
            line += "\n" + text.getvalue()
        return line
    finally:
        engine.dispose()


@contextmanager
def _databases() -> Iterator[Callable[[], dict[str, str]]]:
    made: list[str] = []
    pg = os.environ.get("VITRINE_TEST_POSTGRES_URL")
    admin = sa.create_engine(make_url(pg), isolation_level="AUTOCOMMIT") if pg else None
    with tempfile.TemporaryDirectory() as tmp:

        def fresh() -> dict[str, str]:
            urls = {"sqlite": f"sqlite:///{Path(tmp) / f'm-{uuid.uuid4().hex[:6]}.db'}"}
            if admin is not None and pg:
                base = make_url(pg)
                name = f"{base.database}_measure_{uuid.uuid4().hex[:6]}"
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                made.append(name)
                urls["postgres"] = base.set(database=name).render_as_string(hide_password=False)
            return urls

        try:
            yield fresh
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    for name in made:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--installs", type=int, default=500)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sqlite-synchronous", default="", help="e.g. NORMAL (default: ours)")
    args = parser.parse_args()
    with _databases() as fresh:
        for mode in args.modes.split(","):
            for backend, url in fresh().items():
                if backend in args.backends.split(","):
                    line = measure(url, mode, args.installs, args.profile, args.sqlite_synchronous)
                    print(f"{backend:8s} {line}")


if __name__ == "__main__":
    main()

"""Resolution time at N installs: the old scan of every install vs the token index.

Not a test (timings assert nothing on a shared machine); docs/engine.md quotes it::

    set -a && . .venv/postgres.env && set +a
    uv run python -m tests.server.installs.measure_token_index 10000

SQLite in a temporary file always; PostgreSQL too when
``VITRINE_TEST_POSTGRES_URL`` is set (a scratch database, dropped after).
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from server import migrate
from server.db import make_engine
from server.installs.token_index import resolve_install
from server.models import AppInstall
from vitrine.contracts.app_token import DEFAULT_PERIOD_S, rotating_token, window_of

PERIOD = DEFAULT_PERIOD_S
AT = datetime(2026, 11, 24, 12, 7, tzinfo=UTC)


def old_scan(session: Session, token_hex: str, at: datetime) -> AppInstall | None:
    token = int(token_hex, 16)
    window = window_of(at.timestamp(), PERIOD)
    for install in session.exec(select(AppInstall)):
        if any(
            rotating_token(install.secret, w) == token for w in (window, window - 1, window + 1)
        ):
            return install
    return None


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def once_ms(fn: Callable[[], object]) -> float:
    return median_ms(fn, 1)


def measure(url: str, n: int) -> dict[str, float]:
    migrate.upgrade(url)
    engine = make_engine(url)
    results: dict[str, float] = {}
    try:
        with Session(engine, expire_on_commit=False) as s:
            now = datetime.now(UTC)
            s.execute(
                sa.insert(AppInstall),
                [
                    {"id": str(uuid.uuid4()), "secret": secrets.token_bytes(32), "created_at": now}
                    for _ in range(n)
                ],
            )
            s.commit()
            installs = list(s.exec(select(AppInstall.id, AppInstall.secret)).all())
            window = window_of(AT.timestamp(), PERIOD)
            picks = installs[:: max(1, n // 20)][:20]
            hexes = [f"{rotating_token(secret, window):08x}" for _, secret in picks]

            results["old scan, hit"] = median_ms(lambda: old_scan(s, hexes[3], AT), 5)
            s.expunge_all()

            def first() -> None:
                assert resolve_install(s, hexes[0], AT, PERIOD) is not None
                s.commit()

            results["index: first fact ever (3 windows x N rows)"] = once_ms(first)

            def new_window() -> None:
                later = AT + timedelta(seconds=2 * PERIOD)
                resolve_install(s, f"{secrets.randbits(32):08x}", later, PERIOD)
                s.commit()

            results["index: first fact 2 windows on (2 x N rows)"] = once_ms(new_window)
            at_new = AT + timedelta(seconds=2 * PERIOD)
            hexes = [f"{rotating_token(secret, window + 2):08x}" for _, secret in picks]
            turn = iter(range(10**9))

            def hit() -> None:
                k = next(turn) % len(picks)
                found = resolve_install(s, hexes[k], at_new, PERIOD)
                assert found is not None and found.id == picks[k][0]
                s.rollback()

            def miss() -> None:
                assert resolve_install(s, f"{secrets.randbits(32):08x}", at_new, PERIOD) is None
                s.rollback()

            results["index: hit"] = median_ms(hit, 50)
            results["index: unknown token"] = median_ms(miss, 50)
    finally:
        engine.dispose()
    return results


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite:///{Path(tmp) / 'measure.db'}"}
        pg = os.environ.get("VITRINE_TEST_POSTGRES_URL")
        admin = None
        name = ""
        if pg:
            base = make_url(pg)
            name = f"{base.database}_measure_{uuid.uuid4().hex[:6]}"
            admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            urls["postgres"] = base.set(database=name).render_as_string(hide_password=False)
        try:
            for backend, url in urls.items():
                for what, ms in measure(url, n).items():
                    print(f"{backend:8s} N={n:6d} {what:45s} {ms:9.2f} ms")
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

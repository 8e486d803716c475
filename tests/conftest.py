"""Fixtures shared by the whole suite: a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.services import Broker, require_service, start_mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto started from deploy/mosquitto.conf on a free loopback port."""
    with start_mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own, for tests that restart or kill it."""
    with start_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Make more databases on the run's server, each dropped at the end of the run.

    For suites whose code under test commits through its own engine (a running
    app, a consumer): they get a database of their own, so their committed rows
    never meet the rolled-back tests that share ``postgres_url``.
    """
    base = make_url(postgres_url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"{base.database}_{len(made) + 1}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        for name in made:
            _drop_database(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database made for this test run and dropped after it.

    ``VITRINE_TEST_POSTGRES_URL`` names a server and an admin database
    (``scripts/setup --postgres`` writes it to ``.venv/postgres.env``).
    """
    admin_url = os.environ.get("VITRINE_TEST_POSTGRES_URL")
    if not admin_url:
        require_service("PostgreSQL", "VITRINE_TEST_POSTGRES_URL is not set")
    assert admin_url is not None
    name = f"vitrine_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        require_service("PostgreSQL", f"cannot connect: {exc.orig}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: sa.Engine, name: str) -> None:
    """``DROP DATABASE … WITH (FORCE)``, tried again for a few seconds: it refuses
    ("must be a member of the role whose process is being terminated") while an
    autovacuum worker, which has no role, is at work in it. scripts/setup grants
    pg_signal_backend, which lets the drop end such a worker at once."""
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.ProgrammingError:
            if attempt == 19:
                raise
            time.sleep(0.5)

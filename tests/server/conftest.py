"""Database fixtures for every server test, on SQLite *and* PostgreSQL.

Use them like this::

    def test_something(session: Session) -> None:
        session.add(Store(id="s1", name="Lyon"))
        session.flush()
        ...

Fixtures (each DB test runs once per backend: ids ``[sqlite]`` and ``[postgres]``):

- ``backend`` (session, parametrized): ``"sqlite"`` or ``"postgres"``.
- ``db_url`` (session): a database of that backend made for the run — a
  temporary SQLite file, or the run's PostgreSQL database (``postgres_url``
  from ``tests/conftest.py``). Migrated to head by ``engine``.
- ``engine`` (session): :func:`server.db.make_engine` on ``db_url``, upgraded
  to head *once* per backend per run, through the real migrations.
- ``connection`` / ``session`` (function): a connection inside an outer
  transaction that is rolled back after the test, and a ``Session`` joined to
  it with ``join_transaction_mode="create_savepoint"`` (SQLAlchemy docs,
  "Joining a Session into an External Transaction"). Code under test may
  ``commit()`` and ``rollback()`` freely — those act on a SAVEPOINT — and
  nothing survives the test. Rows are visible only through this connection.
- ``fresh_db_url`` (function): an *empty, unmigrated* database of the same
  backend, dropped after the test: for tests that migrate, run a subprocess
  against a database, or need commits that other connections can see.

A test that needs a real commit seen by another process (a subprocess server,
two engines) uses ``fresh_db_url`` rather than ``session``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from server import migrate
from server.db import make_engine
from tests.server.ingest.support import committed_engine_fixture

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="session")
def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'vitrine.db'}"


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield connection
        finally:
            if outer.is_active:
                outer.rollback()


@pytest.fixture
def session(connection: sa.Connection) -> Iterator[Session]:
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session


@pytest.fixture
def fresh_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = make_url(request.getfixturevalue("postgres_url"))
    name = f"{base.database}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def committed_engine(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database per module and backend for code that commits through its own
    sessions (the ingest, the outbox publisher, webhooks)."""
    yield from committed_engine_fixture(backend, request, tmp_path_factory)

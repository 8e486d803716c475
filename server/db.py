"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

:func:`make_engine` is the only place an engine is built, so every process and
the migrations talk to the database the same way:

- **SQLite** (one store, demo, development): WAL journal so readers never block
  the writer, ``synchronous=FULL`` so a commit survives a power cut (an fsync
  per transaction); ``foreign_keys=ON`` (SQLite leaves it off per connection, see
  https://sqlite.org/foreignkeys.html §2); a busy timeout so a second writer
  waits instead of failing; ``check_same_thread=False`` because FastAPI runs
  sync endpoints in a thread pool. The pysqlite driver's own transaction
  handling is switched off and SQLAlchemy emits ``BEGIN IMMEDIATE`` itself —
  the recipe in SQLAlchemy's SQLite dialect docs ("Serializable isolation /
  Savepoints / Transactional DDL") — so that SAVEPOINTs and transactional DDL
  work, and so that a transaction that reads then writes cannot hit
  ``SQLITE_BUSY`` on the lock upgrade (https://sqlite.org/lang_transaction.html):
  SQLite has one writer at a time anyway; ``IMMEDIATE`` makes writers queue on
  the busy timeout instead of failing.
- **PostgreSQL** (production): ``postgresql+psycopg://`` (psycopg 3), with
  ``pool_pre_ping`` so a restarted database costs one failed check, not a
  failed request.

Sessions follow the full-stack-fastapi-template idiom: :func:`get_session` is a
FastAPI dependency reading the engine from ``app.state``; :data:`SessionDep` is
its ``Annotated`` alias for endpoint signatures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_SYNCHRONOUS",
    "SessionDep",
    "get_engine",
    "get_session",
    "is_sqlite",
    "make_engine",
    "ping",
    "session_factory",
]

#: How long a SQLite writer waits for another to finish before failing: longer
#: than any single transaction of ours should take (milliseconds), short enough
#: that a stuck process shows up as an error rather than a hang.
SQLITE_BUSY_TIMEOUT_MS = 5_000
#: ``PRAGMA synchronous``: FULL, so that a commit survives a power cut (see
#: :func:`_configure_sqlite`).
SQLITE_SYNCHRONOUS = "FULL"


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str | URL, *, foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """The engine for ``url``; SQLite files get their directory created on demand.

    ``foreign_keys=False`` is for migrations only: SQLite's batch ALTER copies and
    drops tables, and with enforcement on, dropping a referenced table would
    cascade into its children (Alembic docs, "Running batch migrations for SQLite").
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)

    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: with WAL, NORMAL skips the fsync at each commit, and
            # a power cut or OS crash may then roll back transactions that had
            # committed (https://sqlite.org/pragma.html#pragma_synchronous). The
            # ingest acknowledges a fact to the broker after its commit, so such a
            # commit must survive the machine, or the fact is lost (QUALITY.md, "no
            # data lost"). FULL is SQLite's default already; said here so that it
            # stays a decision. Its cost is one fsync per transaction, amortised
            # by the ingest's batches (docs/database.md).
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def ping(engine: Engine) -> bool:
    """True when the database answers ``SELECT 1`` (the readiness check)."""
    with engine.connect() as connection:
        return bool(connection.execute(sa.text("SELECT 1")).scalar_one() == 1)


def session_factory(engine: Engine) -> Session:
    """A new session on ``engine``; use it as a context manager."""
    return Session(engine, expire_on_commit=False)


def get_engine(request: Request) -> Engine:
    """The engine the app's lifespan owns (``app.state.engine``)."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the endpoint (or its service) commits."""
    with session_factory(get_engine(request)) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

"""The engine factory's SQLite settings (PostgreSQL needs none of them)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from server.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, ping


def test_sqlite_file_gets_its_directory_and_pragmas(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "var" / "vitrine.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert ping(engine)
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar_one() == 1
            assert pragma("PRAGMA busy_timeout").scalar_one() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()
    assert database.is_file()


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    """A rolled-back migration leaves no table behind.

    pysqlite on its own emits no BEGIN before DDL, so this CREATE TABLE would
    survive the rollback; the engine's "BEGIN IMMEDIATE" recipe makes it atomic.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'ddl.db'}")
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
            transaction.rollback()
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()

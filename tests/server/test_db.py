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


def test_sqlite_savepoints_really_roll_back(tmp_path: Path) -> None:
    """pysqlite alone ignores SAVEPOINT semantics; the engine's BEGIN recipe fixes that."""
    engine = make_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            savepoint = connection.begin_nested()
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            savepoint.rollback()
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT x FROM t")).scalars().all() == [1]
    finally:
        engine.dispose()

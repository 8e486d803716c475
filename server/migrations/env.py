"""Alembic environment: online migrations only, on the engine :mod:`server.db` makes.

- The URL comes from ``config.attributes["database_url"]`` (set by
  :func:`server.migrate.alembic_config`), never from an ini file.
- SQLite gets ``render_as_batch=True`` (it cannot ALTER most things; Alembic
  copies the table) and runs with ``foreign_keys=OFF`` so those copies do not
  cascade, then checks ``PRAGMA foreign_key_check`` before committing.
- ``compare_type=True`` so autogenerate notices type changes.
- Every migration runs in one transaction on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

import server.models
from server.db import is_sqlite, make_engine

config = context.config
target_metadata = server.models.metadata


def run_migrations_online() -> None:
    url = config.attributes["database_url"]
    sqlite = is_sqlite(url)
    engine = make_engine(url, foreign_keys=False, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                # SQLite does have transactional DDL; server.db makes SQLAlchemy
                # emit BEGIN itself, so a failed migration leaves nothing half-done.
                transactional_ddl=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.execute(sa.text("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()

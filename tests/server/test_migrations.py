"""The migrations build the models' schema, and undo it, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

import server.models
from server import migrate
from server.db import make_engine


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trip(fresh_db_url: str) -> None:
    model_tables = set(server.models.metadata.tables)

    migrate.upgrade(fresh_db_url)
    assert migrate.current(fresh_db_url) == migrate.heads()
    assert _tables(fresh_db_url) == model_tables | {"alembic_version"}

    migrate.downgrade(fresh_db_url, "base")
    assert migrate.current(fresh_db_url) == ()
    assert _tables(fresh_db_url) <= {"alembic_version"}

    migrate.upgrade(fresh_db_url)
    assert migrate.current(fresh_db_url) == migrate.heads()
    assert _tables(fresh_db_url) == model_tables | {"alembic_version"}


def test_models_and_migrations_agree(engine: Engine) -> None:
    """Autogenerate finds nothing to do: no model change is missing a migration."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, server.models.metadata)
    assert diff == []


def test_one_head() -> None:
    """Two heads means two branches were merged without a merge revision."""
    assert len(migrate.heads()) == 1

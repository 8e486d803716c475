"""Alembic, driven from code: no ``alembic.ini``, the URL comes from settings.

``vitrine db upgrade|downgrade|current`` call these; tests call them too. The
migration scripts live in ``server/migrations/`` (``env.py``,
``script.py.mako``, ``versions/``). To add a migration after changing a model::

    uv run python -m server.migrate revision -m "what changed"

which autogenerates against a database upgraded to head (see docs/database.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from server.db import make_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current", "downgrade", "heads", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for ``url``; ``env.py`` reads the URL from its attributes."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = make_url(url)
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str | URL) -> tuple[str, ...]:
    """The revisions the database is at; empty before the first upgrade."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()


def heads() -> tuple[str, ...]:
    """The head revisions of the migration scripts."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _main() -> None:
    parser = argparse.ArgumentParser(description="Developer helper: new migration revision.")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate a revision against --url (at head)")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--url", default="sqlite:///var/migration-dev.db")
    args = parser.parse_args()
    if args.command == "revision":
        upgrade(args.url)
        command.revision(alembic_config(args.url), message=args.message, autogenerate=True)


if __name__ == "__main__":
    _main()

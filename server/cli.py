"""``vitrine`` sub-commands contributed by the server package.

- ``vitrine db upgrade [REV]`` / ``downgrade REV`` / ``current``: migrations on
  the database named by ``VITRINE_DATABASE_URL`` (SQLite ``var/vitrine.db`` by
  default).
- ``vitrine server run``: serve the API (``VITRINE_HTTP_HOST``/``VITRINE_HTTP_PORT``)
  until SIGTERM.
"""

from __future__ import annotations

import typer

from server import migrate
from server.settings import ServerSettings
from vitrine.runtime.logs import configure_logging

__all__ = ["register"]

db_app = typer.Typer(help="Database migrations (SQLite by default, PostgreSQL by URL).")
server_app = typer.Typer(help="The server process.")


def _settings() -> ServerSettings:
    settings = ServerSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Migrate the database up to REVISION."""
    settings = _settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {', '.join(migrate.current(settings.database_url)) or 'base'}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Target revision ('base' empties the database)."),
) -> None:
    """Migrate the database down to REVISION."""
    settings = _settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at {', '.join(migrate.current(settings.database_url)) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at (``base`` if never migrated)."""
    settings = _settings()
    typer.echo(", ".join(migrate.current(settings.database_url)) or "base")


@server_app.command("run")
def server_run() -> None:
    """Serve the HTTP API until SIGTERM or SIGINT."""
    from server.app import serve

    serve(_settings())


def register(app: typer.Typer) -> None:
    """Mount the server's command groups on the root ``vitrine`` app."""
    app.add_typer(db_app, name="db")
    app.add_typer(server_app, name="server")

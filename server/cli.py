"""``vitrine`` sub-commands contributed by the server package.

- ``vitrine db upgrade [REV]`` / ``downgrade REV`` / ``current``: migrations on
  the database named by ``VITRINE_DATABASE_URL`` (SQLite ``var/vitrine.db`` by
  default).
- ``vitrine server run``: serve the API (``VITRINE_HTTP_HOST``/``VITRINE_HTTP_PORT``)
  until SIGTERM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from vitrine.runtime.logs import configure_logging

if TYPE_CHECKING:
    from server.settings import ServerSettings

__all__ = ["register"]

db_app = typer.Typer(help="Database migrations (SQLite by default, PostgreSQL by URL).")
server_app = typer.Typer(help="The server process.")


# Heavy imports (SQLAlchemy, Alembic, FastAPI) happen inside the commands: every
# ``vitrine`` command imports this module, and most do not need them.


def _settings() -> ServerSettings:
    from server.settings import ServerSettings

    settings = ServerSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Migrate the database up to REVISION."""
    from server import migrate

    settings = _settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {', '.join(migrate.current(settings.database_url)) or 'base'}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Target revision ('base' empties the database)."),
) -> None:
    """Migrate the database down to REVISION."""
    from server import migrate

    settings = _settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at {', '.join(migrate.current(settings.database_url)) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at (``base`` if never migrated)."""
    from server import migrate

    settings = _settings()
    typer.echo(", ".join(migrate.current(settings.database_url)) or "base")


@server_app.command("run")
def server_run(
    host: str | None = typer.Option(None, "--host", help="Default: VITRINE_HTTP_HOST."),
    port: int | None = typer.Option(None, "--port", help="Default: VITRINE_HTTP_PORT."),
) -> None:
    """Serve the HTTP API until SIGTERM or SIGINT."""
    from server.app import serve

    settings = _settings()
    overrides = {k: v for k, v in (("http_host", host), ("http_port", port)) if v is not None}
    serve(settings.model_copy(update=overrides))


@server_app.command("ingest")
def server_ingest() -> None:
    """Consume store facts (engine → database → outbox) and publish the outbox, until SIGTERM."""
    from server.ingest.runner import run
    from server.ingest.settings import IngestSettings
    from vitrine.runtime.ops import stop_event_on_signals

    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_format)
    run(settings, stop_event_on_signals())


def register(app: typer.Typer) -> None:
    """Mount the server's command groups on the root ``vitrine`` app."""
    app.add_typer(db_app, name="db")
    app.add_typer(server_app, name="server")
    _register_views(app)
    _register_inputs_outputs(app)


def _register_views(app: typer.Typer) -> None:
    """``vitrine views``: online-event normalisation (owned by ``server/events``)."""
    from server.events.cli import views_app

    app.add_typer(views_app, name="views")


def _register_inputs_outputs(app: typer.Typer) -> None:
    """``vitrine auth|catalogue|store|privacy`` (owned by those packages)."""
    from server.auth.cli import register as auth
    from server.catalogue.cli import register as catalogue
    from server.privacy.cli import register as privacy
    from server.stores.cli import register as store

    for register_group in (auth, catalogue, store, privacy):
        register_group(app)

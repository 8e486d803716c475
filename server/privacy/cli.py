"""``vitrine privacy purge --older-than DAYS``: the retention purge (run it daily from cron)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from server.db import make_engine, session_factory
from server.privacy import service
from server.settings import ServerSettings

__all__ = ["privacy_app", "register"]

privacy_app = typer.Typer(help="Retention purge.")


@privacy_app.command("purge")
def purge(
    older_than: int = typer.Option(..., "--older-than", min=1, help="Retention in days."),
) -> None:
    """Delete journeys, published messages and ledger entries older than DAYS."""
    engine = make_engine(ServerSettings().database_url)
    try:
        with session_factory(engine) as session:
            report = service.purge(session, timedelta(days=older_than), datetime.now(UTC))
    finally:
        engine.dispose()
    typer.echo(report.model_dump_json())


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")

"""``vitrine store import FILE``: upsert a store layout (YAML or JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from server.db import make_engine, session_factory
from server.errors import VitrineError
from server.settings import ServerSettings
from server.stores import service

__all__ = ["register", "store_app"]

store_app = typer.Typer(help="Import store layouts.")


@store_app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A layout .yaml/.json."),
) -> None:
    """Upsert the store, zones, racks, readers, antennas and scanners of FILE."""
    engine = make_engine(ServerSettings().database_url)
    try:
        with session_factory(engine) as session:
            report = service.import_layout(session, service.parse_layout(path.read_bytes()))
    except VitrineError as error:
        typer.echo(f"rejected: {error.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(report.model_dump_json())


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")

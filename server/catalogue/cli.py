"""``vitrine catalogue import FILE`` and ``vitrine catalogue import-stock FILE``."""

from __future__ import annotations

from pathlib import Path

import typer

from server.catalogue import service
from server.db import make_engine, session_factory
from server.errors import VitrineError
from server.settings import ServerSettings

__all__ = ["catalogue_app", "register"]

catalogue_app = typer.Typer(help="Import products, variants and tagged items.")


def _fail(error: VitrineError) -> None:
    typer.echo(f"rejected: {error.message}", err=True)
    raise typer.Exit(1)


@catalogue_app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .json file."),
) -> None:
    """Upsert the products and variants of FILE (all rows or none)."""
    fmt: service.CatalogueFormat = "csv" if path.suffix.lower() == ".csv" else "json"
    engine = make_engine(ServerSettings().database_url)
    try:
        with session_factory(engine) as session:
            report = service.import_catalogue(
                session, service.parse_catalogue(path.read_bytes(), fmt)
            )
    except VitrineError as error:
        _fail(error)
    finally:
        engine.dispose()
    typer.echo(report.model_dump_json())


@catalogue_app.command("import-stock")
def import_stock(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A stock .json file."),
) -> None:
    """Upsert the tagged items of FILE (EPC → GTIN → variant, rack → zone)."""
    engine = make_engine(ServerSettings().database_url)
    try:
        with session_factory(engine) as session:
            report = service.import_stock(session, service.parse_stock(path.read_bytes()))
    except VitrineError as error:
        _fail(error)
    finally:
        engine.dispose()
    typer.echo(report.model_dump_json())


def register(app: typer.Typer) -> None:
    app.add_typer(catalogue_app, name="catalogue")

"""The ``vitrine`` command: the composition root that mounts each package's commands.

Each package contributes its sub-commands through ``register(app)`` in its own
``cli`` module; this module only wires them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import typer.main

import bench.cli
import firmware_sim.cli
import gateway.cli
import mobile_api.cli
import server.cli
from vitrine import __version__
from vitrine.runtime import broker_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="vitrine",
    help="Vitrine: online intent joined with live RFID/BLE store data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version.",
    ),
) -> None:
    """Vitrine: online intent joined with live RFID/BLE store data."""


for package_cli in (
    server.cli,
    gateway.cli,
    mobile_api.cli,
    firmware_sim.cli,
    broker_cli,
    bench.cli,
):
    package_cli.register(app)


def available_commands() -> set[tuple[str, ...]]:
    """Every command path the CLI has, e.g. ``("db", "upgrade")``."""
    found: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.add(path)
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(app), ())
    return found


@app.command()
def demo(
    workdir: Path = typer.Option(Path("var/demo"), help="Where the demo keeps its data and logs."),
    scenario: str = typer.Option("demo-saturday", help="Simulator scenario played on a loop."),
    speed: str = typer.Option("1", help="Simulation speed (1 = real time)."),
    http_port: int = typer.Option(8000, help="Server port (a free one if taken)."),
    mobile_port: int = typer.Option(8100, help="mobile_api port (a free one if taken)."),
    broker_port: int = typer.Option(1883, help="Mosquitto port (a free one if taken)."),
    status: bool = typer.Option(True, help="Print the live status line."),
) -> None:
    """Run a demo store: broker, server, ingest, gateway, mobile_api and simulated shoppers."""
    from vitrine.demo import DemoPlan, run_demo
    from vitrine.runtime.logs import configure_logging

    configure_logging("WARNING", "text")
    plan = DemoPlan(
        workdir=workdir.resolve(),
        http_port=http_port,
        mobile_port=mobile_port,
        broker_port=broker_port,
        scenario=scenario,
        speed=speed,
        status=status,
    )
    raise typer.Exit(run_demo(plan))


@app.command("run")
def run(
    config: Path = typer.Option(
        ..., "--config", help="The store's YAML (docs/running-a-store.md)."
    ),
) -> None:
    """Run a real store: broker (unless given), server, ingest, mobile_api and gateway."""
    from pydantic import ValidationError

    from vitrine.demo import load_store_config, run_store
    from vitrine.runtime.logs import configure_logging

    configure_logging("WARNING", "text")
    try:
        store = load_store_config(config)
    except (OSError, ValidationError) as error:
        typer.echo(f"run: {config}: {error}", err=True)
        raise typer.Exit(2) from error
    raise typer.Exit(run_store(store))


def main() -> None:
    app()

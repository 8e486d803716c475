"""The ``vitrine`` command: the composition root that mounts each package's commands.

Each package contributes its sub-commands through ``register(app)`` in its own
``cli`` module; this module only wires them together.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path
from typing import Any

import typer
import typer.main

from vitrine import __version__

__all__ = ["COMMAND_OWNERS", "PACKAGE_CLIS", "available_commands", "build_app", "main"]

#: The ``cli`` modules that contribute commands through ``register(app)``.
PACKAGE_CLIS: tuple[str, ...] = (
    "server.cli",
    "gateway.cli",
    "mobile_api.cli",
    "firmware_sim.cli",
    "vitrine.runtime.broker_cli",
    "bench.cli",
)

#: Which module registers each top-level command, so that ``vitrine gateway run``
#: or ``vitrine sim run`` loads only its own package. Mounting every package
#: imports the server's ORM and web stack: 2.7 s of CPU per process start,
#: against about 0.2 s for one package's ``cli`` (measured with ``time`` on this
#: 2-core machine), and the demo and the tests start a dozen processes.
#: ``tests/test_cli.py`` checks this table against what the modules register.
COMMAND_OWNERS: dict[str, str] = {
    "db": "server.cli",
    "server": "server.cli",
    "views": "server.cli",
    "auth": "server.cli",
    "catalogue": "server.cli",
    "store": "server.cli",
    "privacy": "server.cli",
    "readers": "gateway.cli",
    "epc": "gateway.cli",
    "gateway": "gateway.cli",
    "mobile-api": "mobile_api.cli",
    "sim": "firmware_sim.cli",
    "broker": "vitrine.runtime.broker_cli",
    "bench": "bench.cli",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


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


def build_app(modules: tuple[str, ...] = PACKAGE_CLIS) -> typer.Typer:
    """The root command with the commands of ``modules`` (all of them by default)."""
    root = typer.Typer(
        name="vitrine",
        help="Vitrine: online intent joined with live RFID/BLE store data.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback()(_root)
    root.command("demo")(demo)
    root.command("run")(run)
    for name in modules:
        importlib.import_module(name).register(root)
    return root


@cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    # ``from vitrine.cli import app``: every command, built on first use.
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available_commands() -> set[tuple[str, ...]]:
    """Every command path the CLI has, e.g. ``("db", "upgrade")``."""
    found: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.add(path)
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(_full_app()), ())
    return found


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
    """``vitrine …``: mount only the package that owns the command asked for.

    ``vitrine --help`` (or an unknown command, for typer's error) mounts all.
    """
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    owner = COMMAND_OWNERS.get(first or "")
    build_app((owner,) if owner is not None else PACKAGE_CLIS)()

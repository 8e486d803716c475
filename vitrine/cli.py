"""The ``vitrine`` command: the composition root that mounts each package's commands.

Each package contributes its sub-commands through ``register(app)`` in its own
``cli`` module; this module only wires them together.
"""

from __future__ import annotations

import typer

import firmware_sim.cli
import gateway.cli
import mobile_api.cli
import server.cli
from vitrine import __version__

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
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    """Vitrine: online intent joined with live RFID/BLE store data."""


for package_cli in (server.cli, gateway.cli, mobile_api.cli, firmware_sim.cli):
    package_cli.register(app)


def main() -> None:
    app()

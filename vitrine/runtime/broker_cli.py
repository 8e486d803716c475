"""``vitrine broker credentials``: a production broker's logins and ACLs from store layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitrine.runtime.broker_auth import BrokerAuthError, write_broker_auth
from vitrine.runtime.layout_io import LayoutFileError, load_layout

__all__ = ["register"]

broker_app = typer.Typer(help="Production Mosquitto: logins and ACLs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount ``vitrine broker`` on the root app."""
    app.add_typer(broker_app, name="broker")


@broker_app.command("credentials")
def credentials(
    layout: Annotated[
        list[Path], typer.Option("--layout", help="A store layout file (repeat per store).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    gateway: Annotated[
        list[str] | None,
        typer.Option("--gateway", help="Gateway id of each store (repeatable; default gw1)."),
    ] = None,
    config_dir: Annotated[
        Path | None,
        typer.Option(help="Where the broker reads the files (e.g. inside a container)."),
    ] = None,
    monitor: Annotated[
        bool, typer.Option(help="Add a `monitor` login that reads $SYS/# only.")
    ] = True,
) -> None:
    """Write passwd, acl, mosquitto.conf (allow_anonymous false) and credentials.json.

    Passwords already in OUT/credentials.json are kept; new logins get random ones.
    Each process then connects with mqtt://<user>:<password>@host (VITRINE_MQTT_URL).
    """
    try:
        layouts = [load_layout(p) for p in layout]
        creds = write_broker_auth(
            layouts,
            out,
            gateway_ids=tuple(gateway or ("gw1",)),
            monitor=monitor,
            config_dir=config_dir,
        )
    except (LayoutFileError, BrokerAuthError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out}/passwd, acl, mosquitto.conf, credentials.json (mode 0600)")
    for name in creds:
        typer.echo(f"  login {name}")

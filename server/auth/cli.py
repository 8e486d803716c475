"""``vitrine auth token --role admin --subject ops``: print a bearer token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from server.auth.tokens import ROLES, Principal, issue_token
from server.settings import ServerSettings

__all__ = ["auth_app", "register"]

auth_app = typer.Typer(help="Bearer tokens for the admin, staff, ingest and gateway APIs.")


@auth_app.command("token")
def token(
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}."),
    subject: str = typer.Option(..., help="Who the token is for (a staff/admin user id)."),
    store: str | None = typer.Option(None, help="Scope a staff token to one store."),
    hours: float = typer.Option(12.0, help="Lifetime in hours."),
) -> None:
    """Issue a token signed with VITRINE_SECRET_KEY."""
    if role not in ROLES:
        typer.echo(f"rejected: role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(1)
    if role == "gateway" and store is None:
        typer.echo("rejected: a gateway token names its store (--store)", err=True)
        raise typer.Exit(1)
    settings = ServerSettings()
    principal = Principal(subject=subject, role=role, store=store)
    expires = datetime.now(UTC) + timedelta(hours=hours)
    typer.echo(
        issue_token(settings.secret_key.get_secret_value().encode(), principal, expires_at=expires)
    )


def register(app: typer.Typer) -> None:
    app.add_typer(auth_app, name="auth")

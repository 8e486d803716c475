"""``vitrine mobile-api run``: the shopper-facing REST + WebSocket process."""

from __future__ import annotations

import typer

from vitrine.runtime.logs import configure_logging

__all__ = ["register"]

mobile_app = typer.Typer(help="The companion app's REST + WebSocket API.")


@mobile_app.command("run")
def run(
    host: str = typer.Option(None, help="Bind address (default VITRINE_MOBILE_HTTP_HOST)."),
    port: int = typer.Option(None, help="Port (default VITRINE_MOBILE_HTTP_PORT, 8100)."),
) -> None:
    """Serve until SIGTERM or SIGINT."""
    from mobile_api.app import serve
    from mobile_api.settings import MobileApiSettings

    settings = MobileApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    serve(settings, host, port)


def register(app: typer.Typer) -> None:
    """Mount the mobile_api's command groups on the root ``vitrine`` app."""
    app.add_typer(mobile_app, name="mobile-api")

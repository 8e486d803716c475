"""``vitrine`` sub-commands contributed by the mobile_api package."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Mount the mobile_api's command groups on the root ``vitrine`` app."""

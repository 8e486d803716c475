"""``vitrine`` sub-commands contributed by the server package."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Mount the server's command groups on the root ``vitrine`` app."""

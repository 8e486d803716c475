"""``vitrine`` sub-commands contributed by the gateway package."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Mount the gateway's command groups on the root ``vitrine`` app."""

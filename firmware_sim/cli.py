"""``vitrine`` sub-commands contributed by the firmware_sim package."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Mount the firmware_sim's command groups on the root ``vitrine`` app."""

"""Real services for tests: Mosquitto from ``deploy/mosquitto.conf``, PostgreSQL.

Missing services fail the run when ``CI`` is set (``scripts/test`` sets it) and
skip with the reason otherwise — never silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vitrine.runtime.broker import (
    BrokerNotFoundError,
    LocalBroker,
    free_port,
    start_local_broker,
    wait_for_port,
)

__all__ = ["REPO", "Broker", "free_port", "require_service", "start_mosquitto", "wait_for_port"]

REPO = Path(__file__).resolve().parents[2]
Broker = LocalBroker


def require_service(what: str, why: str) -> None:
    """Fail in CI, skip locally: a missing service is never a silent pass."""
    message = f"{what} unavailable: {why}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI requires it; run scripts/setup --postgres)", pytrace=False)
    pytest.skip(message)


@contextmanager
def start_mosquitto(workdir: Path, port: int | None = None) -> Iterator[LocalBroker]:
    try:
        with start_local_broker(workdir, port) as broker:
            yield broker
    except BrokerNotFoundError as exc:
        require_service("Mosquitto", str(exc))

"""The privacy proofs: one running store per module (``stack``), and the server's DB fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.privacy.stack import Stack, start_stack, stop_stack
from tests.server.conftest import backend, connection, db_url, engine, session
from tests.support.services import Broker

__all__ = ["backend", "connection", "db_url", "engine", "session", "stack"]


@pytest.fixture(scope="module")
def stack(
    mosquitto: Broker,
    postgres_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Gateway, ingest, server and mobile_api on PostgreSQL, logging JSON at DEBUG."""
    running = start_stack(mosquitto, postgres_database(), tmp_path_factory.mktemp("privacy"))
    try:
        yield running
    finally:
        stop_stack(running)
        running.tap.close()
        running.engine.dispose()

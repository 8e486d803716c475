"""The app's ops endpoints and error rendering, in process.

Starlette's TestClient warns (an error here) unless ``httpx2`` is installed, so
these tests drive the app through ``httpx.ASGITransport`` and run its lifespan
themselves with :func:`running`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from server import migrate
from server.app import create_app
from server.errors import Conflict, ConsentRequired, NotFound, VitrineError, install_error_handler
from server.settings import DEFAULT_DATABASE_URL, ServerSettings
from vitrine.runtime.settings import SettingsError


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, and a client that calls it in process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client,
    ):
        yield client


async def test_readyz_waits_for_the_migrations(fresh_db_url: str) -> None:
    app = create_app(ServerSettings(database_url=fresh_db_url))
    async with running(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"ready": False, "failing": ["migrations"]}

        migrate.upgrade(fresh_db_url)
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "failing": []}


async def test_readyz_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # A directory where the SQLite file should be: every connection attempt fails.
    blocked = tmp_path / "db"
    blocked.mkdir()
    app = create_app(ServerSettings(database_url=f"sqlite:///{blocked}"))
    async with running(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert set(response.json()["failing"]) == {"database", "migrations"}


async def test_errors_render_as_detail_with_their_status() -> None:
    app = FastAPI()
    install_error_handler(app)

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("no such item")

    @app.get("/consent")
    def consent() -> None:
        raise ConsentRequired("guidance")

    @app.get("/conflict")
    def conflict() -> None:
        raise Conflict("already claimed")

    @app.get("/teapot")
    def teapot() -> None:
        raise VitrineError("custom", status_code=418)

    async with running(app) as client:
        missing_response = await client.get("/missing")
        assert missing_response.status_code == 404
        assert missing_response.json() == {"detail": "no such item"}
        consent_response = await client.get("/consent")
        assert consent_response.status_code == 403
        assert consent_response.json() == {"detail": "consent required: guidance"}
        assert (await client.get("/conflict")).status_code == 409
        assert (await client.get("/teapot")).status_code == 418


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)
    assert ServerSettings().database_url == DEFAULT_DATABASE_URL
    monkeypatch.setenv("VITRINE_DATABASE_URL", "postgresql+psycopg://u:p@db/vitrine")
    assert ServerSettings().database_url == "postgresql+psycopg://u:p@db/vitrine"


def test_placeholder_secret_is_refused_outside_local_mode() -> None:
    ServerSettings(mode="local").validate_for_run()
    with pytest.raises(SettingsError, match="secret_key"):
        ServerSettings(mode="production").validate_for_run()
    ServerSettings(mode="production", secret_key="a-real-secret-from-the-vault").validate_for_run()

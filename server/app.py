"""The server's FastAPI application and the process that serves it.

:func:`create_app` builds the app for one :class:`ServerSettings`; its lifespan
owns the database engine (``app.state.engine``) and disposes of it on shutdown.
Feature routers are added by their packages; this module mounts the ops
endpoints (:func:`vitrine.runtime.http_ops.ops_router`) and the one error
handler (:mod:`server.errors`).

Every HTTP route is rate- and body-limited (:mod:`vitrine.runtime.http_limits`,
classes and defaults in :class:`ServerSettings` and docs/security.md).

Readiness checks: ``database`` (``SELECT 1`` answers) and ``migrations`` (the
database is at the scripts' head — a server started before ``vitrine db
upgrade`` is alive but not ready).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import FrameType

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine, make_url

from server import migrate
from server.auth.tokens import TokenError, verify_token
from server.db import make_engine, ping
from server.errors import install_error_handler
from server.settings import ServerSettings
from vitrine import __version__
from vitrine.runtime.http_limits import HttpLimits, install_http_limits
from vitrine.runtime.http_ops import ops_router
from vitrine.runtime.ops import Readiness

__all__ = ["create_app", "serve"]

log = logging.getLogger(__name__)


def create_app(settings: ServerSettings, *, engine: Engine | None = None) -> FastAPI:
    """The server app. Pass ``engine`` to share one (tests); else the lifespan makes one."""
    readiness = Readiness()
    expected_heads = set(migrate.heads())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        db = make_engine(settings.database_url) if engine is None else engine
        app.state.engine = db
        readiness.add("database", lambda: ping(db))
        readiness.add("migrations", lambda: _at_head(db, expected_heads))
        log.info(
            "server started",
            extra={"database": make_url(settings.database_url).get_backend_name()},
        )
        try:
            yield
        finally:
            if owned:
                db.dispose()
            log.info("server stopped")

    app = FastAPI(title="Vitrine server", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.include_router(ops_router(readiness))
    _include_feature_routers(app)
    install_error_handler(app)
    install_http_limits(app, http_limits(settings))
    return app


#: Routes never rate-limited: an orchestrator and Prometheus poll them.
UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})


def route_class(method: str, path: str) -> str | None:
    """The rate class of a request: ``ingest``, ``admin``, ``api`` or ``None`` (ops)."""
    if path in UNLIMITED:
        return None
    if path == "/v1/events":
        return "ingest"
    return "admin" if path.startswith("/v1/admin/") else "api"


def http_limits(settings: ServerSettings) -> HttpLimits:
    """The server's rates per class, its principal (role:subject) and body limits."""
    from server.catalogue.endpoints import IMPORT_BODY_LIMIT
    from server.ingest_web.endpoints import EVENTS_BODY_LIMIT
    from server.stores.endpoints import LAYOUT_BODY_LIMIT

    key = settings.secret_key.get_secret_value().encode()

    def principal(token: str) -> str | None:
        try:
            who = verify_token(key, token, now=datetime.now(UTC))
        except TokenError:
            return None
        return f"{who.role}:{who.subject}"

    return HttpLimits(
        rates={
            "ingest": settings.http_rate_ingest,
            "admin": settings.http_rate_admin,
            "api": settings.http_rate_api,
        },
        route_class=route_class,
        principal=principal,
        max_body_bytes=settings.http_max_body_bytes,
        # The bulk routes also check their own limit while reading (read_body).
        body_limits={
            "/v1/events": EVENTS_BODY_LIMIT,
            "/v1/admin/stores/import": LAYOUT_BODY_LIMIT,
            "/v1/admin/catalogue/import": IMPORT_BODY_LIMIT,
            "/v1/admin/catalogue/stock": IMPORT_BODY_LIMIT,
        },
        storage_uri=settings.http_rate_storage,
    )


def _include_feature_routers(app: FastAPI) -> None:
    """Catalogue, stores, online events, profiles, analytics, privacy, EPCIS, webhooks."""
    from server.analytics.endpoints import router as analytics
    from server.catalogue.endpoints import router as catalogue
    from server.epcis.endpoints import router as epcis
    from server.ingest_web.endpoints import router as events
    from server.privacy.endpoints import router as privacy
    from server.profiles.endpoints import router as profiles
    from server.stores.endpoints import router as stores
    from server.web.pages import router as web

    for router in (catalogue, stores, events, profiles, analytics, privacy, epcis, web):
        app.include_router(router)
    from server.offers.endpoints import router as offers
    from server.staff.endpoints import router as staff

    for router in (staff, offers):
        app.include_router(router)
    from server.stores.pickups import router as pickups
    from server.webhooks.endpoints import router as webhooks

    for router in (pickups, webhooks):
        app.include_router(router)
    from server.installs.endpoints import router as installs

    app.include_router(installs)


def _at_head(engine: Engine, expected: set[str]) -> bool:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == expected


def serve(settings: ServerSettings) -> None:
    """Run the server until SIGTERM/SIGINT, then shut down cleanly and return.

    uvicorn drains in-flight requests and runs the lifespan's shutdown on the
    signal, then re-raises it to the handler that was installed before it
    started; installing one here makes that a log line instead of a death by
    signal, so the process exits 0 after a clean stop.
    """
    settings.validate_for_run()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopped on signal", extra={"signal": signal.Signals(signum).name})

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        # Our JSON logging is configured by the caller; uvicorn's dictConfig would replace it.
        log_config=None,
        # Access lines would carry paths and query strings with shoppers' ids (QUALITY.md §6).
        access_log=False,
        lifespan="on",
        # Bounded drain on SIGTERM: long enough for in-flight requests, short
        # enough for an orchestrator's default 10 s grace period.
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()

"""The mobile_api application and the process that serves it.

:func:`create_app` builds the app for one :class:`MobileApiSettings`; its
lifespan owns the database engine (``app.state.engine``), the bus client
(``app.state.bus``) and the local connection hub (``app.state.hub``).
:func:`uvicorn_config` is the one place the server's WebSocket limits are set:
uvicorn's defaults are open (QUALITY.md fact 6), so the frame cap, ping
heartbeat and an access log that drops query strings are configured here.
Every HTTP route but the ops ones is rate- and body-limited
(:func:`http_limits`, :mod:`vitrine.runtime.http_limits`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import FrameType

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from mobile_api import endpoints, ws
from mobile_api.bus import Bus
from mobile_api.settings import MobileApiSettings
from mobile_api.stream import Hub
from mobile_api.tokens import TokenError, TokenSigner
from mobile_api.web import pages as web_pages
from server.db import make_engine, ping
from server.errors import install_error_handler
from vitrine import __version__
from vitrine.runtime.http_limits import HttpLimits, install_http_limits
from vitrine.runtime.http_ops import ops_router
from vitrine.runtime.ops import Readiness

__all__ = ["QueryStringFilter", "create_app", "http_limits", "serve", "uvicorn_config"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: MobileApiSettings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> FastAPI:
    """The app. Pass ``engine`` to share one (tests) and ``clock`` to control time."""
    settings.validate_for_run()
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        db = make_engine(settings.database_url) if engine is None else engine
        hub = Hub()
        bus = Bus(settings.mqtt_url, hub, asyncio.get_running_loop())
        app.state.engine, app.state.hub, app.state.bus = db, hub, bus
        app.state.loop = asyncio.get_running_loop()
        readiness.add("database", lambda: ping(db))
        readiness.add("mqtt", bus.subscribed.is_set)
        bus.start()
        log.info("mobile_api started")
        try:
            yield
        finally:
            bus.stop()
            if owned:
                db.dispose()
            log.info("mobile_api stopped")

    app = FastAPI(
        title="Vitrine mobile API",
        version=__version__,
        lifespan=lifespan,
        description="The companion app's REST API and WebSocket (docs/mobile-api.md).",
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.signer = TokenSigner(
        settings.mobile_secret_key.get_secret_value().encode(), lambda: clock().timestamp()
    )
    app.include_router(ops_router(readiness))
    app.include_router(endpoints.router)
    app.include_router(ws.router)
    app.include_router(web_pages.router)
    install_error_handler(app)
    install_http_limits(app, http_limits(settings, app.state.signer))
    return app


#: Routes never rate-limited: an orchestrator and Prometheus poll them.
UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})


def route_class(method: str, path: str) -> str | None:
    """The rate class of a request: ``public``, ``phone`` or ``None`` (ops).

    ``public``: the routes used before a phone has a token (``/v1/installs``,
    ``/v1/auth/…``, the ``/phone`` page), so counted per client address;
    ``phone``: every other route, counted per signed-in shopper.
    """
    if path in UNLIMITED:
        return None
    if path == "/v1/installs" or path.startswith(("/v1/auth/", "/phone")):
        return "public"
    return "phone"


def http_limits(settings: MobileApiSettings, signer: TokenSigner) -> HttpLimits:
    """mobile_api's rates per class, its principal (the shopper's profile) and body limit."""

    def principal(token: str) -> str | None:
        try:
            return signer.verify(token, "access").sub
        except TokenError:
            return None

    return HttpLimits(
        rates={"public": settings.mobile_rate_public, "phone": settings.mobile_rate_phone},
        route_class=route_class,
        principal=principal,
        max_body_bytes=settings.mobile_http_max_body_bytes,
        storage_uri=settings.mobile_rate_storage,
    )


_QUERY = re.compile(r"\?[^\s\"]*")


class QueryStringFilter(logging.Filter):
    """Strips query strings from uvicorn's log lines (a token there must never be logged).

    uvicorn writes the path *with* its query string both in the access log and
    in the WebSocket ``[accepted]``/``403`` lines of ``uvicorn.error``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub("", a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _QUERY.sub("", record.msg)
        return True


def install_log_filters() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
            logger.addFilter(QueryStringFilter())


def uvicorn_config(
    app: FastAPI, settings: MobileApiSettings, host: str, port: int
) -> uvicorn.Config:
    install_log_filters()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_max_size=settings.mobile_ws_max_frame_bytes,
        ws_ping_interval=settings.mobile_ws_ping_interval_s,
        ws_ping_timeout=settings.mobile_ws_ping_interval_s,
        log_config=None,  # ours (vitrine.runtime.logs), not uvicorn's
        lifespan="on",
    )


def serve(settings: MobileApiSettings, host: str | None = None, port: int | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down cleanly and return (exit 0).

    uvicorn drains connections and runs the lifespan's shutdown on the signal,
    then re-raises it to the handler installed before it started; installing one
    here (as ``server.app.serve`` does) makes that a log line instead of a death
    by signal (-15).
    """

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopped on signal", extra={"signal": signal.Signals(signum).name})

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn_config(
            app, settings, host or settings.mobile_http_host, port or settings.mobile_http_port
        )
    )
    started = time.monotonic()
    server.run()
    log.info("mobile_api served", extra={"uptime_s": round(time.monotonic() - started, 1)})

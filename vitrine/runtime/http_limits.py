"""Rate and body limits for the HTTP apps (QUALITY.md, "Security"; OWASP API4:2023
"Unrestricted Resource Consumption").

Two raw ASGI middlewares, installed together by :func:`install_http_limits`,
shared by the server and mobile_api; each app says how its routes are grouped
and who is calling::

    install_http_limits(app, HttpLimits(
        rates={"phone": "300/minute", "auth": "120/minute"},
        route_class=lambda method, path: "auth" if path.startswith("/v1/auth/") else "phone",
        principal=lambda token: verify(token).subject,   # None when invalid
        max_body_bytes=16 * 1024,
    ))

**Rate limit** (outermost, so a flood costs one dictionary lookup): each request
is counted against ``(route class, principal)``, where the principal is the
subject of a *verified* bearer token, else the client address (a forged token
buys no fresh budget). Counting is ``limits``' moving window (exact, no double
burst at window edges) in its storage (``memory://`` by default: per process;
several instances behind a load balancer need a shared one such as
``redis://``). Over the limit: ``429`` with ``Retry-After`` in seconds (RFC
6585 §4, RFC 9110 §10.2.3) and ``{"detail": ...}``. Keys are hashed: neither a
shopper's id nor an address lands in the storage in the clear.

**Body limit**: a declared ``Content-Length`` above the route's limit is answered
``413`` before the app runs (no side effect, no read; RFC 9110 §15.5.14); a
body without a length (chunked) or longer than it said is counted as it is
received and cut off at the limit with the same ``413``. The limit is
``max_body_bytes`` unless ``body_limits`` names the path.

WebSocket scopes pass through: their frames are limited by uvicorn's
``ws_max_size`` and the per-connection token bucket (``mobile_api.ws``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import orjson
from fastapi import FastAPI
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BodyLimitMiddleware",
    "BodyTooLargeError",
    "HttpLimits",
    "RateLimitMiddleware",
    "RateText",
    "check_rate",
    "install_http_limits",
]

log = logging.getLogger(__name__)

RATE_LIMITED = Counter(
    "vitrine_http_rate_limited_total", "Requests answered 429, per route class", ["route_class"]
)
BODY_TOO_LARGE = Counter("vitrine_http_body_too_large_total", "Requests answered 413")

#: ``(method, path) → route class``, or ``None`` for a route that is never limited.
RouteClassifier = Callable[[str, str], str | None]
#: ``bearer token → principal``, or ``None`` when the token does not verify.
PrincipalResolver = Callable[[str], str | None]


def check_rate(value: str) -> str:
    """A pydantic validator: ``value`` must be ``limits`` notation (``"300/minute"``)."""
    parse(value)  # ValueError on anything else, which pydantic reports with the field name
    return value


#: A settings field holding one rate in ``limits`` notation, checked when settings load.
RateText = Annotated[str, AfterValidator(check_rate)]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """One app's limits: its rates per route class, and how to class and name a caller."""

    #: Route class → rate in ``limits`` notation (``"N/second|minute|hour"``).
    rates: Mapping[str, str]
    route_class: RouteClassifier
    principal: PrincipalResolver
    #: Body limit of every route not in ``body_limits``.
    max_body_bytes: int
    #: Exact path → its own body limit (bulk imports, event batches).
    body_limits: Mapping[str, int] = field(default_factory=dict)
    #: ``limits`` storage URI; ``memory://`` counts per process.
    storage_uri: str = "memory://"


def install_http_limits(app: FastAPI, limits: HttpLimits) -> None:
    """Add both middlewares to ``app`` (rate limit outermost)."""
    app.add_middleware(
        BodyLimitMiddleware, default=limits.max_body_bytes, per_path=dict(limits.body_limits)
    )
    app.add_middleware(
        RateLimitMiddleware,
        rates=dict(limits.rates),
        route_class=limits.route_class,
        principal=limits.principal,
        storage=_storage(limits.storage_uri),
    )


def _storage(uri: str) -> Storage:
    storage = storage_from_string(uri)
    if not isinstance(storage, Storage):  # an ``async+…`` URI
        raise ValueError(f"rate-limit storage must be synchronous, not {uri.split(':')[0]}")
    return storage


def _json(status: int, detail: str, headers: Mapping[str, str] | None = None) -> list[Message]:
    body = orjson.dumps({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    ]


def bearer_token(headers: Headers) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 6750 §2.1)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class RateLimitMiddleware:
    """``429`` + ``Retry-After`` past ``rates[route class]`` for one principal (module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rates: Mapping[str, str],
        route_class: RouteClassifier,
        principal: PrincipalResolver,
        storage: Storage,
    ) -> None:
        self.app = app
        self.items: dict[str, RateLimitItem] = {name: parse(rate) for name, rate in rates.items()}
        self.route_class = route_class
        self.principal = principal
        self.limiter = MovingWindowRateLimiter(storage)
        #: A network storage is called off the event loop; memory is a dict lookup.
        self.blocking = not isinstance(storage, MemoryStorage)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = self.route_class(scope["method"], scope["path"])
        item = None if name is None else self.items.get(name)
        if name is None or item is None:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        if self.blocking:
            allowed = await run_in_threadpool(self.limiter.hit, item, name, key)
        else:
            allowed = self.limiter.hit(item, name, key)
        if allowed:
            await self.app(scope, receive, send)
            return
        stats = self.limiter.get_window_stats(item, name, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        RATE_LIMITED.labels(name).inc()
        log.info("rate limited", extra={"route_class": name, "retry_after_s": retry_after})
        for message in _json(
            429,
            f"rate limit exceeded: {item.amount} per {item.multiples} {item.GRANULARITY.name}",
            {"Retry-After": str(retry_after)},
        ):
            await send(message)

    def _key(self, scope: Scope) -> str:
        token = bearer_token(Headers(scope=scope))
        who = None if token is None else self.principal(token)
        if who is not None:
            who = f"principal:{who}"
        else:
            client = scope.get("client")
            who = f"address:{client[0] if client else 'unknown'}"
        # Hashed: shopper ids and addresses stay out of the storage (QUALITY.md, Privacy).
        return hashlib.blake2b(who.encode(), digest_size=16).hexdigest()


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` past the limit; FastAPI renders it as ``{"detail": ...}``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than {limit} bytes")


class BodyLimitMiddleware:
    """``413`` for a body past the route's limit, declared or counted (module doc)."""

    def __init__(self, app: ASGIApp, *, default: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            if message["type"] == "http.response.start" and message["status"] == 413:
                BODY_TOO_LARGE.inc()
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            # Raised where no exception handler renders it (outside a FastAPI route).
            if started:
                raise
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        BODY_TOO_LARGE.inc()
        for message in _json(413, f"body larger than {limit} bytes"):
            await send(message)

"""The store layout from the server: ``vitrine gateway run --layout-url URL``.

The server serves each store's imported layout at ``GET /v1/stores/{store}/layout``
(``docs/server-api.md``) as ``StoreLayout`` JSON with a strong ``ETag``; a
``gateway`` token (``vitrine auth token --role gateway --store <store>``) may read
its own store's. This module is the gateway's side:

- **Start** (:meth:`ServerLayout.first`): one GET. The server refusing (401,
  403, 404, or a document that is not a valid layout) is a configuration error:
  :class:`LayoutRefusedError`, the gateway exits 2 with the reason. The server
  unreachable (connection refused, timeout, 5xx) is not: the gateway starts on
  the **cached copy** of the last layout it fetched from that URL
  (``<state dir>/layout-<gateway id>.json``, written atomically at every fetch)
  so that a store keeps working through a WAN outage; without a cache it stays
  not ready (``/readyz`` fails ``layout``) and retries with a capped backoff
  until the server answers or the process is stopped.
- **Refresh** (:meth:`ServerLayout.start_refresher`): a conditional GET
  (``If-None-Match``, RFC 9110 §13.1.2) every ``layout_refresh_s``; a changed
  layout is handed to the service, which applies it between two inputs without
  a restart (``GatewayService.replace_layout``). Failures are logged and
  counted, never fatal: the gateway keeps the layout it has.

Retries: httpx's transport retries the connection (``retries=``, connection
errors only, per its docs) within one attempt; between attempts the schedule is
the refresh period, or the start backoff below while nothing is loaded. The
bearer token is never logged, and URLs are logged without user info or query.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from prometheus_client import Counter
from pydantic import ValidationError

from vitrine.contracts.layout import StoreLayout
from vitrine.runtime.layout_io import LayoutFileError, parse_layout

__all__ = [
    "Fetched",
    "LayoutCache",
    "LayoutClient",
    "LayoutRefusedError",
    "LayoutSourceError",
    "LayoutUnavailableError",
    "ServerLayout",
    "backoff_s",
    "redact",
]

log = logging.getLogger(__name__)

FETCHES = Counter(
    "vitrine_gateway_layout_fetches_total",
    "Layout requests to the server, by outcome",
    ["outcome"],  # changed, unchanged, unavailable, refused, cached
)

#: A server on the store LAN or across a WAN accepts a connection in well under
#: a second; 3 s bounds what a blackholed address costs per try (httpx's
#: default is 5 s) while riding out a congested uplink.
CONNECT_TIMEOUT_S = 3.0
#: A layout is a few KiB to a few hundred KiB rebuilt from a handful of queries:
#: 10 s is generous for a loaded server and still bounds a stuck response.
READ_TIMEOUT_S = 10.0
#: httpx transport retries: connection failures only, retried at once. Two
#: more tries absorb a server restarting (refused for a moment) in one attempt.
CONNECT_RETRIES = 2
#: Start without a layout (server down, no cache): wait 1 s, then doubling…
BACKOFF_FIRST_S = 1.0
#: … up to 30 s, the default refresh period: a server that is down is never
#: polled harder than one that is up, and it is picked up within 30 s of return.
BACKOFF_MAX_S = 30.0
#: How long a clean stop waits for the refresher thread (a request in flight
#: is abandoned: the thread is a daemon and the layout it would bring is moot).
JOIN_TIMEOUT_S = 1.0


class LayoutSourceError(Exception):
    """The layout could not be had from the server; the message says why (never the token)."""


class LayoutRefusedError(LayoutSourceError):
    """The server answered and will not give a usable layout: 401/403/404 or an invalid one.

    A configuration problem (wrong token, wrong store, token expired): retrying
    the same request cannot help.
    """


class LayoutUnavailableError(LayoutSourceError):
    """The server could not be reached or failed (connection, timeout, 5xx, …): try again."""


def backoff_s(failures: int) -> float:
    """Delay before the next start attempt after ``failures`` failed ones (1, 2, 4 … 30 s)."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures, 16)))


def redact(url: str) -> str:
    """``url`` without user info, query or fragment: what may appear in logs."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


@dataclass(frozen=True, slots=True)
class Fetched:
    """One answer: a layout and its tag, or ``layout=None`` when not modified (304)."""

    layout: StoreLayout | None
    etag: str | None


class LayoutClient:
    """``GET`` a store layout URL with the gateway's bearer token."""

    def __init__(
        self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport or httpx.HTTPTransport(retries=CONNECT_RETRIES),
            follow_redirects=False,
        )

    def fetch(self, etag: str | None = None) -> Fetched:
        """The current layout, or ``Fetched(None, etag)`` if ``etag`` is still current.

        Raises :class:`LayoutRefusedError` or :class:`LayoutUnavailableError`.
        """
        where = redact(self.url)
        headers = {"If-None-Match": etag} if etag else {}
        try:
            response = self._client.get(self.url, headers=headers)
        except httpx.HTTPError as exc:
            raise LayoutUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 304:
            return Fetched(None, response.headers.get("etag", etag))
        if status in (401, 403, 404):
            raise LayoutRefusedError(f"{where}: the server answered {status}: {_detail(response)}")
        if status != 200:
            raise LayoutUnavailableError(f"{where}: the server answered {status}")
        try:
            layout = parse_layout(response.content, json=True, source=where)
        except LayoutFileError as exc:
            raise LayoutRefusedError(str(exc)) from None
        return Fetched(layout, response.headers.get("etag"))

    def close(self) -> None:
        self._client.close()


def _detail(response: httpx.Response) -> str:
    """The server's problem ``detail`` (``docs/server-api.md``), short; never our headers."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail)[:200] if detail else response.reason_phrase


@dataclass(frozen=True, slots=True)
class _Cached:
    layout: StoreLayout
    etag: str | None


class LayoutCache:
    """The last layout fetched from ``url``, kept in the state directory.

    ``{"url", "etag", "layout"}`` JSON, written atomically (temp file, fsync,
    rename) like the pipeline state. A cache written for another URL (another
    store or server) is ignored.
    """

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self._url = url

    def load(self) -> _Cached | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("layout cache unreadable", extra={"path": str(self.path), "error": str(exc)})
            return None
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("url") != self._url:
                log.warning(
                    "layout cache is for another URL: ignored", extra={"path": str(self.path)}
                )
                return None
            etag = data.get("etag")
            return _Cached(
                StoreLayout.model_validate(data.get("layout")),
                etag if isinstance(etag, str) else None,
            )
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.error(
                "layout cache invalid: ignored", extra={"path": str(self.path), "error": str(exc)}
            )
            return None

    def save(self, layout: StoreLayout, etag: str | None) -> None:
        body = {"url": self._url, "etag": etag, "layout": layout.model_dump(mode="json")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".layout-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(body))
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class ServerLayout:
    """The layout for ``vitrine gateway run --layout-url``: first load, cache, refresh."""

    def __init__(self, client: LayoutClient, cache: LayoutCache, refresh_s: float) -> None:
        self.client = client
        self.cache = cache
        self.refresh_s = refresh_s
        #: Set once a layout is loaded (from the server or the cache): readiness.
        self.loaded = threading.Event()
        self.layout: StoreLayout | None = None
        self.etag: str | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_gateway(
        cls, url: str, token: str | None, state_dir: Path, gateway_id: str, refresh_s: float
    ) -> ServerLayout:
        cache = LayoutCache(Path(state_dir) / f"layout-{gateway_id}.json", url)
        return cls(LayoutClient(url, token), cache, refresh_s)

    def first(self, stop: threading.Event) -> StoreLayout | None:
        """The layout to start with; ``None`` if ``stop`` was set while waiting for one.

        Raises :class:`LayoutRefusedError` when the server refuses (exit 2).
        """
        failures = 0
        while not stop.is_set():
            try:
                fetched = self.client.fetch()
            except LayoutRefusedError:
                FETCHES.labels("refused").inc()
                raise
            except LayoutUnavailableError as exc:
                FETCHES.labels("unavailable").inc()
                if failures == 0:
                    cached = self.cache.load()
                    if cached is not None:
                        FETCHES.labels("cached").inc()
                        log.warning(
                            "layout server unreachable: starting on the cached layout",
                            extra={"error": str(exc), "cache": str(self.cache.path)},
                        )
                        self._loaded(cached.layout, cached.etag)
                        return cached.layout
                delay = backoff_s(failures)
                failures += 1
                log.warning(
                    "layout server unreachable and no cached layout: not ready, retrying",
                    extra={"error": str(exc), "retry_in_s": delay},
                )
                stop.wait(delay)
                continue
            assert fetched.layout is not None  # no If-None-Match was sent
            FETCHES.labels("changed").inc()
            self._loaded(fetched.layout, fetched.etag)
            self._save(fetched.layout, fetched.etag)
            log.info(
                "layout loaded from the server",
                extra={"url": redact(self.client.url), "store": fetched.layout.store.id},
            )
            return fetched.layout
        return None

    def refresh(self) -> StoreLayout | None:
        """One conditional GET: the new layout if it changed, else ``None``. Never raises."""
        current = self.layout
        try:
            fetched = self.client.fetch(self.etag)
        except LayoutSourceError as exc:
            refused = isinstance(exc, LayoutRefusedError)
            FETCHES.labels("refused" if refused else "unavailable").inc()
            log.log(
                logging.ERROR if refused else logging.WARNING,
                "layout refresh failed: keeping the current layout",
                extra={"error": str(exc)},
            )
            return None
        if fetched.layout is None:
            FETCHES.labels("unchanged").inc()
            return None
        if current is not None and fetched.layout.store.id != current.store.id:
            FETCHES.labels("refused").inc()
            log.error(
                "the server's layout names another store: ignored (restart to change store)",
                extra={"store": current.store.id, "served": fetched.layout.store.id},
            )
            return None
        self.etag = fetched.etag
        if fetched.layout == current:
            FETCHES.labels("unchanged").inc()
            return None
        FETCHES.labels("changed").inc()
        self.layout = fetched.layout
        self._save(fetched.layout, fetched.etag)
        return fetched.layout

    def start_refresher(
        self, stop: threading.Event, apply: Callable[[StoreLayout], None]
    ) -> threading.Thread:
        """Poll every ``refresh_s`` until ``stop``; hand each changed layout to ``apply``."""

        def loop() -> None:
            while not stop.wait(self.refresh_s):
                layout = self.refresh()
                if layout is None:
                    continue
                try:
                    apply(layout)
                except ValueError as exc:
                    log.error("changed layout not applied", extra={"error": str(exc)})

        thread = threading.Thread(target=loop, name="layout-refresh", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        self.client.close()

    def _loaded(self, layout: StoreLayout, etag: str | None) -> None:
        self.layout, self.etag = layout, etag
        self.loaded.set()

    def _save(self, layout: StoreLayout, etag: str | None) -> None:
        try:
            self.cache.save(layout, etag)
        except OSError as exc:  # a full disk must not stop a working gateway
            log.error(
                "layout cache not written", extra={"path": str(self.cache.path), "error": str(exc)}
            )

"""Liveness, readiness and Prometheus metrics for every process.

HTTP processes (server, mobile_api) mount :func:`ops_router` on their FastAPI
app; the others (gateway, simulator) run :class:`OpsServer`, a tiny threaded
HTTP server on its own port. Both serve the same three paths:

- ``/healthz``: the process is alive (200 while it runs);
- ``/readyz``: every readiness check passes (200) or not (503, with the names);
- ``/metrics``: the Prometheus text format from the default registry, to which
  each feature adds its counters (reads/s, facts/s, dead letters, queue depths).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["OpsServer", "Readiness", "stop_event_on_signals"]

log = logging.getLogger(__name__)


class Readiness:
    """Named checks; the process is ready when all of them return True."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}

    def add(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def failing(self) -> list[str]:
        failing = []
        for name, check in self._checks.items():
            try:
                ok = check()
            except Exception:  # a crashing check means "not ready", never a 500
                log.exception("readiness check failed", extra={"check": name})
                ok = False
            if not ok:
                failing.append(name)
        return failing

    def report(self) -> tuple[int, bytes]:
        failing = self.failing()
        body = orjson.dumps({"ready": not failing, "failing": failing})
        return (503 if failing else 200), body


class _Handler(BaseHTTPRequestHandler):
    readiness: Readiness

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b'{"alive":true}', "application/json")
        elif self.path == "/readyz":
            status, body = self.readiness.report()
            self._send(status, body, "application/json")
        elif self.path == "/metrics":
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b'{"detail":"not found"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Health probes every few seconds would drown the process's own log.
        pass


class OpsServer:
    """Serves /healthz, /readyz and /metrics on a background thread."""

    def __init__(self, host: str, port: int, readiness: Readiness) -> None:
        handler = type("OpsHandler", (_Handler,), {"readiness": readiness})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="ops-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("ops endpoint listening", extra={"port": self.port})

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for processes with a blocking main loop."""
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop

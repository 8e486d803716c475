"""``/healthz``, ``/readyz`` and ``/metrics`` as a FastAPI router, for HTTP processes.

The same three paths as :class:`vitrine.runtime.ops.OpsServer` (see that module),
mounted on the process's own app so that the server and mobile_api need no
second port::

    readiness = Readiness()
    app.include_router(ops_router(readiness))

``/readyz`` runs the checks in FastAPI's thread pool (the route is sync), so a
check may block on I/O such as a database ping without stalling the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vitrine.runtime.ops import Readiness

__all__ = ["ops_router"]


def ops_router(readiness: Readiness) -> APIRouter:
    """A router serving liveness, readiness (from ``readiness``) and Prometheus metrics."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: 200 while the process runs")
    def healthz() -> Response:
        return Response(b'{"alive":true}', media_type="application/json")

    @router.get(
        "/readyz",
        summary="Readiness: 200 when every check passes, 503 with the failing names",
    )
    def readyz() -> Response:
        status, body = readiness.report()
        return Response(body, status_code=status, media_type="application/json")

    @router.get("/metrics", summary="Prometheus text exposition of the default registry")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router

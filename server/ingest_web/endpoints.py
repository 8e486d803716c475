"""``POST /v1/events``: Segment, GA4 (gtag, dataLayer, MP), Shopify Web Pixels, native.

One event or a batch (a JSON array, a Segment ``{"batch": [...]}``, a GA4 MP
body with ``events[]``, or NDJSON). The body lists one result per event:
``accepted``, ``duplicate`` (already stored), ``skipped`` (not a view or a
purchase) or ``rejected`` with the reason. Status 200 unless every event was
rejected (422). The formats are in ``docs/online-events.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server.auth.deps import IngestDep
from server.db import SessionDep
from server.ingest_web import service
from server.ingest_web.body import read_body
from server.ingest_web.schemas import IngestReport

__all__ = ["EVENTS_BODY_LIMIT", "router"]

router = APIRouter(tags=["online events"])

#: 1 MiB: above Segment's own batch cap (500 KB, Segment HTTP Tracking API
#: "Max request size") and GA4 Measurement Protocol's 130 kB per request, so
#: any real tracker's batch fits while a runaway client is cut off early.
EVENTS_BODY_LIMIT = 1024 * 1024


@router.post(
    "/v1/events",
    summary="Ingest online product views and purchases",
    response_model=IngestReport,
    responses={422: {"model": IngestReport, "description": "every event was rejected"}},
)
async def post_events(request: Request, session: SessionDep, caller: IngestDep) -> JSONResponse:
    body = await read_body(request, EVENTS_BODY_LIMIT)
    report: IngestReport = await run_in_threadpool(service.ingest, session, body, datetime.now(UTC))
    all_rejected = report.rejected == len(report.results)
    return JSONResponse(report.model_dump(mode="json"), status_code=422 if all_rejected else 200)

"""The response of ``POST /v1/events``: counts and one result per input event."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["EventResult", "EventStatus", "IngestReport"]

EventStatus = Literal["accepted", "duplicate", "skipped", "rejected"]


class EventResult(BaseModel):
    #: Position among the events found in the body (a batch is flattened in order).
    index: int
    status: EventStatus
    event_id: str | None = None
    reason: str | None = None
    #: Product lines not found in the catalogue (stored by SKU, resolved later).
    unresolved_products: int = 0


class IngestReport(BaseModel):
    accepted: int = 0
    duplicate: int = 0
    skipped: int = 0
    rejected: int = 0
    results: list[EventResult] = []

    def add(self, result: EventResult) -> None:
        self.results.append(result)
        setattr(self, result.status, getattr(self, result.status) + 1)

"""Queries of the online-events feature: the idempotency ledger."""

from __future__ import annotations

from sqlmodel import Session

from server.models import ProcessedEvent

__all__ = ["CONSUMER", "already_processed"]

#: This feature's name in ``processed_events`` (the engine's consumers use their own).
CONSUMER = "web_events"


def already_processed(session: Session, event_id: str) -> bool:
    return session.get(ProcessedEvent, (CONSUMER, event_id)) is not None

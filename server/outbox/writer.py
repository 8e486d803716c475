"""Writing outbox rows inside the caller's transaction (ARCHITECTURE.md, "State and storage")."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session

from server.models import OutboxMessage
from vitrine.contracts.events import (
    GuidanceEvent,
    InteractionEvent,
    OfferEvent,
    OutboundEvent,
    StaffAlertEvent,
    StaffTaskEvent,
    VisitClosedEvent,
)
from vitrine.contracts.topics import shopper_out_topic, staff_out_topic

__all__ = ["enqueue", "enqueue_event", "stream_and_topic"]


def stream_and_topic(event: OutboundEvent) -> tuple[str, str]:
    """The resume stream (``shopper:<id>`` / ``staff:<store>``) and the MQTT topic of ``event``."""
    if isinstance(event, GuidanceEvent | OfferEvent | InteractionEvent | VisitClosedEvent):
        return (
            f"shopper:{event.shopper}",
            shopper_out_topic(event.store, event.shopper, event.kind),
        )
    assert isinstance(event, StaffAlertEvent | StaffTaskEvent)
    return f"staff:{event.store}", staff_out_topic(event.store, event.kind)


def _next_stream_seq(session: Session, stream: str) -> int:
    # The unique (stream, stream_seq) constraint turns a concurrent writer's race
    # into an IntegrityError at flush/commit (a retry), never a gap or a duplicate.
    last = session.execute(
        sa.select(sa.func.max(OutboxMessage.stream_seq)).where(OutboxMessage.stream == stream)  # type: ignore[arg-type]
    ).scalar_one_or_none()
    return (last or 0) + 1


def enqueue(session: Session, stream: str, topic: str, event: BaseModel) -> OutboxMessage:
    """Add ``event`` to the outbox in ``session``'s transaction; returns the row.

    The payload is the event with ``seq`` set to the stream's next number (when
    the event has a ``seq`` field), so a client can resume from the last it saw.
    """
    stream_seq = _next_stream_seq(session, stream)
    if "seq" in type(event).model_fields:
        event = event.model_copy(update={"seq": stream_seq})
    row = OutboxMessage(
        stream=stream,
        stream_seq=stream_seq,
        topic=topic,
        payload=event.model_dump_json().encode(),
    )
    session.add(row)
    session.flush()
    return row


def enqueue_event(session: Session, event: OutboundEvent) -> OutboxMessage:
    """:func:`enqueue` on the event's own stream and topic."""
    stream, topic = stream_and_topic(event)
    return enqueue(session, stream, topic, event)

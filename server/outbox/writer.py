"""Writing outbox rows inside the caller's transaction (ARCHITECTURE.md, "State and storage")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

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

__all__ = ["enqueue", "enqueue_event", "enqueue_events", "stream_and_topic"]


def stream_and_topic(event: OutboundEvent) -> tuple[str, str]:
    """The resume stream (``shopper:<id>`` / ``staff:<store>``) and the MQTT topic of ``event``."""
    if isinstance(event, GuidanceEvent | OfferEvent | InteractionEvent | VisitClosedEvent):
        return (
            f"shopper:{event.shopper}",
            shopper_out_topic(event.store, event.shopper, event.kind),
        )
    assert isinstance(event, StaffAlertEvent | StaffTaskEvent)
    return f"staff:{event.store}", staff_out_topic(event.store, event.kind)


#: ``session.info`` key of the per-transaction cache of each stream's last ``stream_seq``.
_LAST_SEQ = "vitrine.outbox.last_stream_seq"


def _next_stream_seq(session: Session, stream: str) -> int:
    # The unique (stream, stream_seq) constraint turns a concurrent writer's race
    # into an IntegrityError at flush/commit (a retry), never a gap or a duplicate.
    #
    # The stream's last number is asked of the database once per transaction:
    # a second row on the same stream in it (a shopper's guidance then its
    # interaction; a batch's staff alerts) follows the number this transaction
    # gave out. The cache belongs to the innermost transaction it was filled
    # in (held, so that identity is never reused): a commit, a rollback or a
    # savepoint begun or ended makes it stale and the next row asks again, so
    # a rolled-back row never leaves a gap.
    seqs = _cached_seqs(session)
    last = seqs.get(stream) if seqs is not None else None
    if last is None:
        # Not flushing first: this transaction's pending rows are all in the
        # cache (a savepoint's start and a commit flush; a rollback drops them),
        # so none of them is on this stream, and the rows before can go out
        # together at the caller's flush.
        with session.no_autoflush:
            last = (
                session.execute(
                    sa.select(sa.func.max(OutboxMessage.stream_seq)).where(
                        col(OutboxMessage.stream) == stream
                    )
                ).scalar_one_or_none()
                or 0
            )
        # The query began the transaction if none was open.
        seqs = seqs if seqs is not None else _cached_seqs(session)
    assert seqs is not None
    seqs[stream] = last + 1
    return last + 1


def _cached_seqs(session: Session) -> dict[str, int] | None:
    """The innermost open transaction's cache (a new one if it has none); ``None`` outside one."""
    tx = session.get_nested_transaction() or session.get_transaction()
    if tx is None:
        return None
    cached: tuple[object, dict[str, int]] | None = session.info.get(_LAST_SEQ)
    if cached is None or cached[0] is not tx:
        cached = (tx, {})
        session.info[_LAST_SEQ] = cached
    return cached[1]


def _numbered(session: Session, stream: str, event: BaseModel) -> tuple[int, bytes]:
    """The stream's next number and the payload: the event with ``seq`` set to it
    when the event has a ``seq`` field (a client resumes from the last it saw)."""
    stream_seq = _next_stream_seq(session, stream)
    if "seq" in type(event).model_fields:
        event = event.model_copy(update={"seq": stream_seq})
    return stream_seq, event.model_dump_json().encode()


def enqueue(session: Session, stream: str, topic: str, event: BaseModel) -> OutboxMessage:
    """Add ``event`` to the outbox in ``session``'s transaction; returns the row.

    The payload is the event with ``seq`` set to the stream's next number (when
    the event has a ``seq`` field), so a client can resume from the last it saw.
    """
    stream_seq, payload = _numbered(session, stream, event)
    row = OutboxMessage(stream=stream, stream_seq=stream_seq, topic=topic, payload=payload)
    session.add(row)
    session.flush()
    return row


def enqueue_event(session: Session, event: OutboundEvent) -> OutboxMessage:
    """:func:`enqueue` on the event's own stream and topic."""
    stream, topic = stream_and_topic(event)
    return enqueue(session, stream, topic, event)


def enqueue_events(session: Session, events: Sequence[OutboundEvent]) -> None:
    """:func:`enqueue_event` for each of ``events``, in order, in **one** ``INSERT``.

    The rows are not returned (nor loaded into the session): the ingest writes
    a fact's events this way, one statement instead of one per event. Their
    ``seq`` follows the order of ``events``, as one stream's rows must be sent
    in the order of their ``stream_seq``: SQLite, one writer, numbers a
    multi-row ``VALUES`` in its order; on PostgreSQL the statement asks for the
    keys in parameter order (SQLAlchemy's ``sort_by_parameter_order``, which
    inserts from a ``SELECT … ORDER BY`` so the sequence is drawn in that
    order; on SQLite it would fall back to a statement per row).
    """
    if not events:
        return
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for event in events:
        stream, topic = stream_and_topic(event)
        stream_seq, payload = _numbered(session, stream, event)
        rows.append(
            {
                "stream": stream,
                "stream_seq": stream_seq,
                "topic": topic,
                "payload": payload,
                "created_at": now,
            }
        )
    insert = sa.insert(OutboxMessage)
    if session.get_bind().dialect.name != "sqlite":
        insert = insert.returning(col(OutboxMessage.seq), sort_by_parameter_order=True)
    session.execute(insert, rows)

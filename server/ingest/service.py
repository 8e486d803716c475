"""One fact, one transaction: the ingest's unit of work.

:func:`handle_fact_message` is what the consumer's worker calls per MQTT
message; it returns only after the transaction committed (or the message was
found to be a duplicate, or was dead-lettered — itself through the outbox, in
its own transaction), so the caller may then acknowledge the message.

Order inside the transaction: skip if ``(consumer, event_id)`` is already in
``processed_events``; load the context; run the engine; apply its state
changes; write the outbox rows; record the event as processed; commit. A
concurrent duplicate loses on the ``processed_events`` primary key at commit
and is rolled back: one effect either way.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from server.engine import Decision, EngineSettings, decide
from server.ingest.repository import UnknownStoreError, apply_decision, load_context
from server.models import ProcessedEvent
from server.outbox import enqueue, enqueue_event
from vitrine.contracts.app_token import DEFAULT_PERIOD_S
from vitrine.contracts.facts import Fact, parse_fact
from vitrine.contracts.ids import StoreId
from vitrine.contracts.topics import TopicError, deadletter_topic, parse_topic

__all__ = [
    "CONSUMER",
    "DeadLetter",
    "IngestConfig",
    "Outcome",
    "dead_letter",
    "handle_fact_message",
    "process_fact",
]

log = logging.getLogger(__name__)

#: The consumer name in ``processed_events``.
CONSUMER = "server.ingest"
#: The dead-letter stage of the server (``vitrine/v1/{store}/deadletter/server``).
STAGE = "server"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    #: Keys the footfall hash (the server's secret key).
    footfall_key: bytes
    engine: EngineSettings = field(default_factory=EngineSettings)
    token_period_s: int = DEFAULT_PERIOD_S


class DeadLetter(BaseModel):
    """What the server publishes on ``deadletter/server``: why, and the original bytes."""

    model_config = ConfigDict(frozen=True)

    stage: Literal["server"] = "server"
    reason: str
    topic: str
    received_at: datetime
    #: The original payload, base64 (it may not be UTF-8).
    payload_b64: str


Outcome = Literal["applied", "duplicate", "dead_letter", "dropped"]


def process_fact(
    session: Session, fact: Fact, config: IngestConfig, now: datetime
) -> Decision | None:
    """Apply ``fact`` in ``session`` (not committed); ``None`` if already processed."""
    if session.get(ProcessedEvent, (CONSUMER, fact.event_id)) is not None:
        return None
    ctx = load_context(
        session,
        fact,
        key=config.footfall_key,
        settings=config.engine,
        period_s=config.token_period_s,
    )
    decision = decide(fact, ctx, now)
    apply_decision(session, fact, ctx, decision)
    for event in decision.events:
        enqueue_event(session, event)
    session.add(ProcessedEvent(consumer=CONSUMER, event_id=fact.event_id, processed_at=now))
    session.flush()
    return decision


def handle_fact_message(
    engine: Engine, topic: str, payload: bytes, config: IngestConfig, now: datetime | None = None
) -> Outcome:
    """Parse, decide, commit. Returns once it is safe to acknowledge the message."""
    now = now or datetime.now(UTC)
    try:
        store = parse_topic(topic).store
    except TopicError:
        log.warning("fact on a foreign topic dropped", extra={"topic": topic})
        return "dropped"
    try:
        fact = parse_fact(payload)
    except pydantic.ValidationError as exc:
        dead_letter(engine, store, topic, payload, f"invalid fact: {_short(exc)}", now)
        return "dead_letter"
    if fact.store != store:
        dead_letter(engine, store, topic, payload, "fact store differs from topic store", now)
        return "dead_letter"
    with Session(engine, expire_on_commit=False) as session:
        try:
            decision = process_fact(session, fact, config, now)
        except UnknownStoreError:
            session.rollback()
            dead_letter(engine, store, topic, payload, "unknown store", now)
            return "dead_letter"
        if decision is None:
            return "duplicate"
        try:
            session.commit()
        except IntegrityError:
            # Another worker committed the same event first (its processed_events
            # row won): this delivery is the duplicate.
            session.rollback()
            return "duplicate"
    log.debug("fact applied", extra={"store": store, "kind": fact.kind, "note": decision.note})
    return "applied"


def dead_letter(
    engine: Engine, store: StoreId, topic: str, payload: bytes, reason: str, now: datetime
) -> None:
    log.warning("fact dead-lettered", extra={"store": store, "topic": topic, "reason": reason})
    letter = DeadLetter(
        reason=reason,
        topic=topic,
        received_at=now,
        payload_b64=base64.b64encode(payload).decode(),
    )
    with Session(engine) as session:
        enqueue(session, f"deadletter:{store}", deadletter_topic(store, STAGE), letter)
        session.commit()


def _short(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)[:300]
    where = ".".join(str(p) for p in errors[0]["loc"])
    return f"{where}: {errors[0]['msg']}"[:300]

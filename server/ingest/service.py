"""The ingest's unit of work: a fact, or a batch of a store's waiting facts, per transaction.

:func:`handle_fact_message` applies one MQTT message; :func:`handle_fact_batch`
applies the messages a worker found waiting, in order, in one transaction (the
same per-fact steps, shared reads, one commit). Both return only after the
transaction committed (or the message was found to be a duplicate, or was
dead-lettered — itself through the outbox), so the caller may then acknowledge.

Order inside the transaction: skip if ``(consumer, event_id)`` is already in
``processed_events``; load the context; run the engine; apply its state
changes; write the outbox rows; record the event as processed; commit. A
concurrent duplicate loses on the ``processed_events`` primary key at commit
and is rolled back: one effect either way.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from server.engine import Decision, EngineSettings, decide
from server.ingest.repository import Lookups, UnknownStoreError, apply_decision, load_context
from server.models import ProcessedEvent
from server.outbox import enqueue, enqueue_events
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
    "handle_fact_batch",
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
    session: Session,
    fact: Fact,
    config: IngestConfig,
    now: datetime,
    lookups: Lookups | None = None,
) -> Decision | None:
    """Apply ``fact`` in ``session`` (not committed); ``None`` if already processed.

    ``lookups`` carries what the transaction already read (a batch passes one
    for all its facts); without it the fact reads everything itself.
    """
    lookups = lookups if lookups is not None else Lookups()
    if lookups.processed(session, CONSUMER, fact.event_id):
        return None
    ctx = load_context(
        session,
        fact,
        key=config.footfall_key,
        settings=config.engine,
        period_s=config.token_period_s,
        lookups=lookups,
    )
    decision = decide(fact, ctx, now)
    # In a batch, a decision that only moves an item writes rows no other row
    # references (items, item_observations, processed_events): they may wait
    # for the next flush, so a run of item facts is inserted in a few
    # multi-row statements. Anything else is flushed with its fact, as alone:
    # the ORM orders a flush by relationships, which these models do not
    # declare, so rows referencing each other must reach the database in the
    # order the code adds them.
    flush = not (lookups.batched and _item_only(decision))
    apply_decision(session, fact, ctx, decision, lookups, flush=flush)
    # The fact's events in one statement (outbox rows reference no other row).
    enqueue_events(session, decision.events)
    session.add(ProcessedEvent(consumer=CONSUMER, event_id=fact.event_id, processed_at=now))
    lookups.mark_processed(fact.event_id)
    if flush:
        session.flush()
    return decision


def _item_only(decision: Decision) -> bool:
    return (
        decision.visit_open is None
        and not decision.visits
        and decision.visit_close is None
        and not decision.interactions
        and not decision.events
    )


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


def handle_fact_batch(
    engine: Engine,
    messages: Sequence[tuple[str, bytes]],
    config: IngestConfig,
    now: datetime | None = None,
) -> list[Outcome]:
    """Apply ``messages`` (topic, payload) in order in **one** transaction; one outcome each.

    Returns once the transaction committed, so that every message may then be
    acknowledged. What :func:`handle_fact_message` does per message happens here
    per message too, in the same order and with the same outcomes — skip a
    processed event (known from one query for the batch, or recorded earlier
    in it: a redelivery inside the batch is a ``duplicate``), dead-letter an
    invalid fact, a store mismatch or an unknown store (the dead letter's
    outbox row in this same transaction) — but the batch reads what it shares
    once (:class:`~server.ingest.repository.Lookups`) and commits once.

    Raises whatever the database or a fact raised, with nothing committed: the
    caller retries the batch on a database outage, and on anything else falls
    back to :func:`handle_fact_message` per message, so that a bad fact is
    dead-lettered alone (docs/engine.md, "Batches").
    """
    now = now or datetime.now(UTC)
    outcomes: list[Outcome] = []
    letters: list[tuple[StoreId, str, bytes, str]] = []
    facts: list[Fact | None] = []
    for topic, payload in messages:
        fact: Fact | None = None
        try:
            store = parse_topic(topic).store
        except TopicError:
            log.warning("fact on a foreign topic dropped", extra={"topic": topic})
            outcomes.append("dropped")
            facts.append(None)
            continue
        try:
            fact = parse_fact(payload)
        except pydantic.ValidationError as exc:
            letters.append((store, topic, payload, f"invalid fact: {_short(exc)}"))
        else:
            if fact.store != store:
                letters.append((store, topic, payload, "fact store differs from topic store"))
                fact = None
        outcomes.append("applied" if fact is not None else "dead_letter")
        facts.append(fact)
    with Session(engine, expire_on_commit=False) as session:
        lookups = Lookups()
        lookups.preload(session, CONSUMER, (f for f in facts if f is not None))
        letter_at = iter(letters)
        for i, ((topic, payload), fact) in enumerate(zip(messages, facts, strict=True)):
            if outcomes[i] == "dropped":
                continue
            if fact is None:
                store, topic, payload, reason = next(letter_at)
                _enqueue_dead_letter(session, store, topic, payload, reason, now)
                continue
            try:
                decision = process_fact(session, fact, config, now, lookups)
            except UnknownStoreError:
                # Raised before the fact wrote anything (the zones come first).
                _enqueue_dead_letter(session, fact.store, topic, payload, "unknown store", now)
                outcomes[i] = "dead_letter"
                continue
            if decision is None:
                outcomes[i] = "duplicate"
                continue
            log.debug(
                "fact applied",
                extra={"store": fact.store, "kind": fact.kind, "note": decision.note},
            )
        session.commit()
    return outcomes


def dead_letter(
    engine: Engine, store: StoreId, topic: str, payload: bytes, reason: str, now: datetime
) -> None:
    with Session(engine) as session:
        _enqueue_dead_letter(session, store, topic, payload, reason, now)
        session.commit()


def _enqueue_dead_letter(
    session: Session, store: StoreId, topic: str, payload: bytes, reason: str, now: datetime
) -> None:
    log.warning("fact dead-lettered", extra={"store": store, "topic": topic, "reason": reason})
    letter = DeadLetter(
        reason=reason,
        topic=topic,
        received_at=now,
        payload_b64=base64.b64encode(payload).decode(),
    )
    enqueue(session, f"deadletter:{store}", deadletter_topic(store, STAGE), letter)


def _short(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)[:300]
    where = ".".join(str(p) for p in errors[0]["loc"])
    return f"{where}: {errors[0]['msg']}"[:300]

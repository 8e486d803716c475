"""Store normalised online events: views and purchases against profiles, once each.

A purchase whose shipping method is a store pickup also leaves a pending
pickup in that store (click & collect), in the same transaction.

Each event is written inside its own SAVEPOINT, so one bad event (no shopper
key, a value the database refuses) is reported and rolled back alone while the
rest of the batch commits (QUALITY.md, "Bad input"). The idempotency key is the
normaliser's ``event_id`` (the platform's own id, or a content hash), kept in
``processed_events``: a replayed batch answers ``duplicate`` and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from server.catalogue.service import resolve_line
from server.events import NormalisedEvent, Rejected, Skipped, normalise_each
from server.ingest_web import repository
from server.ingest_web.schemas import EventResult, IngestReport
from server.models import Channel, InteractionKind, ProcessedEvent, ProductView, ProfileInteraction
from server.profiles.service import NoShopperKey, resolve_profile
from server.stores.pickups import find_store, open_online_pickup
from server.webhooks.service import enqueue_interaction

__all__ = ["decode_body", "ingest", "store_event"]

log = logging.getLogger(__name__)

#: Browser clocks run ahead; a view "in the future" beyond this is stamped with
#: the receive time instead, so a wrong clock cannot reorder a journey.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ID_MAX = 128  # processed_events.event_id, product_views.event_id
ORDER_ID_MAX = 200  # pending_pickups.order_id


def _row_id(event_id: str, suffix: str = "") -> str:
    full = f"{event_id}{suffix}"
    if len(full) <= _ID_MAX:
        return full
    return "sha256:" + hashlib.sha256(full.encode()).hexdigest()


def decode_body(body: bytes) -> object:
    """JSON, or NDJSON (one event per line); raises ``ValueError`` with the reason."""
    try:
        return json.loads(body)
    except ValueError as first:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise ValueError(f"body is not JSON: {first}") from None
        try:
            return [json.loads(line) for line in lines]
        except ValueError as error:
            raise ValueError(f"body is neither JSON nor NDJSON: {error}") from None


def ingest(session: Session, body: bytes, now: datetime) -> IngestReport:
    report = IngestReport()
    try:
        value = decode_body(body)
    except ValueError as error:
        report.add(EventResult(index=0, status="rejected", reason=str(error)))
        return report
    outcomes = normalise_each(value)
    if not outcomes:
        report.add(EventResult(index=0, status="rejected", reason="no events in the body"))
        return report
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Skipped):
            report.add(EventResult(index=index, status="skipped", reason=outcome.reason))
        elif isinstance(outcome, Rejected):
            report.add(EventResult(index=index, status="rejected", reason=outcome.reason))
        else:
            report.add(_store_one(session, index, outcome, now))
    session.commit()
    log.info(
        "online events ingested",
        extra={k: getattr(report, k) for k in ("accepted", "duplicate", "skipped", "rejected")},
    )
    return report


def _store_one(session: Session, index: int, event: NormalisedEvent, now: datetime) -> EventResult:
    key = _row_id(event.event_id)
    if repository.already_processed(session, key):
        return EventResult(index=index, status="duplicate", event_id=event.event_id)
    try:
        with session.begin_nested():
            unresolved = store_event(session, event, now)
    except NoShopperKey as error:
        return EventResult(
            index=index, status="rejected", event_id=event.event_id, reason=error.message
        )
    except sa.exc.IntegrityError:
        # A concurrent request stored the same event first (the ledger's primary key).
        if repository.already_processed(session, key):
            return EventResult(index=index, status="duplicate", event_id=event.event_id)
        log.warning("online event refused by the database", extra={"platform": event.platform})
        return EventResult(
            index=index, status="rejected", event_id=event.event_id, reason="refused by storage"
        )
    return EventResult(
        index=index, status="accepted", event_id=event.event_id, unresolved_products=unresolved
    )


def store_event(session: Session, event: NormalisedEvent, now: datetime) -> int:
    """Write one event's rows (no commit); return how many lines the catalogue lacks."""
    resolution = resolve_profile(session, event.shopper_keys, now)
    profile_id = resolution.profile_id
    at = event.event_time or now
    if at > now + MAX_CLOCK_SKEW:
        at = now
    unresolved = 0
    is_view = event.event_type == "product_viewed"
    for i, line in enumerate(event.products):
        product, variant = resolve_line(
            session,
            product_id=line.product_id,
            variant_id=line.variant_id,
            sku=line.sku,
            variant_text=line.variant,
        )
        if product is None:
            unresolved += 1
        sku = variant.sku if variant is not None else line.sku
        row_id = _row_id(event.event_id, f"/{i}")
        data: dict[str, object] = {"platform": event.platform}
        for name, value in (
            ("sku", sku),
            ("online_product_id", None if product else line.product_id),
            ("name", None if product else line.name),
            ("variant", line.variant),
            ("price", str(line.price) if line.price is not None else None),
            ("currency", line.currency),
            ("quantity", line.quantity),
            ("order_id", None if is_view else event.order_id),
        ):
            if value is not None:
                data[name] = value
        if is_view:
            session.add(
                ProductView(
                    event_id=row_id,
                    profile_id=profile_id,
                    product_id=product.id if product else None,
                    variant_id=variant.id if variant else None,
                    sku=sku[:100] if sku else None,
                    platform=event.platform,
                    viewed_at=at,
                )
            )
        interaction = ProfileInteraction(
            event_id=row_id,
            profile_id=profile_id,
            channel=Channel.WEB,
            kind=InteractionKind.VIEWED if is_view else InteractionKind.BOUGHT,
            product_id=product.id if product else None,
            variant_id=variant.id if variant else None,
            occurred_at=at,
            data=data,
        )
        session.add(interaction)
        # Web interactions reach the CRM's webhooks like store ones, in this transaction.
        enqueue_interaction(session, interaction, now)
    if event.event_type == "purchase" and event.pickup_store and event.order_id:
        _click_and_collect(session, event.pickup_store, profile_id, event.order_id, at)
    session.add(ProcessedEvent(consumer=repository.CONSUMER, event_id=_row_id(event.event_id)))
    session.flush()
    return unresolved


def _click_and_collect(
    session: Session, store_named: str, profile_id: str, order_id: str, at: datetime
) -> None:
    """An order to collect in a store: a pending pickup, as the admin route makes one."""
    store = find_store(session, store_named)
    if store is None:
        # The order is still a purchase; only the pickup has nowhere to wait.
        log.warning("click & collect order for an unknown store")
        return
    if len(order_id) > ORDER_ID_MAX:
        log.warning("click & collect order id too long", extra={"store": store.id})
        return
    if open_online_pickup(session, store.id, profile_id, order_id, at) is None:
        log.warning("click & collect order waits for another profile", extra={"store": store.id})

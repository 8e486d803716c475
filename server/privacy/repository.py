"""Every query of the privacy feature: what names a profile, and what is past retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import (
    AppInstall,
    AppTokenHint,
    Consent,
    ConsentEvent,
    DeliveryStatus,
    ItemObservation,
    OutboxMessage,
    PendingPickup,
    ProcessedEvent,
    ProductView,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StoreVisit,
    WebhookDelivery,
)

#: Rows per fetch / per ``IN (...)`` when scanning the outbox: well under
#: SQLite's default 32766 bound parameters, and a few MB of payloads at a time.
_SCAN_CHUNK = 1000

__all__ = [
    "delete_outbox_naming",
    "delete_profile_rows",
    "purge_before",
    "rows_of",
]


def rows_of(session: Session, table: Any, profile_id: str) -> Sequence[Any]:
    return session.exec(select(table).where(table.profile_id == profile_id)).all()


def delete_outbox_naming(session: Session, needles: Sequence[str]) -> int:
    """Outbox rows whose stream or payload names the subject (sent or not: the bytes are held).

    Payloads are opaque bytes (``LargeBinary``, which has no portable ``LIKE``),
    so they are scanned here in chunks; erasure is rare and the outbox is
    purged by retention, so the scan stays bounded.
    """
    wanted = [n.encode() for n in needles if n]
    if not wanted:
        return 0
    doomed: list[int] = []
    rows = session.execute(
        sa.select(col(OutboxMessage.seq), col(OutboxMessage.stream), col(OutboxMessage.payload))
        .order_by(col(OutboxMessage.seq))
        .execution_options(yield_per=_SCAN_CHUNK)
    )
    for seq, stream, payload in rows:
        blob = stream.encode() + b"\0" + bytes(payload)
        if any(n in blob for n in wanted):
            doomed.append(seq)
    for start in range(0, len(doomed), _SCAN_CHUNK):
        session.execute(
            sa.delete(OutboxMessage).where(
                col(OutboxMessage.seq).in_(doomed[start : start + _SCAN_CHUNK])
            )
        )
    return len(doomed)


def delete_profile_rows(session: Session, profile_id: str) -> dict[str, int]:
    """Delete every row hanging off the profile, then the profile (explicit, not only cascades)."""
    counts: dict[str, int] = {}
    # The token index of the profile's installs (it would go with them by cascade).
    installs = select(AppInstall.id).where(AppInstall.profile_id == profile_id)
    result = session.execute(
        sa.delete(AppTokenHint).where(col(AppTokenHint.install_id).in_(installs))
    )
    counts["app_token_hints"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    # Interactions reference visits: delete them first.
    for table in (
        ProfileInteraction,
        ProductView,
        StoreVisit,
        ConsentEvent,
        Consent,
        AppInstall,
        ProfileAlias,
    ):
        result = session.execute(sa.delete(table).where(col(table.profile_id) == profile_id))
        counts[table.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.execute(sa.delete(ShopperProfile).where(col(ShopperProfile.id) == profile_id))
    return counts


def purge_before(session: Session, cutoff: datetime) -> dict[str, int]:
    """Rows whose time is before ``cutoff``: journeys (and what hangs off a visit: alerts,
    offer deliveries, engine memory, by cascade), collected orders, published outbox,
    the idempotency ledger."""
    statements = {
        "profile_interactions": sa.delete(ProfileInteraction).where(
            col(ProfileInteraction.occurred_at) < cutoff
        ),
        "product_views": sa.delete(ProductView).where(col(ProductView.viewed_at) < cutoff),
        # Closed before the cutoff, or still open though begun before it: its exit
        # was missed (a visit lasts at most the engine's max_visit, 12 h), and an
        # open visit would otherwise keep the shopper's trace, and the alerts,
        # offers and engine memory hanging off it, forever.
        "store_visits": sa.delete(StoreVisit).where(
            sa.or_(
                sa.and_(col(StoreVisit.ended_at).is_not(None), col(StoreVisit.ended_at) < cutoff),
                sa.and_(col(StoreVisit.ended_at).is_(None), col(StoreVisit.started_at) < cutoff),
            )
        ),
        "outbox": sa.delete(OutboxMessage).where(
            col(OutboxMessage.published_at).is_not(None), col(OutboxMessage.published_at) < cutoff
        ),
        "processed_events": sa.delete(ProcessedEvent).where(
            col(ProcessedEvent.processed_at) < cutoff
        ),
        "item_observations": sa.delete(ItemObservation).where(
            col(ItemObservation.occurred_at) < cutoff
        ),
        # Click & collect orders collected before the cutoff; uncollected ones still wait.
        "pending_pickups": sa.delete(PendingPickup).where(
            col(PendingPickup.collected_at).is_not(None), col(PendingPickup.collected_at) < cutoff
        ),
        # Delivered or given up: pending ones are still owed.
        "webhook_deliveries": sa.delete(WebhookDelivery).where(
            col(WebhookDelivery.status) != DeliveryStatus.PENDING,
            col(WebhookDelivery.created_at) < cutoff,
        ),
    }
    return {
        name: int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
        for name, stmt in statements.items()
    }

"""Every query of the privacy feature: what names a profile, and what is past retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import (
    AppInstall,
    Consent,
    ConsentEvent,
    OutboxMessage,
    ProcessedEvent,
    ProductView,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StoreVisit,
)

__all__ = [
    "delete_outbox_naming",
    "delete_profile_rows",
    "purge_before",
    "rows_of",
]


def rows_of(session: Session, table: Any, profile_id: str) -> Sequence[Any]:
    return session.exec(select(table).where(table.profile_id == profile_id)).all()


def delete_outbox_naming(session: Session, needles: Sequence[str]) -> int:
    """Outbox rows whose stream or payload names the subject (sent or not: the bytes are held)."""
    clauses: list[sa.ColumnElement[bool]] = []
    for needle in needles:
        clauses.append(col(OutboxMessage.stream).contains(needle, autoescape=True))
        # Payloads are JSON bytes: compare as bytes so both SQLite and PostgreSQL (bytea) match.
        pattern = (
            b"%"
            + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").encode()
            + b"%"
        )
        clauses.append(col(OutboxMessage.payload).like(pattern, escape="\\"))
    if not clauses:
        return 0
    result = session.execute(sa.delete(OutboxMessage).where(sa.or_(*clauses)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_profile_rows(session: Session, profile_id: str) -> dict[str, int]:
    """Delete every row hanging off the profile, then the profile (explicit, not only cascades)."""
    counts: dict[str, int] = {}
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
    """Rows whose time is before ``cutoff``: journeys, published outbox, the idempotency ledger."""
    statements = {
        "profile_interactions": sa.delete(ProfileInteraction).where(
            col(ProfileInteraction.occurred_at) < cutoff
        ),
        "product_views": sa.delete(ProductView).where(col(ProductView.viewed_at) < cutoff),
        "store_visits": sa.delete(StoreVisit).where(
            col(StoreVisit.ended_at).is_not(None), col(StoreVisit.ended_at) < cutoff
        ),
        "outbox": sa.delete(OutboxMessage).where(
            col(OutboxMessage.published_at).is_not(None), col(OutboxMessage.published_at) < cutoff
        ),
        "processed_events": sa.delete(ProcessedEvent).where(
            col(ProcessedEvent.processed_at) < cutoff
        ),
    }
    return {
        name: int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
        for name, stmt in statements.items()
    }

"""Analytics queries: narrow column tuples (kinds compared as text, the set is open)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col

from server.models import ProfileInteraction, StoreVisit

__all__ = ["Step", "VisitRow", "interactions", "visits"]


class Step(NamedTuple):
    profile_id: str
    kind: str
    channel: str
    product_id: str | None
    store_id: str | None
    zone_id: str | None
    occurred_at: datetime


class VisitRow(NamedTuple):
    profile_id: str | None
    store_id: str
    started_at: datetime
    ended_at: datetime | None
    entry_zone_id: str | None
    last_zone_id: str | None


def interactions(
    session: Session,
    *,
    kinds: Sequence[str],
    start: datetime,
    end: datetime,
    store: str | None = None,
    product: str | None = None,
) -> list[Step]:
    kind = sa.cast(col(ProfileInteraction.kind), sa.String)
    query = sa.select(
        col(ProfileInteraction.profile_id),
        kind,
        sa.cast(col(ProfileInteraction.channel), sa.String),
        col(ProfileInteraction.product_id),
        col(ProfileInteraction.store_id),
        col(ProfileInteraction.data),
        col(ProfileInteraction.occurred_at),
    ).where(
        kind.in_(list(kinds)),
        col(ProfileInteraction.occurred_at) >= start,
        col(ProfileInteraction.occurred_at) < end,
    )
    if store is not None:
        query = query.where(
            sa.or_(
                col(ProfileInteraction.store_id) == store,
                col(ProfileInteraction.store_id).is_(None),
            )
        )
    if product is not None:
        query = query.where(col(ProfileInteraction.product_id) == product)
    return [
        Step(pid, k, ch, prod, st, (data or {}).get("zone") if isinstance(data, dict) else None, at)
        for pid, k, ch, prod, st, data, at in session.execute(query).all()
    ]


def visits(
    session: Session, *, start: datetime, end: datetime, store: str | None = None
) -> list[VisitRow]:
    query = sa.select(
        col(StoreVisit.profile_id),
        col(StoreVisit.store_id),
        col(StoreVisit.started_at),
        col(StoreVisit.ended_at),
        col(StoreVisit.entry_zone_id),
        col(StoreVisit.last_zone_id),
    ).where(col(StoreVisit.started_at) >= start, col(StoreVisit.started_at) < end)
    if store is not None:
        query = query.where(col(StoreVisit.store_id) == store)
    return [VisitRow(*row) for row in session.execute(query).all()]

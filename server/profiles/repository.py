"""Every query of the profiles feature: aliases, merges, consents, the timeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import (
    AliasKind,
    AppInstall,
    Consent,
    ConsentEvent,
    Product,
    ProductView,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StoreVisit,
    Variant,
)

__all__ = [
    "aliases_of",
    "consent_history",
    "consents_of",
    "find_aliases",
    "get_profile",
    "move_profile_rows",
    "timeline",
]


def get_profile(session: Session, profile_id: str) -> ShopperProfile | None:
    return session.get(ShopperProfile, profile_id)


def find_aliases(session: Session, pairs: Iterable[tuple[AliasKind, str]]) -> list[ProfileAlias]:
    wanted = list(pairs)
    if not wanted:
        return []
    clause = sa.or_(
        *(sa.and_(col(ProfileAlias.kind) == k, col(ProfileAlias.value) == v) for k, v in wanted)
    )
    return list(session.exec(select(ProfileAlias).where(clause)).all())


def aliases_of(session: Session, profile_ids: Iterable[str]) -> Sequence[ProfileAlias]:
    return session.exec(
        select(ProfileAlias).where(col(ProfileAlias.profile_id).in_(list(profile_ids)))
    ).all()


def consents_of(session: Session, profile_id: str) -> Sequence[Consent]:
    return session.exec(select(Consent).where(Consent.profile_id == profile_id)).all()


def consent_history(session: Session, profile_id: str) -> Sequence[ConsentEvent]:
    return session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.profile_id == profile_id)
        .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
    ).all()


#: Rows that hang off a profile by ``profile_id`` and follow it through a merge.
_FOLLOWERS: tuple[
    type[ProfileAlias | AppInstall | ProductView | StoreVisit | ProfileInteraction | ConsentEvent],
    ...,
] = (
    ProfileAlias,
    AppInstall,
    ProductView,
    StoreVisit,
    ProfileInteraction,
    ConsentEvent,
)


def move_profile_rows(session: Session, source: str, target: str) -> None:
    """Re-point every row of ``source`` at ``target`` (consents are merged by the service)."""
    for table in _FOLLOWERS:
        session.execute(
            sa.update(table).where(col(table.profile_id) == source).values(profile_id=target)
        )


def timeline(
    session: Session, profile_id: str, *, before: datetime | None, limit: int
) -> Sequence[tuple[ProfileInteraction, Product | None, Variant | None]]:
    """Newest first: each interaction with its product and variant, if known."""
    query = (
        select(ProfileInteraction, Product, Variant)
        .join(Product, col(Product.id) == col(ProfileInteraction.product_id), isouter=True)
        .join(Variant, col(Variant.id) == col(ProfileInteraction.variant_id), isouter=True)
        .where(ProfileInteraction.profile_id == profile_id)
    )
    if before is not None:
        query = query.where(col(ProfileInteraction.occurred_at) < before)
    query = query.order_by(
        col(ProfileInteraction.occurred_at).desc(), col(ProfileInteraction.id).desc()
    ).limit(limit)
    return session.exec(query).all()

"""Export, erasure and the retention purge (QUALITY.md, "Privacy"; docs/privacy.md).

Erasure deletes the profile and everything that names it — aliases, app
installs (their BLE secrets with them), consents and their history, product
views, store visits, interactions — and every outbox row whose stream or bytes
name the profile id or one of its alias values. Anonymous footfall rows never
named anyone and stay. The test ``tests/server/privacy`` scans every table.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, SQLModel, col, select

from server.errors import NotFound
from server.models import (
    AppInstall,
    Consent,
    ConsentEvent,
    OutboxMessage,
    ProductView,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StoreVisit,
)
from server.privacy import repository
from server.privacy.schemas import ErasureReport, ProfileExport, PurgeReport

__all__ = ["erase_profile", "export_profile", "purge"]

log = logging.getLogger(__name__)


def _dump(row: SQLModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude=exclude)


def _require(session: Session, profile_id: str) -> ShopperProfile:
    profile = session.get(ShopperProfile, profile_id)
    if profile is None:
        raise NotFound(f"no profile {profile_id}")
    return profile


def export_profile(session: Session, profile_id: str, now: datetime) -> ProfileExport:
    """Machine-readable JSON of every row about the profile.

    App install secrets are left out: they are keys, not data about the person,
    and returning them would let anyone holding the export forge the app's token.
    """
    profile = _require(session, profile_id)
    stream = f"shopper:{profile_id}"
    pending = session.exec(
        select(OutboxMessage).where(OutboxMessage.stream == stream).order_by(col(OutboxMessage.seq))
    ).all()
    return ProfileExport(
        exported_at=now,
        profile=_dump(profile),
        aliases=[_dump(a) for a in repository.rows_of(session, ProfileAlias, profile_id)],
        app_installs=[
            _dump(i, exclude={"secret"})
            for i in repository.rows_of(session, AppInstall, profile_id)
        ],
        consents=[_dump(c) for c in repository.rows_of(session, Consent, profile_id)],
        consent_history=[_dump(e) for e in repository.rows_of(session, ConsentEvent, profile_id)],
        product_views=[_dump(v) for v in repository.rows_of(session, ProductView, profile_id)],
        store_visits=[_dump(v) for v in repository.rows_of(session, StoreVisit, profile_id)],
        interactions=[
            _dump(i) for i in repository.rows_of(session, ProfileInteraction, profile_id)
        ],
        pending_messages=[
            {
                "seq": m.seq,
                "topic": m.topic,
                "created_at": m.created_at.isoformat(),
                "payload": m.payload.decode("utf-8", "replace"),
            }
            for m in pending
        ],
    )


def erase_profile(session: Session, profile_id: str) -> ErasureReport:
    """Delete the profile and every row that names it, in one transaction."""
    _require(session, profile_id)
    aliases = [a.value for a in repository.rows_of(session, ProfileAlias, profile_id)]
    try:
        deleted = {"outbox": repository.delete_outbox_naming(session, [profile_id, *aliases])}
        deleted |= repository.delete_profile_rows(session, profile_id)
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.expire_all()
    log.info("profile erased", extra={"rows": sum(deleted.values())})
    return ErasureReport(profile_id=profile_id, deleted=deleted)


def purge(session: Session, older_than: timedelta, now: datetime) -> PurgeReport:
    """Delete journey rows, published outbox rows and ledger entries older than the retention.

    Consents and their history stay while the profile exists: they prove the
    lawful basis for what is still held (GDPR Art. 7(1)).
    """
    cutoff = now - older_than
    try:
        deleted = repository.purge_before(session, cutoff)
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("retention purge", extra={"deleted": deleted})
    return PurgeReport(cutoff=cutoff, deleted=deleted)

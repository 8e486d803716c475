"""Profiles: who an online event is about, what the profile holds, its consents and journey.

Identity resolution (:func:`resolve_profile`) follows three rules, strongest key first:

1. A *known* key (a login: web user id, e-mail hash, Shopify customer id) that is
   already an alias picks the profile.
2. Otherwise a known key joins the profile of the event's anonymous key
   (anonymous id, GA client id…) — the shopper just logged in — unless that
   profile already belongs to someone else (it has a known alias), in which
   case the known key starts its own profile (a shared device).
3. Only anonymous keys: the first one that is an alias picks the profile, else
   a new profile is made.

Profiles that this event's *anonymous* keys point at and that have no known
alias are folded into the chosen one (views, visits, interactions, aliases,
installs, consent history move; for each purpose the most recent decision
wins). Two profiles that both have known aliases are never merged: that is a
conflict the CRM resolves, not a guess Vitrine makes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from server.errors import BadRequest, NotFound
from server.models import (
    AliasKind,
    Consent,
    ConsentEvent,
    ConsentPurpose,
    ProfileAlias,
    ShopperProfile,
)
from server.profiles import repository
from server.profiles.schemas import (
    ConsentHistoryEntry,
    ConsentsRead,
    ConsentState,
    ConsentUpdate,
    ProfileRead,
    Resolution,
    Timeline,
    TimelineEntry,
)

__all__ = [
    "KNOWN_KINDS",
    "NoShopperKey",
    "current_consents",
    "get_consents",
    "get_profile",
    "parse_shopper_key",
    "resolve_profile",
    "timeline",
    "update_consents",
]

log = logging.getLogger(__name__)

#: ``server.events`` key namespaces → alias kinds. Platforms name the same thing
#: differently (Segment ``userId``, GA4/native ``user_id``).
_KEY_KINDS: dict[str, AliasKind] = {
    "userId": AliasKind.WEB_USER_ID,
    "user_id": AliasKind.WEB_USER_ID,
    "email_sha256": AliasKind.EMAIL_HASH,
    "shopify_customer_id": AliasKind.SHOPIFY_CUSTOMER_ID,
    "anonymousId": AliasKind.ANONYMOUS_ID,
    "anonymous_id": AliasKind.ANONYMOUS_ID,
    "client_id": AliasKind.GA_CLIENT_ID,
    "app_instance_id": AliasKind.GA_APP_INSTANCE_ID,
    "shopify_client_id": AliasKind.SHOPIFY_CLIENT_ID,
}
#: Kinds that name a person (a login), as opposed to a browser or an app install.
KNOWN_KINDS = frozenset(
    {AliasKind.WEB_USER_ID, AliasKind.EMAIL_HASH, AliasKind.SHOPIFY_CUSTOMER_ID}
)
_ALIAS_MAX = 256  # profile_aliases.value


class NoShopperKey(BadRequest):
    """The event names no shopper in a namespace Vitrine knows."""


def parse_shopper_key(key: str) -> tuple[AliasKind, str] | None:
    namespace, sep, value = key.partition(":")
    kind = _KEY_KINDS.get(namespace)
    if not sep or kind is None or not value or len(value) > _ALIAS_MAX:
        return None
    return kind, value


def resolve_profile(session: Session, keys: Sequence[str], now: datetime) -> Resolution:
    """The profile these ``namespace:value`` keys name, created or merged as needed (no commit)."""
    pairs = list(dict.fromkeys(p for p in map(parse_shopper_key, keys) if p is not None))
    if not pairs:
        raise NoShopperKey("no shopper key in a known namespace")
    found = {(a.kind, a.value): a for a in repository.find_aliases(session, pairs)}
    owners = {a.profile_id for a in found.values()}
    known_owner = {
        pid: any(a.kind in KNOWN_KINDS for a in repository.aliases_of(session, [pid]))
        for pid in owners
    }
    known_pairs = [p for p in pairs if p[0] in KNOWN_KINDS]
    anonymous_pairs = [p for p in pairs if p[0] not in KNOWN_KINDS]

    primary: str | None = next((found[p].profile_id for p in known_pairs if p in found), None)
    if primary is None:
        candidate = next((found[p].profile_id for p in anonymous_pairs if p in found), None)
        if candidate is not None and not (known_pairs and known_owner[candidate]):
            primary = candidate
    resolution = Resolution(profile_id="")
    if primary is None:
        profile = ShopperProfile(created_at=now)
        session.add(profile)
        session.flush()
        primary = profile.id
        resolution.created = True
    resolution.profile_id = primary

    for p in anonymous_pairs:
        owner = found[p].profile_id if p in found else None
        if owner is not None and owner != primary and not known_owner[owner]:
            _merge(session, source=owner, target=primary, now=now)
            resolution.merged.append(owner)

    held = {a.kind: a.value for a in repository.aliases_of(session, [primary])}
    for kind, value in pairs:
        if (kind, value) in found:
            continue
        if kind in KNOWN_KINDS and kind in held and held[kind] != value:
            log.info("known alias conflicts with the profile's; not added", extra={"kind": kind})
            continue
        session.add(ProfileAlias(profile_id=primary, kind=kind, value=value, created_at=now))
    session.flush()
    return resolution


def _merge(session: Session, *, source: str, target: str, now: datetime) -> None:
    target_consents = {c.purpose: c for c in repository.consents_of(session, target)}
    for consent in repository.consents_of(session, source):
        mine = target_consents.get(consent.purpose)
        if mine is None or consent.updated_at > mine.updated_at:
            if mine is None:
                session.add(
                    Consent(
                        profile_id=target,
                        purpose=consent.purpose,
                        granted=consent.granted,
                        updated_at=consent.updated_at,
                    )
                )
            else:
                mine.granted, mine.updated_at = consent.granted, consent.updated_at
            session.add(
                ConsentEvent(
                    profile_id=target,
                    purpose=consent.purpose,
                    granted=consent.granted,
                    source="merge",
                    actor="system",
                    occurred_at=now,
                )
            )
        session.delete(consent)
    session.flush()
    repository.move_profile_rows(session, source, target)
    src, dst = repository.get_profile(session, source), repository.get_profile(session, target)
    if src is not None and dst is not None:
        for field in ("display_name", "loyalty_tier", "known_size"):
            if getattr(dst, field) is None:
                setattr(dst, field, getattr(src, field))
        session.flush()
        session.expire_all()
        session.delete(src)
    session.flush()
    log.info("anonymous profile merged into a known one")


def _require(session: Session, profile_id: str) -> ShopperProfile:
    profile = repository.get_profile(session, profile_id)
    if profile is None:
        raise NotFound(f"no profile {profile_id}")
    return profile


def get_profile(session: Session, profile_id: str) -> ProfileRead:
    profile = _require(session, profile_id)
    counts: dict[str, int] = {}
    for alias in repository.aliases_of(session, [profile_id]):
        counts[alias.kind.value] = counts.get(alias.kind.value, 0) + 1
    return ProfileRead(
        id=profile.id,
        created_at=profile.created_at,
        display_name=profile.display_name,
        loyalty_tier=profile.loyalty_tier,
        known_size=profile.known_size,
        aliases=counts,
        consents={c.purpose.value: c.granted for c in repository.consents_of(session, profile_id)},
    )


def current_consents(session: Session, profile_id: str) -> frozenset[ConsentPurpose]:
    """The purposes this profile has granted now (no row means not granted)."""
    return frozenset(c.purpose for c in repository.consents_of(session, profile_id) if c.granted)


def get_consents(session: Session, profile_id: str) -> ConsentsRead:
    _require(session, profile_id)
    current = {c.purpose: c for c in repository.consents_of(session, profile_id)}
    return ConsentsRead(
        profile_id=profile_id,
        current=[
            ConsentState(
                purpose=purpose,
                granted=current[purpose].granted if purpose in current else False,
                updated_at=current[purpose].updated_at if purpose in current else None,
            )
            for purpose in ConsentPurpose
        ],
        history=[
            ConsentHistoryEntry(
                purpose=e.purpose,
                granted=e.granted,
                source=e.source,
                actor=e.actor,
                occurred_at=e.occurred_at,
            )
            for e in repository.consent_history(session, profile_id)
        ],
    )


def update_consents(
    session: Session, profile_id: str, update: ConsentUpdate, *, actor: str, now: datetime
) -> ConsentsRead:
    """Apply each change and append it to the history (even a repeat: it is a new decision)."""
    _require(session, profile_id)
    at = update.occurred_at or now
    current = {c.purpose: c for c in repository.consents_of(session, profile_id)}
    for change in update.changes:
        row = current.get(change.purpose)
        if row is None:
            row = Consent(profile_id=profile_id, purpose=change.purpose, granted=change.granted)
            session.add(row)
            current[change.purpose] = row
        row.granted, row.updated_at = change.granted, at
        session.add(
            ConsentEvent(
                profile_id=profile_id,
                purpose=change.purpose,
                granted=change.granted,
                source=update.source,
                actor=actor,
                occurred_at=at,
            )
        )
    session.commit()
    return get_consents(session, profile_id)


def timeline(session: Session, profile_id: str, *, before: datetime | None, limit: int) -> Timeline:
    """Web views and store interactions, oldest first within a page; pages go back in time."""
    _require(session, profile_id)
    rows = repository.timeline(session, profile_id, before=before, limit=limit)
    entries = [
        TimelineEntry(
            occurred_at=i.occurred_at,
            channel=i.channel.value,
            kind=str(i.kind.value if hasattr(i.kind, "value") else i.kind),
            product_id=i.product_id,
            product_name=p.name if p else None,
            variant_id=i.variant_id,
            sku=v.sku if v else (i.data or {}).get("sku"),
            size=v.size if v else None,
            colour=v.colour if v else None,
            store_id=i.store_id,
            visit_id=i.visit_id,
            data=i.data,
        )
        for i, p, v in reversed(rows)
    ]
    next_before = entries[0].occurred_at if len(rows) == limit and entries else None
    return Timeline(profile_id=profile_id, entries=entries, next_before=next_before)

"""Every query mobile_api makes, on a caller's :class:`sqlmodel.Session`.

Object-level authorisation lives here as much as in the endpoints: every read
and write about a shopper takes the caller's ``profile_id`` and filters on it,
so an id that belongs to someone else is indistinguishable from one that does
not exist (404, never 403: no oracle for other shoppers' ids — OWASP API1).

The server has no consent-update, export or erase service yet; the minimum is
here (``set_consent``, ``export_profile``, ``erase_profile``) and should move
to ``server/profiles`` / ``server/privacy`` when those land.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.errors import NotFound
from server.models import (
    AliasKind,
    AppInstall,
    Channel,
    Consent,
    ConsentEvent,
    ConsentPurpose,
    InteractionKind,
    Item,
    ItemStatus,
    OutboxMessage,
    Product,
    ProductView,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    Store,
    StoreVisit,
    Variant,
    Zone,
    new_id,
)

__all__ = [
    "StreamWindow",
    "create_install",
    "enqueue",
    "erase_profile",
    "export_profile",
    "profile_for_web_user",
    "shopper_stream",
    "stream_rows",
    "stream_window",
]

#: 32 bytes: the HMAC-SHA256 key size (RFC 2104 §3 recommends at least the output length).
INSTALL_SECRET_BYTES = 32


def shopper_stream(profile_id: str) -> str:
    """The outbox stream a shopper's phone resumes on (``server.models.outbox``)."""
    return f"shopper:{profile_id}"


# ------------------------------------------------------------------ installs


def create_install(session: Session) -> AppInstall:
    install = AppInstall(secret=secrets.token_bytes(INSTALL_SECRET_BYTES))
    session.add(install)
    session.commit()
    return install


def get_install(session: Session, install_id: str) -> AppInstall | None:
    return session.get(AppInstall, install_id)


def profile_for_web_user(session: Session, web_user_id: str) -> ShopperProfile:
    """The profile the online store's user id names, created on first sign-in."""
    alias = session.exec(
        select(ProfileAlias).where(
            ProfileAlias.kind == AliasKind.WEB_USER_ID, ProfileAlias.value == web_user_id
        )
    ).first()
    if alias is not None:
        profile = session.get(ShopperProfile, alias.profile_id)
        assert profile is not None  # the alias's foreign key
        return profile
    profile = ShopperProfile()
    session.add(profile)
    session.flush()
    session.add(ProfileAlias(profile_id=profile.id, kind=AliasKind.WEB_USER_ID, value=web_user_id))
    return profile


def get_profile(session: Session, profile_id: str) -> ShopperProfile:
    profile = session.get(ShopperProfile, profile_id)
    if profile is None:
        raise NotFound("profile not found")
    return profile


# ------------------------------------------------------------------ consents


def list_consents(session: Session, profile_id: str) -> dict[ConsentPurpose, bool]:
    rows = session.exec(select(Consent).where(Consent.profile_id == profile_id)).all()
    granted = {row.purpose: row.granted for row in rows}
    return {purpose: granted.get(purpose, False) for purpose in ConsentPurpose}


def set_consent(
    session: Session, profile_id: str, purpose: ConsentPurpose, granted: bool, now: datetime
) -> None:
    """Record the answer and append it to the history (GDPR Art. 7(1))."""
    row = session.get(Consent, (profile_id, purpose))
    if row is None:
        session.add(
            Consent(profile_id=profile_id, purpose=purpose, granted=granted, updated_at=now)
        )
    else:
        row.granted = granted
        row.updated_at = now
        session.add(row)
    session.add(
        ConsentEvent(
            profile_id=profile_id,
            purpose=purpose,
            granted=granted,
            source="app",
            actor="shopper",
            occurred_at=now,
        )
    )
    session.commit()


def consent_history(session: Session, profile_id: str) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.profile_id == profile_id)
            .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
        ).all()
    )


# ------------------------------------------------------------------ visits


def list_visits(session: Session, profile_id: str) -> list[StoreVisit]:
    return list(
        session.exec(
            select(StoreVisit)
            .where(StoreVisit.profile_id == profile_id)
            .order_by(col(StoreVisit.started_at).desc())
        ).all()
    )


def get_visit(session: Session, profile_id: str, visit_id: str) -> StoreVisit:
    visit = session.exec(
        select(StoreVisit).where(StoreVisit.id == visit_id, StoreVisit.profile_id == profile_id)
    ).first()
    if visit is None:
        raise NotFound("visit not found")
    return visit


def current_visit(session: Session, profile_id: str) -> StoreVisit | None:
    return session.exec(
        select(StoreVisit)
        .where(StoreVisit.profile_id == profile_id, col(StoreVisit.ended_at).is_(None))
        .order_by(col(StoreVisit.started_at).desc())
    ).first()


def latest_guidance(session: Session, profile_id: str, visit_id: str) -> bytes | None:
    """The last guidance event sent on the shopper's stream for this visit."""
    rows = session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.stream == shopper_stream(profile_id),
            col(OutboxMessage.topic).endswith("/guidance"),
        )
        .order_by(col(OutboxMessage.stream_seq).desc())
        .limit(20)
    ).all()
    needle = f'"visit_id":"{visit_id}"'.encode()
    return next((row.payload for row in rows if needle in row.payload.replace(b" ", b"")), None)


# ------------------------------------------------------------------ store and catalogue


def get_zone(session: Session, store_id: str, zone_id: str) -> Zone:
    zone = session.get(Zone, (store_id, zone_id))
    if zone is None:
        raise NotFound("zone not found in this store")
    return zone


def entrance_zone(session: Session, store_id: str) -> Zone:
    zone = session.exec(
        select(Zone).where(Zone.store_id == store_id).order_by(col(Zone.type) != "entrance")
    ).first()
    if zone is None:
        raise NotFound("store not found")
    return zone


@dataclass(frozen=True, slots=True)
class Whereabouts:
    product_id: str
    name: str
    variant_id: str | None
    size: str | None
    zone_id: str | None
    zone_name: str | None
    count: int


def viewed_items_in_store(session: Session, profile_id: str, store_id: str) -> list[Whereabouts]:
    """Products the shopper viewed online, and where their items are in ``store_id`` now."""
    viewed = session.exec(
        select(ProductView.product_id)
        .where(ProductView.profile_id == profile_id, col(ProductView.product_id).is_not(None))
        .distinct()
    ).all()
    out: list[Whereabouts] = []
    for product_id in viewed:
        product = session.get(Product, product_id)
        if product is None:
            continue
        rows = session.exec(
            select(col(Variant.id), col(Variant.size), col(Item.zone_id), sa.func.count())
            .select_from(Item)
            .join(Variant, col(Variant.id) == col(Item.variant_id))
            .where(
                Variant.product_id == product.id,
                Item.store_id == store_id,
                Item.status == ItemStatus.IN_STOCK,
            )
            .group_by(col(Variant.id), col(Variant.size), col(Item.zone_id))
        ).all()
        if not rows:
            out.append(Whereabouts(product.id, product.name, None, None, None, None, 0))
        for variant_id, size, zone_id, count in rows:
            zone = None if zone_id is None else session.get(Zone, (store_id, zone_id))
            out.append(
                Whereabouts(
                    product.id,
                    product.name,
                    variant_id,
                    size,
                    zone_id,
                    None if zone is None else zone.name,
                    int(count),
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class Availability:
    product: Product
    variant: Variant | None
    #: store id → in-stock item count (of the variant if known, else the product).
    stores: dict[str, int]


def lookup_item(session: Session, *, epc: str | None, gtin: str | None) -> Availability:
    """The reverse journey: a tag or barcode in the store → its product and availability."""
    variant: Variant | None = None
    if epc is not None:
        item = session.get(Item, epc)
        if item is None or item.variant_id is None:
            raise NotFound("unknown item")
        variant = session.get(Variant, item.variant_id)
    elif gtin is not None:
        variant = session.exec(select(Variant).where(Variant.gtin14 == gtin)).first()
    if variant is None:
        raise NotFound("unknown item")
    product = session.get(Product, variant.product_id)
    assert product is not None
    counts = session.exec(
        select(Item.store_id, sa.func.count())
        .where(
            Item.variant_id == variant.id,
            Item.status == ItemStatus.IN_STOCK,
            col(Item.store_id).is_not(None),
        )
        .group_by(col(Item.store_id))
    ).all()
    return Availability(product, variant, {str(store): int(n) for store, n in counts})


# ------------------------------------------------------------------ the profile's timeline


def add_interaction(
    session: Session,
    profile_id: str,
    kind: InteractionKind,
    now: datetime,
    *,
    store_id: str | None = None,
    product_id: str | None = None,
    variant_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> ProfileInteraction:
    if store_id is not None and session.get(Store, store_id) is None:
        raise NotFound("store not found")
    row = ProfileInteraction(
        event_id=new_id(),
        profile_id=profile_id,
        channel=Channel.APP,
        kind=kind,
        store_id=store_id,
        product_id=product_id,
        variant_id=variant_id,
        occurred_at=now,
        data=data,
    )
    session.add(row)
    return row


def list_interactions(
    session: Session, profile_id: str, kind: InteractionKind, marker: str
) -> list[ProfileInteraction]:
    rows = session.exec(
        select(ProfileInteraction)
        .where(
            ProfileInteraction.profile_id == profile_id,
            ProfileInteraction.kind == kind,
            ProfileInteraction.channel == Channel.APP,
        )
        .order_by(col(ProfileInteraction.occurred_at).desc())
    ).all()
    return [row for row in rows if (row.data or {}).get("what") == marker]


def get_interaction(
    session: Session, profile_id: str, interaction_id: str, marker: str
) -> ProfileInteraction:
    row = session.exec(
        select(ProfileInteraction).where(
            ProfileInteraction.id == interaction_id, ProfileInteraction.profile_id == profile_id
        )
    ).first()
    if row is None or (row.data or {}).get("what") != marker:
        raise NotFound(f"{marker} not found")
    return row


# ------------------------------------------------------------------ outbox


def enqueue(session: Session, stream: str, topic: str, payload: dict[str, Any]) -> int:
    """Append one message to ``stream`` in the caller's transaction; returns its stream seq.

    The payload's ``seq`` is set to the stream seq, as the outbox contract says.
    """
    last = session.exec(
        select(sa.func.max(OutboxMessage.stream_seq)).where(OutboxMessage.stream == stream)
    ).one()
    seq = int(last or 0) + 1
    payload = {**payload, "seq": seq}
    session.add(
        OutboxMessage(stream=stream, stream_seq=seq, topic=topic, payload=orjson.dumps(payload))
    )
    return seq


@dataclass(frozen=True, slots=True)
class StreamWindow:
    """What the outbox still holds of one stream."""

    #: The stream's last seq (0 when empty).
    last: int
    #: The first seq still inside the retention window, ``None`` if none is.
    first_retained: int | None


def stream_window(session: Session, stream: str, cutoff: datetime) -> StreamWindow:
    last = session.exec(
        select(sa.func.max(OutboxMessage.stream_seq)).where(OutboxMessage.stream == stream)
    ).one()
    first = session.exec(
        select(sa.func.min(OutboxMessage.stream_seq)).where(
            OutboxMessage.stream == stream, col(OutboxMessage.created_at) >= cutoff
        )
    ).one()
    return StreamWindow(last=int(last or 0), first_retained=None if first is None else int(first))


def stream_rows(
    session: Session, stream: str, after: int, upto: int | None = None
) -> list[tuple[int, bytes]]:
    query = select(OutboxMessage.stream_seq, OutboxMessage.payload).where(
        OutboxMessage.stream == stream, OutboxMessage.stream_seq > after
    )
    if upto is not None:
        query = query.where(OutboxMessage.stream_seq <= upto)
    rows = session.exec(query.order_by(col(OutboxMessage.stream_seq))).all()
    return [(int(seq), bytes(payload)) for seq, payload in rows]


# ------------------------------------------------------------------ export and erase


def _plain(row: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = row.model_dump(mode="json", exclude=set(drop))
    return data


def export_profile(session: Session, profile_id: str) -> dict[str, Any]:
    """Everything held about the shopper, machine-readable (GDPR Art. 20)."""
    profile = get_profile(session, profile_id)

    def rows(model: Any, column: Any) -> list[Any]:
        return list(session.exec(select(model).where(column == profile_id)).all())

    return {
        "profile": _plain(profile),
        "aliases": [_plain(r) for r in rows(ProfileAlias, ProfileAlias.profile_id)],
        # The BLE key is a credential, not data about the shopper: never exported.
        "installs": [_plain(r, drop=("secret",)) for r in rows(AppInstall, AppInstall.profile_id)],
        "consents": [_plain(r) for r in rows(Consent, Consent.profile_id)],
        "consent_history": [_plain(r) for r in consent_history(session, profile_id)],
        "product_views": [_plain(r) for r in rows(ProductView, ProductView.profile_id)],
        "visits": [_plain(r) for r in rows(StoreVisit, StoreVisit.profile_id)],
        "interactions": [
            _plain(r) for r in rows(ProfileInteraction, ProfileInteraction.profile_id)
        ],
    }


def erase_profile(session: Session, profile_id: str) -> None:
    """Delete the profile; foreign keys cascade to aliases, installs, consents, views,
    visits and interactions. The shopper's outbox stream goes too."""
    session.exec(
        sa.delete(OutboxMessage).where(col(OutboxMessage.stream) == shopper_stream(profile_id))
    )
    session.exec(sa.delete(ShopperProfile).where(col(ShopperProfile.id) == profile_id))
    session.commit()

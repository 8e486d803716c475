"""Constraints the database itself enforces, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server.models import (
    AliasKind,
    Consent,
    ConsentEvent,
    ConsentPurpose,
    DeviceKind,
    Item,
    OutboxMessage,
    ProcessedEvent,
    Product,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    Store,
    StoreVisit,
    Variant,
    Zone,
    ZoneType,
)
from server.models.journeys import Channel, InteractionKind

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _store(session: Session) -> Store:
    store = Store(id="lyon-1", name="Lyon Part-Dieu")
    session.add(store)
    session.add(
        Zone(
            store_id=store.id,
            id="floor",
            name="Floor",
            type=ZoneType.SALES_FLOOR,
            area_x=0,
            area_y=0,
            area_w=10,
            area_h=8,
        )
    )
    session.flush()
    return store


def _variant(session: Session, sku: str = "TSH-BLU-M") -> Variant:
    product = Product(name="Linen shirt", brand="Vitrine", category="shirts")
    session.add(product)
    session.flush()
    variant = Variant(
        product_id=product.id,
        sku=sku,
        gtin14="09506000134352",
        size="M",
        colour="blue",
        price=Decimal("49.90"),
        currency="EUR",
    )
    session.add(variant)
    session.flush()
    return variant


def _profile(session: Session) -> ShopperProfile:
    profile = ShopperProfile(display_name="Test shopper", known_size="M")
    session.add(profile)
    session.flush()
    return profile


def test_duplicate_sku_is_rejected(session: Session) -> None:
    variant = _variant(session)
    session.add(Variant(product_id=variant.product_id, sku=variant.sku))
    with pytest.raises(IntegrityError):
        session.flush()


def test_price_is_an_exact_decimal(session: Session) -> None:
    variant = _variant(session)
    session.commit()
    session.expire_all()
    loaded = session.get(Variant, variant.id)
    assert loaded is not None
    assert loaded.price == Decimal("49.90")
    assert isinstance(loaded.price, Decimal)


def test_times_come_back_aware_utc(session: Session) -> None:
    profile = _profile(session)
    paris = timezone(timedelta(hours=1))
    session.add(
        ConsentEvent(
            profile_id=profile.id,
            purpose=ConsentPurpose.GUIDANCE,
            granted=True,
            source="app",
            actor="shopper",
            occurred_at=datetime(2026, 3, 1, 11, 0, tzinfo=paris),
        )
    )
    session.commit()
    session.expire_all()
    event = session.exec(select(ConsentEvent)).one()
    assert event.occurred_at == T0
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(
        ProcessedEvent(consumer="c", event_id="e", processed_at=datetime(2026, 3, 1, 10, 0))
    )
    with pytest.raises(sa.exc.StatementError, match="timezone"):
        session.flush()


def test_consent_is_one_row_per_profile_and_purpose(session: Session) -> None:
    profile = _profile(session)
    session.add(Consent(profile_id=profile.id, purpose=ConsentPurpose.GUIDANCE, granted=True))
    session.add(
        Consent(profile_id=profile.id, purpose=ConsentPurpose.STAFF_RECOGNITION, granted=False)
    )
    session.flush()
    session.expunge_all()
    session.add(Consent(profile_id=profile.id, purpose=ConsentPurpose.GUIDANCE, granted=False))
    with pytest.raises(IntegrityError):
        session.flush()


def test_unknown_consent_purpose_is_rejected_by_the_database(session: Session) -> None:
    profile = _profile(session)
    with pytest.raises(IntegrityError):
        session.execute(
            sa.text(
                "INSERT INTO consents (profile_id, purpose, granted, updated_at) "
                "VALUES (:p, 'marketing', true, CURRENT_TIMESTAMP)"
            ),
            {"p": profile.id},
        )


def test_alias_is_unique_per_kind(session: Session) -> None:
    first, second = _profile(session), _profile(session)
    session.add(ProfileAlias(profile_id=first.id, kind=AliasKind.ANONYMOUS_ID, value="anon-1"))
    # The same value under another kind is another identity.
    session.add(ProfileAlias(profile_id=second.id, kind=AliasKind.WEB_USER_ID, value="anon-1"))
    session.flush()
    session.add(ProfileAlias(profile_id=second.id, kind=AliasKind.ANONYMOUS_ID, value="anon-1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_outbox_seq_increases_and_is_never_reused(session: Session) -> None:
    stream = "staff:lyon-1"
    rows = [OutboxMessage(stream=stream, stream_seq=n, topic="t", payload=b"{}") for n in (1, 2, 3)]
    session.add_all(rows)
    session.flush()
    seqs = [row.seq for row in rows if row.seq is not None]
    assert len(seqs) == 3
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    # Purging the newest row must not let its number come back (SQLite AUTOINCREMENT).
    session.delete(rows[-1])
    session.flush()
    later = OutboxMessage(stream=stream, stream_seq=4, topic="t", payload=b"{}")
    session.add(later)
    session.flush()
    assert later.seq is not None
    assert later.seq > seqs[-1]


def test_outbox_stream_seq_is_unique_per_stream(session: Session) -> None:
    session.add(OutboxMessage(stream="shopper:a", stream_seq=1, topic="t", payload=b"1"))
    session.add(OutboxMessage(stream="shopper:b", stream_seq=1, topic="t", payload=b"1"))
    session.flush()
    session.add(OutboxMessage(stream="shopper:a", stream_seq=1, topic="t", payload=b"2"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_processed_event_is_recorded_once_per_consumer(session: Session) -> None:
    session.add(ProcessedEvent(consumer="ingest", event_id="ev-1"))
    session.add(ProcessedEvent(consumer="journeys", event_id="ev-1"))
    session.flush()
    session.expunge_all()
    session.add(ProcessedEvent(consumer="ingest", event_id="ev-1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_item_zone_must_exist_in_the_items_store(session: Session) -> None:
    store = _store(session)
    session.add(Item(epc="3034257BF7194E4000001A85", store_id=store.id, zone_id="floor"))
    session.flush()
    session.add(Item(epc="3034257BF7194E4000001A86", store_id=store.id, zone_id="nowhere"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_item_epc_must_be_upper_case(session: Session) -> None:
    session.add(Item(epc="3034257bf7194e4000001a85"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_opaque_item_without_variant_is_kept(session: Session) -> None:
    session.add(Item(epc="E2801160600002054E3D1F0B"))
    session.flush()
    assert session.get(Item, "E2801160600002054E3D1F0B") is not None


def test_visit_is_identified_or_anonymous_never_both(session: Session) -> None:
    store = _store(session)
    profile = _profile(session)
    session.add(
        StoreVisit(
            store_id=store.id,
            profile_id=profile.id,
            device_kind=DeviceKind.APP,
            footfall_hash="ab" * 16,
            started_at=T0,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_erasing_a_profile_reaches_every_row_about_it(session: Session) -> None:
    store = _store(session)
    variant = _variant(session)
    profile = _profile(session)
    visit = StoreVisit(
        store_id=store.id, profile_id=profile.id, device_kind=DeviceKind.APP, started_at=T0
    )
    session.add_all(
        [
            ProfileAlias(profile_id=profile.id, kind=AliasKind.WEB_USER_ID, value="u-1"),
            Consent(profile_id=profile.id, purpose=ConsentPurpose.JOURNEY_PROFILE, granted=True),
            ConsentEvent(
                profile_id=profile.id,
                purpose=ConsentPurpose.JOURNEY_PROFILE,
                granted=True,
                source="app",
                actor="shopper",
            ),
            visit,
        ]
    )
    session.flush()
    session.add(
        ProfileInteraction(
            event_id="ev-visit-1",
            profile_id=profile.id,
            channel=Channel.STORE,
            kind=InteractionKind.TRIED_ON,
            product_id=variant.product_id,
            variant_id=variant.id,
            store_id=store.id,
            visit_id=visit.id,
            occurred_at=T0,
            data={"zone": "fitting"},
        )
    )
    session.flush()

    # Core DELETE: the database's ON DELETE CASCADE does the work, not the ORM.
    session.execute(sa.delete(ShopperProfile).where(col(ShopperProfile.id) == profile.id))
    session.expunge_all()
    for table in (ProfileAlias, Consent, ConsentEvent, StoreVisit, ProfileInteraction):
        assert session.exec(select(table)).all() == [], table.__name__
    # The catalogue and the store are not the shopper's data.
    assert session.get(Variant, variant.id) is not None

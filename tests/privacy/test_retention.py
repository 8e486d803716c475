"""The retention purge reaches every table that keeps a trace of a shopper's past, on both backends.

``tests/server/privacy/test_erasure.py`` checks views and interactions; here
every retained table gets one row past the retention and one within it, and
after ``purge`` each expired row is gone (directly or with the visit it hangs
off) while each fresh one, and each row still owed (an unpublished message, a
pending webhook, an uncollected order), stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from server.models import (
    Channel,
    Consent,
    ConsentPurpose,
    DeliveryStatus,
    DeviceKind,
    InteractionKind,
    ItemObservation,
    Offer,
    OfferDelivery,
    OutboxMessage,
    PendingPickup,
    ProcessedEvent,
    ProductView,
    ProfileInteraction,
    ShopperProfile,
    StaffAlert,
    Store,
    StoreVisit,
    VisitEngineState,
    WebhookDelivery,
    WebhookEndpoint,
    Zone,
    ZoneType,
)
from server.privacy import service

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)
OLD, NEW = NOW - timedelta(days=40), NOW - timedelta(days=1)


def _rows(session: Session) -> tuple[dict[str, SQLModel], dict[str, SQLModel]]:
    """(expired rows, rows to keep), each by a name saying what it is."""
    session.add(Store(id="ret-store", name="Retention"))
    session.flush()
    session.add(
        Zone(
            store_id="ret-store",
            id="floor",
            name="Floor",
            type=ZoneType.SALES_FLOOR,
            area_x=0,
            area_y=0,
            area_w=1,
            area_h=1,
        )
    )
    profile = ShopperProfile(display_name="Retained")
    endpoint = WebhookEndpoint(url="https://crm.example.org/hook", secret="s" * 32)
    offer = Offer(title="Welcome", body="Coffee", moments=["arrival"])
    session.add_all([profile, endpoint, offer])
    session.flush()
    session.add(Consent(profile_id=profile.id, purpose=ConsentPurpose.GUIDANCE, granted=True))

    def visit(started: datetime, ended: datetime | None) -> StoreVisit:
        row = StoreVisit(
            store_id="ret-store",
            profile_id=profile.id,
            device_kind=DeviceKind.APP,
            started_at=started,
            ended_at=ended,
            entry_zone_id="floor",
            last_zone_id="floor",
        )
        session.add(row)
        session.flush()
        return row

    def hanging_off(tag: str, v: StoreVisit, at: datetime) -> dict[str, SQLModel]:
        """What the engine writes per visit: timeline, alert, offer, engine memory."""
        return {
            f"{tag} interaction": ProfileInteraction(
                event_id=f"ret-{tag}",
                profile_id=profile.id,
                channel=Channel.STORE,
                kind=InteractionKind.VISITED,
                store_id="ret-store",
                visit_id=v.id,
                occurred_at=at,
            ),
            f"{tag} staff alert": StaffAlert(
                id=f"alert-{tag}".replace(" ", "-"),
                store_id="ret-store",
                created_at=at,
                updated_at=at,
                visit_id=v.id,
                profile_id=profile.id,
                payload={"shopper_label": "Retained"},
            ),
            f"{tag} offer delivery": OfferDelivery(
                offer_id=offer.id,
                profile_id=profile.id,
                visit_id=v.id,
                moment="arrival",
                delivered_at=at,
            ),
            f"{tag} engine state": VisitEngineState(visit_id=v.id),
        }

    closed_old, open_old = visit(OLD, OLD + timedelta(hours=1)), visit(OLD, None)
    closed_new, open_new = visit(NEW, NEW + timedelta(hours=1)), visit(NOW, None)

    def delivery(tag: str, status: DeliveryStatus, at: datetime) -> WebhookDelivery:
        return WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=f"ret-hook-{tag}",
            profile_id=profile.id,
            body=b"{}",
            status=status,
            next_attempt_at=at,
            created_at=at,
        )

    def message(tag: str, created: datetime, published: datetime | None) -> OutboxMessage:
        return OutboxMessage(
            stream=f"shopper:{profile.id}",
            stream_seq=len(tag) * 1000 + int(created.timestamp()) % 997,
            topic="t",
            payload=f'{{"shopper":"{profile.id}"}}'.encode(),
            created_at=created,
            published_at=published,
        )

    def observation(tag: str, at: datetime) -> ItemObservation:
        return ItemObservation(
            event_id=f"ret-obs-{tag}",
            epc="E2801100200056450000AB01",
            store_id="ret-store",
            zone_id="floor",
            kind="item_arrived",
            sold=False,
            occurred_at=at,
        )

    def pickup(order: str, collected: datetime | None) -> PendingPickup:
        return PendingPickup(
            store_id="ret-store",
            profile_id=profile.id,
            order_id=order,
            created_at=OLD,
            collected_at=collected,
        )

    expired: dict[str, SQLModel] = {
        "closed visit": closed_old,
        "open visit whose exit was missed": open_old,
        **hanging_off("closed-visit", closed_old, OLD),
        **hanging_off("open-visit", open_old, OLD),
        "product view": ProductView(
            event_id="ret-view-old", profile_id=profile.id, platform="segment", viewed_at=OLD
        ),
        "published message": message("old", OLD, OLD),
        "processed event": ProcessedEvent(consumer="c", event_id="ret-old", processed_at=OLD),
        "item observation": observation("old", OLD),
        "delivered webhook": delivery("old", DeliveryStatus.DELIVERED, OLD),
        "dead webhook": delivery("dead", DeliveryStatus.DEAD, OLD),
        "collected order": pickup("ret-order-1", OLD),
    }
    kept: dict[str, SQLModel] = {
        "recent closed visit": closed_new,
        "open visit": open_new,
        **hanging_off("recent", closed_new, NEW),
        **hanging_off("ongoing", open_new, NOW),
        "recent product view": ProductView(
            event_id="ret-view-new", profile_id=profile.id, platform="segment", viewed_at=NEW
        ),
        "recent message": message("new", NEW, NEW),
        "old message never published": message("unpublished", OLD, None),
        "recent processed event": ProcessedEvent(
            consumer="c", event_id="ret-new", processed_at=NEW
        ),
        "recent item observation": observation("new", NEW),
        "recent webhook": delivery("new", DeliveryStatus.DELIVERED, NEW),
        "old webhook still owed": delivery("owed", DeliveryStatus.PENDING, OLD),
        "order not collected yet": pickup("ret-order-2", None),
        "profile": profile,
    }
    session.add_all([*expired.values(), *kept.values()])
    session.commit()
    return expired, kept


Key = tuple[type[SQLModel], tuple[object, ...]]


def _key(row: SQLModel) -> Key:
    mapper = sa.inspect(type(row))
    return type(row), tuple(getattr(row, c.key) for c in mapper.primary_key)


def _exists(session: Session, key: Key) -> bool:
    table, ident = key
    return session.get(table, ident if len(ident) > 1 else ident[0]) is not None


def test_the_purge_removes_every_expired_row_and_keeps_the_rest(session: Session) -> None:
    expired_rows, kept_rows = _rows(session)
    expired = {name: _key(row) for name, row in expired_rows.items()}
    kept = {name: _key(row) for name, row in kept_rows.items()}
    assert all(_exists(session, key) for key in [*expired.values(), *kept.values()])
    report = service.purge(session, RETENTION, NOW)
    session.expunge_all()
    assert report.cutoff == NOW - RETENTION
    left = sorted(name for name, key in expired.items() if _exists(session, key))
    lost = sorted(name for name, key in kept.items() if not _exists(session, key))
    assert (left, lost) == ([], [])
    assert report.deleted["store_visits"] == 2 and report.deleted["pending_pickups"] == 1
    # Purging again finds nothing more: the cutoff is the only criterion.
    again = service.purge(session, RETENTION, NOW)
    assert sum(again.deleted.values()) == 0

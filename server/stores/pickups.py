"""Click & collect orders waiting in a store (admin): the staff arrival alert lists them.

``POST /v1/admin/stores/{store}/pickups`` records an order to collect by a
profile; ``POST …/pickups/{order_id}/collect`` marks it collected (it leaves
the alert); ``GET /v1/stores/{store}/pickups`` lists the open ones (staff).
An order-management system calls these; online purchases whose shipping
method is a store pickup feed the same table (:func:`open_online_pickup`, from
``POST /v1/events``; docs/online-events.md, "Click & collect").
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from server.auth.deps import AdminDep, StaffDep
from server.db import SessionDep
from server.errors import Conflict, NotFound
from server.models import PendingPickup, ShopperProfile, Store

__all__ = [
    "PickupIn",
    "PickupPublic",
    "add_pickup",
    "collect_pickup",
    "find_store",
    "open_online_pickup",
    "router",
]

router = APIRouter(tags=["stores"])


class PickupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_id: str = Field(max_length=36)
    order_id: str = Field(min_length=1, max_length=200)


class PickupPublic(BaseModel):
    id: str
    store_id: str
    profile_id: str
    order_id: str
    created_at: datetime
    collected_at: datetime | None


def _public(row: PendingPickup) -> PickupPublic:
    return PickupPublic.model_validate(row, from_attributes=True)


def add_pickup(session: Session, store_id: str, data: PickupIn, now: datetime) -> PickupPublic:
    if session.get(Store, store_id) is None:
        raise NotFound(f"no store {store_id}")
    if session.get(ShopperProfile, data.profile_id) is None:
        raise NotFound(f"no profile {data.profile_id}")
    existing = session.exec(
        select(PendingPickup).where(
            PendingPickup.store_id == store_id, PendingPickup.order_id == data.order_id
        )
    ).first()
    if existing is not None:
        if existing.profile_id != data.profile_id:
            raise Conflict(f"order {data.order_id} is already waiting for another profile")
        return _public(existing)
    row = PendingPickup(
        store_id=store_id, profile_id=data.profile_id, order_id=data.order_id, created_at=now
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return _public(row)


def find_store(session: Session, named: str) -> Store | None:
    """The store a platform named: its layout id, else its name (case-insensitive)."""
    store = session.get(Store, named)
    if store is not None:
        return store
    return session.exec(
        select(Store)
        .where(func.lower(col(Store.name)) == named.strip().lower())
        .order_by(col(Store.id))
    ).first()


def open_online_pickup(
    session: Session, store_id: str, profile_id: str, order_id: str, now: datetime
) -> PendingPickup | None:
    """Record an online order to collect in ``store_id``; no commit (the caller's transaction).

    Idempotent: the order already waiting there (a redelivered order, or the same
    order reported by two trackers) is returned unchanged; one waiting for another
    profile is left alone (``None``) rather than moved.
    """
    existing = session.exec(
        select(PendingPickup).where(
            PendingPickup.store_id == store_id, PendingPickup.order_id == order_id
        )
    ).first()
    if existing is not None:
        return existing if existing.profile_id == profile_id else None
    row = PendingPickup(store_id=store_id, profile_id=profile_id, order_id=order_id, created_at=now)
    session.add(row)
    session.flush()
    return row


def collect_pickup(session: Session, store_id: str, order_id: str, now: datetime) -> PickupPublic:
    row = session.exec(
        select(PendingPickup).where(
            PendingPickup.store_id == store_id, PendingPickup.order_id == order_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no pickup {order_id} in {store_id}")
    if row.collected_at is None:
        row.collected_at = now
        session.add(row)
        session.commit()
        session.refresh(row)
    return _public(row)


@router.post("/v1/admin/stores/{store_id}/pickups", status_code=201, summary="Order to collect")
def post_pickup(
    store_id: str, data: PickupIn, session: SessionDep, admin: AdminDep
) -> PickupPublic:
    return add_pickup(session, store_id, data, datetime.now(UTC))


@router.post("/v1/admin/stores/{store_id}/pickups/{order_id}/collect", summary="Order collected")
def post_collect(
    store_id: str, order_id: str, session: SessionDep, admin: AdminDep
) -> PickupPublic:
    return collect_pickup(session, store_id, order_id, datetime.now(UTC))


@router.get("/v1/stores/{store_id}/pickups", summary="Orders waiting in the store")
def list_pickups(store_id: str, session: SessionDep, staff: StaffDep) -> list[PickupPublic]:
    rows = session.exec(
        select(PendingPickup)
        .where(PendingPickup.store_id == store_id, col(PendingPickup.collected_at).is_(None))
        .order_by(col(PendingPickup.created_at))
    ).all()
    return [_public(r) for r in rows]

"""The engine's own tables: per-visit memory, staff alerts and tasks, the offer library.

- :class:`VisitEngineState` — what the engine remembers about an open visit
  (caps, once-only guidance), one row per visit, gone with the visit.
- :class:`StaffAlert` / :class:`StaffTask` — what staff see and work through
  (open → claimed → acknowledged → closed). An alert names the shopper (their
  label), so it cascades with the profile; a task never does.
- :class:`Offer` / :class:`OfferDelivery` — the next-best-action library (rules
  as data) and what was pushed to whom, for the frequency caps.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import ID_LENGTH, LAYOUT_ID_LENGTH, closed_enum, new_id, utc_field

__all__ = ["Offer", "OfferDelivery", "StaffAlert", "StaffStatus", "StaffTask", "VisitEngineState"]

_VISIT_FK = "store_visits.id"
_PROFILE_FK = "shopper_profiles.id"


class VisitEngineState(SQLModel, table=True):
    __tablename__ = "visit_engine_state"

    visit_id: str = Field(
        foreign_key=_VISIT_FK, primary_key=True, max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: Products already given proximity guidance this visit.
    proximity_done: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    #: Variants (or products) already asked of staff this visit.
    tasks_done: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    offers_sent: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    staff_alerts: int = 0
    offer_pushes: int = 0
    tried_on: int = 0
    bought: int = 0


class StaffStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class _StaffWork(SQLModel):
    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    store_id: str = Field(foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH, ondelete="CASCADE")
    status: StaffStatus = Field(
        default=StaffStatus.OPEN, sa_type=closed_enum(StaffStatus, "staff_status")
    )
    zone_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)
    #: Staff member who claimed it (a staff user id, never a shopper's).
    claimed_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class StaffAlert(_StaffWork, table=True):
    __tablename__ = "staff_alerts"
    __table_args__ = (sa.Index(None, "store_id", "status", "created_at"),)

    visit_id: str = Field(foreign_key=_VISIT_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    profile_id: str | None = Field(
        default=None, foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: The ``StaffAlertEvent`` as announced (cards, tier, click & collect).
    payload: dict[str, Any] = Field(sa_type=sa.JSON)


class StaffTask(_StaffWork, table=True):
    __tablename__ = "staff_tasks"
    __table_args__ = (sa.Index(None, "store_id", "status", "created_at"),)

    task: str = Field(max_length=32)
    text: str = Field(max_length=500)
    variant_id: str | None = Field(
        default=None, foreign_key="variants.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    visit_id: str | None = Field(
        default=None, foreign_key=_VISIT_FK, max_length=ID_LENGTH, ondelete="SET NULL"
    )


class Offer(SQLModel, table=True):
    """One entry of the offer library; empty lists mean "any" (``server.engine.OfferRule``)."""

    __tablename__ = "offers"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    title: str = Field(max_length=200)
    body: str = Field(max_length=1000)
    priority: int = 0
    moments: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    segments: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    tiers: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    categories: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    min_visits: int = 0
    max_per_profile: int | None = None
    active: bool = True
    updated_at: datetime = utc_field(now=True)


class OfferDelivery(SQLModel, table=True):
    __tablename__ = "offer_deliveries"
    __table_args__ = (sa.Index(None, "profile_id", "offer_id", "delivered_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    offer_id: str = Field(foreign_key="offers.id", max_length=ID_LENGTH, ondelete="CASCADE")
    profile_id: str = Field(foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    visit_id: str = Field(foreign_key=_VISIT_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    moment: str = Field(max_length=32)
    delivered_at: datetime = utc_field()

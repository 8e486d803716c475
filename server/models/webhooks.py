"""Webhooks: CRM/CDP endpoints and the deliveries owed to them.

- :class:`WebhookEndpoint` — a receiver URL, its signing secret, the
  interaction kinds it wants, active or not (admin API, ``server.webhooks``).
- :class:`WebhookDelivery` — one interaction owed to one endpoint, written in
  the transaction that wrote the interaction (a transactional outbox of its
  own), then POSTed by the delivery worker with retries. A delivery names the
  profile, so it cascades with it (erasure).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import ID_LENGTH, closed_enum, new_id, utc_field

__all__ = ["DeliveryStatus", "WebhookDelivery", "WebhookEndpoint"]


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    url: str = Field(max_length=2000)
    #: HMAC-SHA256 key of the ``Vitrine-Signature`` header; never returned after creation.
    secret: str = Field(max_length=200)
    #: Interaction kinds delivered (``visited``, ``tried_on``…); empty = every kind.
    event_kinds: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    active: bool = True
    created_at: datetime = utc_field(now=True)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's query: pending rows due now, oldest first.
        sa.Index(None, "status", "next_attempt_at"),
        sa.UniqueConstraint("endpoint_id", "event_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    endpoint_id: str = Field(
        foreign_key="webhook_endpoints.id", max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: The interaction's ``event_id``: the receiver's idempotency key (``Vitrine-Event-Id``).
    event_id: str = Field(max_length=128)
    profile_id: str | None = Field(
        default=None, foreign_key="shopper_profiles.id", max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: The JSON body, serialised once so every attempt signs the same bytes.
    body: bytes = Field(sa_type=sa.LargeBinary)
    status: DeliveryStatus = Field(
        default=DeliveryStatus.PENDING, sa_type=closed_enum(DeliveryStatus, "delivery_status")
    )
    attempts: int = 0
    next_attempt_at: datetime = utc_field()
    created_at: datetime = utc_field()
    delivered_at: datetime | None = utc_field(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    #: Receiver's last HTTP status, if it answered.
    last_status: int | None = None
    extra: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)

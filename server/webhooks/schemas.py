"""Admin API bodies of webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from server.models.journeys import InteractionKind

__all__ = ["DeliveryPublic", "EndpointCreated", "EndpointIn", "EndpointPublic"]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    #: Interaction kinds to deliver; empty = every kind.
    event_kinds: list[InteractionKind] = Field(default_factory=list)
    active: bool = True
    #: Signing secret; left out on creation, one is generated (and shown once).
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class EndpointPublic(BaseModel):
    id: str
    url: str
    event_kinds: list[str]
    active: bool
    created_at: datetime


class EndpointCreated(EndpointPublic):
    #: Returned only by the creating call: store it in the receiver.
    secret: str


class DeliveryPublic(BaseModel):
    id: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None

"""Read and write models of the profiles feature."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from server.models import ConsentPurpose

__all__ = [
    "ConsentChange",
    "ConsentHistoryEntry",
    "ConsentState",
    "ConsentUpdate",
    "ConsentsRead",
    "ProfileRead",
    "Resolution",
    "Timeline",
    "TimelineEntry",
]


class Resolution(BaseModel):
    """Which profile an event's shopper keys resolved to, and what that took."""

    profile_id: str
    created: bool = False
    #: Profiles folded into ``profile_id`` (anonymous → known on login).
    merged: list[str] = Field(default_factory=list)


class ProfileRead(BaseModel):
    id: str
    created_at: datetime
    display_name: str | None
    loyalty_tier: str | None
    known_size: str | None
    #: ``kind`` → how many aliases of that kind (values are not echoed).
    aliases: dict[str, int]
    consents: dict[str, bool]


class TimelineEntry(BaseModel):
    occurred_at: datetime
    channel: str
    kind: str
    product_id: str | None
    product_name: str | None
    variant_id: str | None
    sku: str | None
    size: str | None
    colour: str | None
    store_id: str | None
    visit_id: str | None
    data: dict[str, Any] | None


class Timeline(BaseModel):
    profile_id: str
    entries: list[TimelineEntry]
    #: Pass as ``before`` to read older entries; ``None`` at the start of the journey.
    next_before: datetime | None


class ConsentState(BaseModel):
    purpose: ConsentPurpose
    granted: bool
    updated_at: datetime | None


class ConsentHistoryEntry(BaseModel):
    purpose: ConsentPurpose
    granted: bool
    source: str
    actor: str
    occurred_at: datetime


class ConsentsRead(BaseModel):
    profile_id: str
    current: list[ConsentState]
    history: list[ConsentHistoryEntry]


class ConsentChange(BaseModel):
    purpose: ConsentPurpose
    granted: bool


class ConsentUpdate(BaseModel):
    changes: list[ConsentChange] = Field(min_length=1, max_length=len(ConsentPurpose))
    #: Where the change came from: ``app``, ``web``, ``staff``, ``api``.
    source: str = Field(default="api", pattern=r"^[a-z_]{1,32}$")
    #: When the shopper decided (defaults to now).
    occurred_at: AwareDatetime | None = None

"""What staff clients read: alerts (with the arrival context) and tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from server.models import StaffStatus

__all__ = ["StaffAlertPublic", "StaffTaskPublic", "Transition"]

Transition = Literal["claim", "acknowledge", "close"]


class StaffAlertPublic(BaseModel):
    id: str
    store_id: str
    visit_id: str
    status: StaffStatus
    zone_id: str | None
    claimed_by: str | None
    created_at: datetime
    updated_at: datetime
    #: The announced ``StaffAlertEvent``: shopper label, tier, cards, click & collect.
    alert: dict[str, Any]


class StaffTaskPublic(BaseModel):
    id: str
    store_id: str
    task: str
    text: str
    status: StaffStatus
    zone_id: str | None
    variant_id: str | None
    visit_id: str | None
    claimed_by: str | None
    created_at: datetime
    updated_at: datetime

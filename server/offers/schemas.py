"""An offer as the admin API reads and writes it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vitrine.contracts.events import Moment

__all__ = ["OfferIn", "OfferPublic"]

#: The columns are 32-bit integers on both backends: larger values are refused
#: here (422) rather than by the database driver (a 500).
INT32_MAX = 2**31 - 1


class OfferIn(BaseModel):
    """Eligibility: every non-empty list must match; empty means "any"."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=1000)
    #: Higher wins among the eligible.
    priority: int = Field(default=0, ge=-INT32_MAX, le=INT32_MAX)
    #: When it may be shown: arrival, zone (entering a sales zone), fitting_room
    #: (on leaving one — never inside), exit.
    moments: list[Moment] = Field(min_length=1)
    #: ``first_visit``, ``returning``, ``tier:<tier>``.
    segments: list[str] = []
    tiers: list[str] = []
    #: Product categories the shopper viewed online.
    categories: list[str] = []
    #: Closed visits before this one (history).
    min_visits: int = Field(default=0, ge=0, le=INT32_MAX)
    #: Deliveries per profile over 30 days; ``None``: once per visit only.
    max_per_profile: int | None = Field(default=None, ge=1, le=INT32_MAX)
    active: bool = True


class OfferPublic(OfferIn):
    id: str
    updated_at: datetime

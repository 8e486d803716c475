"""Analytics read models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

__all__ = [
    "FootfallReport",
    "FunnelReport",
    "FunnelRow",
    "GuidanceReport",
    "GuidanceRow",
    "ZoneFootfall",
]


class FunnelRow(BaseModel):
    """Distinct profiles per step, for one store and one product.

    Every step after ``viewed_online`` counts shoppers who viewed the product
    online *before* taking that step in this store; ``bought_online_after_visit``
    counts those who bought it online after a visit to this store.
    """

    store_id: str
    product_id: str
    viewed_online: int
    visited: int
    located: int
    tried_on: int
    bought_in_store: int
    bought_online_after_visit: int


class FunnelReport(BaseModel):
    start: datetime
    end: datetime
    rows: list[FunnelRow]


class ZoneFootfall(BaseModel):
    zone_id: str
    #: Visits whose shopper was seen in the zone (entry or interaction there).
    visits: int


class FootfallReport(BaseModel):
    store_id: str
    start: datetime
    end: datetime
    visits: int
    identified_visits: int
    anonymous_visits: int
    #: Mean length of closed visits, seconds; ``None`` when none closed.
    mean_dwell_s: float | None
    zones: list[ZoneFootfall]


class GuidanceRow(BaseModel):
    store_id: str | None
    product_id: str
    delivered: int
    acted_upon: int


class GuidanceReport(BaseModel):
    start: datetime
    end: datetime
    rows: list[GuidanceRow]

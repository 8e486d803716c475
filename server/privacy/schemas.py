"""The export document and the erasure / purge reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

__all__ = ["ErasureReport", "ProfileExport", "PurgeReport"]


class ProfileExport(BaseModel):
    """Everything held about one shopper, table by table (GDPR Art. 15 and 20)."""

    format: str = "vitrine.profile-export/1"
    exported_at: datetime
    profile: dict[str, Any]
    aliases: list[dict[str, Any]]
    app_installs: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    consent_history: list[dict[str, Any]]
    product_views: list[dict[str, Any]]
    store_visits: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    pending_messages: list[dict[str, Any]]


class ErasureReport(BaseModel):
    profile_id: str
    deleted: dict[str, int]


class PurgeReport(BaseModel):
    cutoff: datetime
    deleted: dict[str, int]

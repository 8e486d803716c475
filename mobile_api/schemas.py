"""Request and response bodies of the REST API (OpenAPI from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.models import ConsentPurpose

__all__ = [
    "Availability",
    "CheckIn",
    "ConsentChange",
    "ConsentsPublic",
    "CurrentVisit",
    "FactAccepted",
    "HelpRequest",
    "HelpRequestPublic",
    "InstallCreated",
    "Login",
    "Refresh",
    "SaveItem",
    "SavedItemPublic",
    "Sighting",
    "TokenPair",
    "ViewedItem",
    "VisitPublic",
]

_ID = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstallCreated(BaseModel):
    install_id: str
    #: Base64 of the per-install HMAC key of the rotating BLE token. Returned once.
    secret: str
    token_period_s: int


class Login(_Body):
    install_id: str = Field(max_length=64)
    install_secret: str = Field(max_length=128, description="The secret returned at registration.")
    identity: str = Field(
        max_length=2048,
        description="The online store's signed identity assertion for the signed-in user.",
    )


class Refresh(_Body):
    refresh_token: str = Field(max_length=2048)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth 2 token type)
    expires_in: int


class ConsentsPublic(BaseModel):
    consents: dict[ConsentPurpose, bool]


class ConsentChange(_Body):
    granted: bool


class VisitPublic(BaseModel):
    id: str
    store_id: str
    started_at: datetime
    ended_at: datetime | None
    entry_zone_id: str | None
    last_zone_id: str | None


class CurrentVisit(BaseModel):
    visit: VisitPublic | None
    #: The last guidance event sent for this visit (``vitrine.contracts.events``).
    guidance: dict[str, Any] | None


class ViewedItem(BaseModel):
    product_id: str
    name: str
    variant_id: str | None
    size: str | None
    zone_id: str | None
    zone_name: str | None
    count: int


class HelpRequest(_Body):
    store: str = _ID
    text: str = Field(min_length=1, max_length=500)
    zone: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    variant_id: str | None = Field(default=None, max_length=64)


class HelpRequestPublic(BaseModel):
    id: str
    store: str | None
    text: str
    zone: str | None
    created_at: datetime


class CheckIn(_Body):
    store: str = _ID
    method: Literal["qr", "button"]
    #: The zone printed in the entrance QR code; the store's entrance when absent.
    zone: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class Sighting(_Body):
    """A store beacon the phone ranged: the beacon advertises its zone."""

    store: str = _ID
    zone: str = _ID
    rssi_dbm: float | None = Field(default=None, ge=-130, le=20)


class FactAccepted(BaseModel):
    published: Literal["shopper_entered", "shopper_zone_changed"] | None


class Availability(BaseModel):
    product_id: str
    name: str
    url: str | None
    variant_id: str | None
    size: str | None
    #: In-stock counts per store.
    stores: dict[str, int]


class SaveItem(_Body):
    variant_id: str = Field(max_length=64)
    epc: str | None = Field(default=None, max_length=128)


class SavedItemPublic(BaseModel):
    id: str
    product_id: str | None
    variant_id: str | None
    created_at: datetime

"""Request and response of ``POST /v1/admin/installs``."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from server.models import ConsentPurpose
from server.profiles.service import KNOWN_KINDS, parse_shopper_key

__all__ = ["InstallRegistered", "InstallRegistration"]

#: 16 bytes is the least a rotating-token HMAC key should have (RFC 2104 §3: not
#: shorter than the output for full strength, but 128 bits already defeats guessing);
#: 64 bytes is the ``app_installs.secret`` column.
HEX_KEY_PATTERN = r"^(?:[0-9a-fA-F]{2}){16,64}$"
#: A profile rarely has more than a login, a browser id, a GA client and a Shopify client.
MAX_KEYS = 8


class InstallRegistration(BaseModel):
    """An install of the retailer's companion app, as its backend knows it at sign-in."""

    model_config = ConfigDict(extra="forbid")

    #: The install's id (a UUID, as ``mobile_api``'s ``POST /v1/installs`` issues them).
    install_id: UUID
    #: The HMAC key of the install's rotating BLE token (``vitrine.contracts.app_token``),
    #: hex. Stored, never returned, never logged.
    secret: str = Field(pattern=HEX_KEY_PATTERN, repr=False)
    #: Who the shopper is, as ``namespace:value`` keys like ``POST /v1/events`` resolves
    #: (``userId:…``, ``anonymousId:…``, ``client_id:…``, ``shopify_client_id:…``);
    #: at least one must be a login (web user id, e-mail hash, Shopify customer id).
    keys: list[str] = Field(min_length=1, max_length=MAX_KEYS, repr=False)
    #: The shopper's answers in the app; purposes left out are not changed.
    consents: dict[ConsentPurpose, bool] = Field(default_factory=dict)
    #: When the shopper answered (defaults to now).
    occurred_at: AwareDatetime | None = None

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        if any(ch < " " or ch == "\x7f" for k in keys for ch in k):
            # Ids are printable; PostgreSQL text cannot even hold a NUL.
            raise ValueError("keys may not contain control characters")
        parsed = [parse_shopper_key(k) for k in keys]
        if any(p is None for p in parsed):
            raise ValueError("every key is namespace:value in a namespace Vitrine knows")
        if not any(p is not None and p[0] in KNOWN_KINDS for p in parsed):
            raise ValueError("one key must name a signed-in shopper (e.g. userId:…)")
        return keys


class InstallRegistered(BaseModel):
    install_id: str
    profile_id: str
    #: ``True`` when the install was new.
    created: bool
    #: The profile's current answer per purpose after the call.
    consents: dict[ConsentPurpose, bool]
    #: Consent changes appended to the history by this call (0 on a repeat).
    consent_changes: int

"""Shopper profiles, the identities that point at them, app installs and consents.

A profile is the omnichannel customer: the website knows it by user ids,
anonymous ids, analytics client ids (:class:`ProfileAlias`); the store knows it
by the companion app install's rotating BLE token (:class:`AppInstall`, whose
``secret`` keys ``vitrine.contracts.app_token``). Consent is per purpose with
its full history (GDPR Art. 7(1): the controller must be able to demonstrate
consent). Everything here hangs off the profile with ``ON DELETE CASCADE`` so
that erasing a profile reaches every row about it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import ID_LENGTH, closed_enum, new_id, open_enum, utc_field

__all__ = [
    "AliasKind",
    "AppInstall",
    "AppTokenHint",
    "Consent",
    "ConsentEvent",
    "ConsentPurpose",
    "ProfileAlias",
    "ShopperProfile",
    "ShopperProfileBase",
    "ShopperProfilePublic",
]

_PROFILE_FK = "shopper_profiles.id"


class ShopperProfileBase(SQLModel):
    display_name: str | None = Field(default=None, max_length=200)
    loyalty_tier: str | None = Field(default=None, max_length=50)
    #: The size the shopper usually takes, when they told us (guidance filters on it).
    known_size: str | None = Field(default=None, max_length=50)


class ShopperProfile(ShopperProfileBase, table=True):
    __tablename__ = "shopper_profiles"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    created_at: datetime = utc_field(now=True)


class ShopperProfilePublic(ShopperProfileBase):
    id: str
    created_at: datetime


class AliasKind(StrEnum):
    """How another system names the shopper. Open: features add kinds freely."""

    WEB_USER_ID = "web_user_id"
    ANONYMOUS_ID = "anonymous_id"
    GA_CLIENT_ID = "ga_client_id"
    SHOPIFY_CUSTOMER_ID = "shopify_customer_id"
    #: A salted hash of the e-mail address, never the address itself.
    EMAIL_HASH = "email_hash"
    #: GA4 Measurement Protocol ``app_instance_id`` (Firebase apps).
    GA_APP_INSTANCE_ID = "ga_app_instance_id"
    #: Shopify Web Pixels ``clientId`` (the browser, before login).
    SHOPIFY_CLIENT_ID = "shopify_client_id"


class ProfileAlias(SQLModel, table=True):
    __tablename__ = "profile_aliases"
    __table_args__ = (sa.UniqueConstraint("kind", "value"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    profile_id: str = Field(
        foreign_key=_PROFILE_FK, max_length=ID_LENGTH, index=True, ondelete="CASCADE"
    )
    kind: AliasKind = Field(sa_type=open_enum(AliasKind, "alias_kind"))
    value: str = Field(max_length=256)
    created_at: datetime = utc_field(now=True)


class AppInstall(SQLModel, table=True):
    """One install of the companion app; unlinked (``profile_id`` NULL) until sign-in."""

    __tablename__ = "app_installs"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    profile_id: str | None = Field(
        default=None, foreign_key=_PROFILE_FK, max_length=ID_LENGTH, index=True, ondelete="CASCADE"
    )
    #: HMAC key of the rotating BLE token (``vitrine.contracts.app_token``).
    #: Only the server holds it; never logged, never returned after enrolment.
    secret: bytes = Field(sa_type=sa.LargeBinary(64))
    created_at: datetime = utc_field(now=True)
    last_seen_at: datetime | None = utc_field(nullable=True)


class AppTokenHint(SQLModel, table=True):
    """Which installs may advertise a token in a window: the index behind token resolution.

    One row per install per token window the fact consumer has needed
    (``server.installs.token_index``): the window's number and the top
    :data:`~server.installs.token_index.HINT_BITS` bits of the install's token in it,
    never the token. A hint narrows the lookup to a handful of candidates, whose
    token is then recomputed from the secret; rows of windows that can no longer
    be current are deleted, and the install's rows go with it (``ON DELETE CASCADE``).
    """

    __tablename__ = "app_token_hints"
    __table_args__ = (sa.Index(None, "period_s", "token_window", "hint"),)

    install_id: str = Field(
        foreign_key="app_installs.id", primary_key=True, max_length=ID_LENGTH, ondelete="CASCADE"
    )
    #: The rotation period the window is counted in (``window_of(t, period_s)``).
    period_s: int = Field(primary_key=True)
    #: ``vitrine.contracts.app_token.window_of``: seconds since the epoch // period.
    token_window: int = Field(primary_key=True, sa_type=sa.BigInteger)
    hint: int


class ConsentPurpose(StrEnum):
    """ARCHITECTURE.md, "Identity, privacy and consent"."""

    #: The shopper gets in-store help on their phone.
    GUIDANCE = "guidance"
    #: Staff may see the shopper's arrival and context.
    STAFF_RECOGNITION = "staff_recognition"
    #: Store interactions are logged to the profile's timeline.
    JOURNEY_PROFILE = "journey_profile"


class Consent(SQLModel, table=True):
    """The current answer per purpose; no row means not granted."""

    __tablename__ = "consents"

    profile_id: str = Field(
        foreign_key=_PROFILE_FK, primary_key=True, max_length=ID_LENGTH, ondelete="CASCADE"
    )
    purpose: ConsentPurpose = Field(
        primary_key=True, sa_type=closed_enum(ConsentPurpose, "consent_purpose")
    )
    granted: bool
    updated_at: datetime = utc_field(now=True)


class ConsentEvent(SQLModel, table=True):
    """Append-only history of every consent change: who, when, what, through what."""

    __tablename__ = "consent_events"
    __table_args__ = (sa.Index(None, "profile_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(foreign_key=_PROFILE_FK, max_length=ID_LENGTH, ondelete="CASCADE")
    purpose: ConsentPurpose = Field(sa_type=closed_enum(ConsentPurpose, "consent_purpose"))
    granted: bool
    #: Where the change came from: ``app``, ``web``, ``staff``, ``api``, ``purge``…
    source: str = Field(max_length=32)
    #: Who made it: ``shopper`` or a staff/admin user id (never a shopper's alias).
    actor: str = Field(max_length=200)
    occurred_at: datetime = utc_field(now=True)

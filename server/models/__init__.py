"""Every table of the server, re-exported so that Alembic (and everyone) sees them all.

Import tables from here: ``from server.models import Item, OutboxMessage``.
Importing this package also fixes the metadata's naming convention
(:mod:`server.models.base`). ``metadata`` is the one ``MetaData`` the
migrations compare against.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from server.models.base import NAMING_CONVENTION, new_id, utcnow
from server.models.catalogue import (
    Item,
    ItemStatus,
    Product,
    ProductBase,
    ProductPublic,
    Variant,
    VariantBase,
    VariantPublic,
)
from server.models.engine import (
    Offer,
    OfferDelivery,
    StaffAlert,
    StaffStatus,
    StaffTask,
    VisitEngineState,
)
from server.models.journeys import (
    Channel,
    DeviceKind,
    InteractionKind,
    ProductView,
    ProfileInteraction,
    StoreVisit,
)
from server.models.outbox import OutboxMessage, ProcessedEvent
from server.models.shoppers import (
    AliasKind,
    AppInstall,
    AppTokenHint,
    Consent,
    ConsentEvent,
    ConsentPurpose,
    ProfileAlias,
    ShopperProfile,
    ShopperProfileBase,
    ShopperProfilePublic,
)
from server.models.store_ops import ItemObservation, PendingPickup
from server.models.stores import Antenna, Rack, Reader, Scanner, Store, Zone, ZoneType
from server.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint

__all__ = [
    "NAMING_CONVENTION",
    "AliasKind",
    "Antenna",
    "AppInstall",
    "AppTokenHint",
    "Channel",
    "Consent",
    "ConsentEvent",
    "ConsentPurpose",
    "DeliveryStatus",
    "DeviceKind",
    "InteractionKind",
    "Item",
    "ItemObservation",
    "ItemStatus",
    "Offer",
    "OfferDelivery",
    "OutboxMessage",
    "PendingPickup",
    "ProcessedEvent",
    "Product",
    "ProductBase",
    "ProductPublic",
    "ProductView",
    "ProfileAlias",
    "ProfileInteraction",
    "Rack",
    "Reader",
    "Scanner",
    "ShopperProfile",
    "ShopperProfileBase",
    "ShopperProfilePublic",
    "StaffAlert",
    "StaffStatus",
    "StaffTask",
    "Store",
    "StoreVisit",
    "Variant",
    "VariantBase",
    "VariantPublic",
    "VisitEngineState",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Zone",
    "ZoneType",
    "metadata",
    "new_id",
    "utcnow",
]

metadata = SQLModel.metadata

"""The catalogue and the tagged items: product → variant → item (EPC).

An item's EPC decodes (SGTIN-96/198, GS1 Tag Data Standard) to a GTIN-14 and a
serial; the GTIN finds the variant. EPCs that are not SGTIN, or whose GTIN is
not in the catalogue, are kept as opaque tags (``variant_id`` NULL), so stock
counts never silently drop a read item (ARCHITECTURE.md, "Identity").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.base import (
    ID_LENGTH,
    LAYOUT_ID_LENGTH,
    closed_enum,
    new_id,
    utc_field,
)

__all__ = [
    "Item",
    "ItemStatus",
    "Product",
    "ProductBase",
    "ProductPublic",
    "Variant",
    "VariantBase",
    "VariantPublic",
]


class ProductBase(SQLModel):
    #: The product's id on the online store (Shopify product id, a PIM code…).
    online_product_id: str | None = Field(default=None, max_length=200, unique=True)
    name: str = Field(max_length=300)
    brand: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200, index=True)
    url: str | None = Field(default=None, max_length=2048)
    image_url: str | None = Field(default=None, max_length=2048)


class Product(ProductBase, table=True):
    __tablename__ = "products"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)


class ProductPublic(ProductBase):
    id: str


class VariantBase(SQLModel):
    sku: str = Field(max_length=100, unique=True)
    #: GTIN-14, 14 digits with the check digit (``vitrine.contracts.ids.Gtin``).
    #: Indexed, not unique: retailers do reuse a GTIN across SKUs (re-labels).
    gtin14: str | None = Field(default=None, min_length=14, max_length=14, index=True)
    online_variant_id: str | None = Field(default=None, max_length=200, index=True)
    size: str | None = Field(default=None, max_length=50)
    colour: str | None = Field(default=None, max_length=100)
    #: Exact decimal; NUMERIC(12,2) on PostgreSQL. SQLite keeps NUMERIC affinity.
    price: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)
    #: ISO 4217 code.
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    image_url: str | None = Field(default=None, max_length=2048)


class Variant(VariantBase, table=True):
    __tablename__ = "variants"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=ID_LENGTH)
    product_id: str = Field(
        foreign_key="products.id", max_length=ID_LENGTH, index=True, ondelete="CASCADE"
    )


class VariantPublic(VariantBase):
    id: str
    product_id: str


class ItemStatus(StrEnum):
    IN_STOCK = "in_stock"
    SOLD = "sold"


class Item(SQLModel, table=True):
    """One tagged item and where it was last read (the live zone stock)."""

    __tablename__ = "items"
    __table_args__ = (
        sa.ForeignKeyConstraint(["store_id", "zone_id"], ["zones.store_id", "zones.id"]),
        sa.ForeignKeyConstraint(["store_id", "rack_id"], ["racks.store_id", "racks.id"]),
        # "What is in this zone" and "where is this variant in this store".
        sa.Index(None, "store_id", "zone_id"),
        sa.Index(None, "variant_id", "store_id"),
        sa.CheckConstraint("upper(epc) = epc", name="epc_upper_hex"),
    )

    #: Upper-case hex, no separators (``vitrine.contracts.ids.normalise_epc``).
    epc: str = Field(primary_key=True, max_length=128)
    gtin14: str | None = Field(default=None, max_length=14, index=True)
    serial: str | None = Field(default=None, max_length=64)
    variant_id: str | None = Field(
        default=None, foreign_key="variants.id", max_length=ID_LENGTH, ondelete="SET NULL"
    )
    store_id: str | None = Field(default=None, foreign_key="stores.id", max_length=LAYOUT_ID_LENGTH)
    zone_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)
    rack_id: str | None = Field(default=None, max_length=LAYOUT_ID_LENGTH)
    last_seen_at: datetime | None = utc_field(nullable=True)
    status: ItemStatus = Field(
        default=ItemStatus.IN_STOCK, sa_type=closed_enum(ItemStatus, "item_status")
    )

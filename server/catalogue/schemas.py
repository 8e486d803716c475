"""Import rows and reports of the catalogue feature.

The JSON file format is the shared contract :class:`vitrine.contracts.catalogue.Catalogue`
(the simulator's ``firmware_sim/data/catalogue.json``). The CSV format is one
row per variant, product columns repeated (header names are case-insensitive;
``title`` and ``color`` are accepted for ``name`` and ``colour``)::

    product_id,name,brand,category,url,image_url,variant_id,sku,gtin,size,colour,price,currency
    7001000000,Linen shirt,Demo,women/shirts,https://…,https://…,41000000001,LSX00-WHI-XS,00614141000012,XS,white,49.90,EUR

The stock file is ``{"store_id": ..., "items": [{"epc", "gtin", "serial", "rack"}]}``
(the simulator's ``firmware_sim/data/stock.json``).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vitrine.contracts.catalogue import is_valid_gtin14

__all__ = [
    "CatalogueImportReport",
    "ProductRecord",
    "StockFile",
    "StockImportReport",
    "StockItem",
    "VariantRecord",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _gtin(value: str | None) -> str | None:
    if value is None:
        return None
    if not is_valid_gtin14(value):
        raise ValueError(f"{value!r} is not a GTIN-14 with a valid check digit")
    return value


class VariantRecord(_Frozen):
    """One variant as imported; lengths match the ``variants`` columns."""

    sku: str = Field(min_length=1, max_length=100)
    gtin14: str | None = None
    online_variant_id: str | None = Field(default=None, max_length=200)
    size: str | None = Field(default=None, max_length=50)
    colour: str | None = Field(default=None, max_length=100)
    price: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    image_url: str | None = Field(default=None, max_length=2048)

    _check_gtin = field_validator("gtin14")(_gtin)


class ProductRecord(_Frozen):
    online_product_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=300)
    brand: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    image_url: str | None = Field(default=None, max_length=2048)
    variants: tuple[VariantRecord, ...] = ()


class CatalogueImportReport(BaseModel):
    products_created: int = 0
    products_updated: int = 0
    variants_created: int = 0
    variants_updated: int = 0


class StockItem(_Frozen):
    epc: str = Field(min_length=2, max_length=128)
    gtin: str
    serial: int | str
    rack: str | None = None

    _check_gtin = field_validator("gtin")(_gtin)


class StockFile(_Frozen):
    store_id: str = Field(min_length=1, max_length=128)
    items: tuple[StockItem, ...]


class StockImportReport(BaseModel):
    items_created: int = 0
    items_updated: int = 0
    unknown_gtins: int = Field(
        default=0, description="Items kept as tags whose GTIN is not in the catalogue."
    )

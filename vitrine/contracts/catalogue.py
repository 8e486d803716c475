"""A retailer's catalogue file: products, their variants (size × colour) and GTINs.

One schema serves the simulator (which tags stock with SGTIN-96 EPCs built from
the GTINs) and the server's ``vitrine catalogue import`` (which maps the online
store's ids — Segment ``product_id``/``sku``, GA4 ``item_id``, Shopify product and
variant ids — to the GTIN-14 the store's RFID tags carry; WIRE-FORMATS §7,
"Matching implication"). Files are JSON; loading them is the caller's I/O,
validating them is :meth:`Catalogue.model_validate`.

Example (one product, one variant)::

    {"retailer": {"name": "Demo", "company_prefix": "0614141"},
     "currency": "EUR",
     "products": [{"product_id": "7001000000001", "title": "Linen shirt",
                   "brand": "Vitrine", "category": "shirts",
                   "url": "https://shop.example/products/linen-shirt",
                   "image_url": "https://shop.example/img/linen-shirt.jpg",
                   "variants": [{"variant_id": "4100000000001", "sku": "LSH-NAV-M",
                                 "gtin": "00614141000012", "size": "M",
                                 "colour": "navy", "price": "49.90"}]}]}
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Catalogue", "Product", "Retailer", "Variant", "gtin_check_digit", "is_valid_gtin14"]

_NUMERIC_ID = r"^[0-9]{1,20}$"


def gtin_check_digit(data_digits: str) -> int:
    """GS1 mod-10 check digit of the digits *before* the check digit.

    From the rightmost data digit, weights 3, 1, 3, …; check = (10 − sum mod 10) mod 10
    (GS1 General Specifications §7.9.1; WIRE-FORMATS §4).
    """
    if not data_digits.isdigit():
        raise ValueError(f"{data_digits!r} is not all digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data_digits)))
    return (10 - total % 10) % 10


def is_valid_gtin14(gtin: str) -> bool:
    return len(gtin) == 14 and gtin.isdigit() and gtin_check_digit(gtin[:13]) == int(gtin[13])


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Retailer(_Frozen):
    name: str
    #: The GS1 company prefix the retailer's own-brand GTINs are issued under;
    #: its length selects the SGTIN-96 partition (GS1 TDS §14.5.1).
    company_prefix: str = Field(pattern=r"^[0-9]{6,12}$")


class Variant(_Frozen):
    #: Shopify-like numeric string (Web Pixels ``productVariant.id``).
    variant_id: str = Field(pattern=_NUMERIC_ID)
    sku: str = Field(min_length=1, max_length=64)
    #: GTIN-14, check digit included.
    gtin: str
    size: str
    colour: str
    #: Decimal string in the catalogue currency (web events send prices as strings too).
    price: Decimal = Field(ge=0)

    @field_validator("gtin")
    @classmethod
    def _gtin_is_valid(cls, value: str) -> str:
        if not is_valid_gtin14(value):
            raise ValueError(f"{value!r} is not a GTIN-14 with a valid check digit")
        return value


class Product(_Frozen):
    #: Shopify-like numeric string (Web Pixels ``product.id``; Segment ``product_id``).
    product_id: str = Field(pattern=_NUMERIC_ID)
    title: str
    brand: str
    category: str
    url: str
    image_url: str
    variants: tuple[Variant, ...] = Field(min_length=1)


class Catalogue(_Frozen):
    retailer: Retailer
    #: ISO 4217, upper case.
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    products: tuple[Product, ...]

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Catalogue:
        seen: dict[str, set[str]] = {"product_id": set(), "variant_id": set(), "sku": set()}
        seen["gtin"] = set()
        problems: list[str] = []
        for product in self.products:
            if product.product_id in seen["product_id"]:
                problems.append(f"duplicate product_id {product.product_id}")
            seen["product_id"].add(product.product_id)
            for variant in product.variants:
                for key in ("variant_id", "sku", "gtin"):
                    value = getattr(variant, key)
                    if value in seen[key]:
                        problems.append(f"duplicate {key} {value}")
                    seen[key].add(value)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def variants(self) -> tuple[tuple[Product, Variant], ...]:
        """Every (product, variant) pair, in file order."""
        return tuple((p, v) for p in self.products for v in p.variants)

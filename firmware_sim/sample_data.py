"""Regenerate the sample catalogue and stock: ``python -m firmware_sim.sample_data``.

The files under ``firmware_sim/data/`` are the output, committed; this script
documents how they were made and keeps them reproducible (fixed seed).
Company prefix ``0614141`` is the GS1 TDS's own example prefix (Annex E.3), so
no real company's GTINs are ever printed on a simulated tag.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from firmware_sim.epc import sgtin96_hex
from firmware_sim.store import DATA_DIR
from vitrine.contracts.catalogue import gtin_check_digit

__all__ = ["build", "main"]

COMPANY_PREFIX = "0614141"
SIZES = ("XS", "S", "M", "L", "XL")
#: Sizes kept off the floor for most products, so "only in the stockroom" is common.
BACK_SIZES = ("XS", "XL")

# (title, category, rack, stockroom shelf, price, colours, sized)
_PRODUCTS: tuple[tuple[str, str, str, str, str, tuple[str, str], bool], ...] = (
    ("Linen shirt", "women/shirts", "rack-w1", "shelf-s1", "49.90", ("white", "sky"), True),
    ("Silk blouse", "women/shirts", "rack-w1", "shelf-s1", "79.00", ("ivory", "black"), True),
    ("Oxford shirt", "women/shirts", "rack-w1", "shelf-s1", "45.00", ("blue", "pink"), True),
    ("Wrap dress", "women/dresses", "rack-w2", "shelf-s1", "89.00", ("green", "navy"), True),
    ("Slip dress", "women/dresses", "rack-w2", "shelf-s1", "69.00", ("black", "sand"), True),
    ("Shirt dress", "women/dresses", "rack-w2", "shelf-s1", "75.00", ("stripe", "khaki"), True),
    ("Merino jumper", "women/knitwear", "rack-w3", "shelf-s1", "95.00", ("grey", "camel"), True),
    ("Cable cardigan", "women/knitwear", "rack-w3", "shelf-s1", "110.00", ("cream", "rust"), True),
    ("Poplin shirt", "men/shirts", "rack-m1", "shelf-s2", "55.00", ("white", "blue"), True),
    ("Flannel shirt", "men/shirts", "rack-m1", "shelf-s2", "59.00", ("red", "green"), True),
    ("Denim shirt", "men/shirts", "rack-m1", "shelf-s2", "65.00", ("indigo", "bleach"), True),
    ("Chinos", "men/trousers", "rack-m2", "shelf-s2", "69.00", ("beige", "navy"), True),
    ("Wool trousers", "men/trousers", "rack-m2", "shelf-s2", "120.00", ("charcoal", "navy"), True),
    ("Selvedge jeans", "men/trousers", "rack-m2", "shelf-s2", "129.00", ("raw", "stone"), True),
    ("Field jacket", "men/jackets", "rack-m3", "shelf-s2", "189.00", ("olive", "black"), True),
    ("Quilted jacket", "men/jackets", "rack-m3", "shelf-s2", "159.00", ("navy", "tan"), True),
    ("Wool scarf", "accessories/scarves", "rack-a1", "shelf-s1", "39.00", ("grey", "red"), False),
    ("Leather belt", "accessories/belts", "rack-a1", "shelf-s1", "45.00", ("black", "tan"), False),
    ("Tote bag", "accessories/bags", "rack-a2", "shelf-s2", "59.00", ("natural", "black"), False),
    (
        "Crossbody bag",
        "accessories/bags",
        "rack-a2",
        "shelf-s2",
        "99.00",
        ("black", "cognac"),
        False,
    ),
)


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def build(seed: int = 20240905) -> tuple[dict[str, Any], dict[str, Any]]:
    """The catalogue and stock documents (plain JSON-able dicts)."""
    rng = random.Random(seed)
    products: list[dict[str, object]] = []
    items: list[dict[str, object]] = []
    item_ref = 0
    for index, (title, category, rack, shelf, price, colours, sized) in enumerate(_PRODUCTS):
        variants: list[dict[str, object]] = []
        code = "".join(w[0] for w in title.upper().split())[:3].ljust(3, "X") + f"{index:02d}"
        for colour in colours:
            for size in SIZES if sized else ("U",):
                item_ref += 1
                # GTIN-14 = indicator 0 + company prefix + 5-digit item ref + check (TDS §7.1).
                body = "0" + COMPANY_PREFIX + f"{item_ref:05d}"
                gtin = body + str(gtin_check_digit(body))
                variants.append(
                    {
                        "variant_id": str(41000000000 + item_ref),
                        "sku": f"{code}-{colour[:3].upper()}-{size}",
                        "gtin": gtin,
                        "size": size,
                        "colour": colour,
                        "price": str(Decimal(price)),
                    }
                )
                on_floor = 0 if size in BACK_SIZES and rng.random() < 0.8 else rng.randint(1, 2)
                in_back = rng.randint(1, 3) if on_floor == 0 else rng.randint(0, 2)
                for n in range(on_floor + in_back):
                    serial = 1000 + n
                    items.append(
                        {
                            "epc": sgtin96_hex(gtin, serial, len(COMPANY_PREFIX)),
                            "gtin": gtin,
                            "serial": serial,
                            "rack": rack if n < on_floor else shelf,
                        }
                    )
        products.append(
            {
                "product_id": str(7001000000 + index),
                "title": title,
                "brand": "Vitrine Demo",
                "category": category,
                "url": f"https://shop.example/products/{_slug(title)}",
                "image_url": f"https://shop.example/images/{_slug(title)}.jpg",
                "variants": variants,
            }
        )
    catalogue: dict[str, Any] = {
        "retailer": {"name": "Vitrine Demo", "company_prefix": COMPANY_PREFIX},
        "currency": "EUR",
        "products": products,
    }
    stock: dict[str, Any] = {"store_id": "demo-rivoli", "items": items}
    return catalogue, stock


def main(out_dir: Path = DATA_DIR) -> None:
    catalogue, stock = build()
    for name, doc in (("catalogue.json", catalogue), ("stock.json", stock)):
        (out_dir / name).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

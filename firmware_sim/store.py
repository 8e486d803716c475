"""The simulated store's files: layout, catalogue and stock, and their loaders.

- layout: YAML/JSON validating as :class:`vitrine.contracts.layout.StoreLayout`;
- catalogue: JSON validating as :class:`vitrine.contracts.catalogue.Catalogue`
  (the same file ``vitrine catalogue import`` reads);
- stock: JSON validating as :class:`Stock` — the simulator's own file: every
  tagged item, its SGTIN-96 EPC and the rack or shelf it starts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from vitrine.contracts.catalogue import Catalogue, Product, Variant
from vitrine.contracts.layout import StoreLayout

__all__ = [
    "DATA_DIR",
    "SampleFiles",
    "Stock",
    "StockItem",
    "StoreBundle",
    "load_bundle",
    "load_catalogue",
    "load_layout",
    "load_stock",
]

DATA_DIR = Path(str(resources.files("firmware_sim") / "data"))


class StockItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: SGTIN-96 EPC, upper-case hex (24 digits).
    epc: str = Field(pattern=r"^[0-9A-F]{24}$")
    gtin: str
    serial: int = Field(ge=0, lt=2**38)
    #: The rack (or stockroom shelf) the item hangs on at the start.
    rack: str


class Stock(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    store_id: str
    items: tuple[StockItem, ...]


@dataclass(frozen=True, slots=True)
class SampleFiles:
    layout: Path = DATA_DIR / "store.yaml"
    catalogue: Path = DATA_DIR / "catalogue.json"
    stock: Path = DATA_DIR / "stock.json"


@dataclass(frozen=True, slots=True)
class StoreBundle:
    layout: StoreLayout
    catalogue: Catalogue
    stock: Stock

    def variant_by_gtin(self) -> dict[str, tuple[Product, Variant]]:
        return {v.gtin: (p, v) for p, v in self.catalogue.variants()}


def load_layout(path: Path) -> StoreLayout:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return StoreLayout.model_validate(data)


def load_catalogue(path: Path) -> Catalogue:
    return Catalogue.model_validate_json(path.read_bytes())


def load_stock(path: Path) -> Stock:
    return Stock.model_validate_json(path.read_bytes())


def load_bundle(layout: Path, catalogue: Path, stock: Path) -> StoreBundle:
    bundle = StoreBundle(load_layout(layout), load_catalogue(catalogue), load_stock(stock))
    racks = {r.id for r in bundle.layout.racks}
    gtins = bundle.variant_by_gtin()
    for item in bundle.stock.items:
        if item.rack not in racks:
            raise ValueError(f"stock item on unknown rack {item.rack}")
        if item.gtin not in gtins:
            raise ValueError(f"stock item of unknown GTIN {item.gtin}")
    return bundle

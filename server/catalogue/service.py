"""Catalogue imports: parse every row first, write nothing unless all rows are good.

A whole file is one transaction: either every product, variant or item is
upserted, or the import raises :class:`ImportRejected` listing each bad row and
the database is untouched. Upserts key on the online product id (products),
the SKU (variants) and the EPC (items), so importing the same file twice
changes nothing the second time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import ValidationError
from sqlmodel import Session

from server.catalogue import repository
from server.catalogue.schemas import (
    CatalogueImportReport,
    ProductRecord,
    StockFile,
    StockImportReport,
    VariantRecord,
)
from server.errors import NotFound, VitrineError
from server.models import Item, Product, Store, Variant
from vitrine.contracts.catalogue import Catalogue
from vitrine.contracts.ids import IdError, normalise_epc

__all__ = [
    "CatalogueFormat",
    "ImportRejected",
    "import_catalogue",
    "import_stock",
    "parse_catalogue",
    "parse_stock",
    "resolve_line",
]

log = logging.getLogger(__name__)

CatalogueFormat = Literal["csv", "json"]
#: How many problems an error message lists: enough to fix a file in one pass,
#: short enough for one HTTP response or terminal screen.
_PROBLEMS_SHOWN = 50


class ImportRejected(VitrineError):  # noqa: N818 (an outcome, like NotFound)
    """The file has bad rows; ``problems`` names each (``row 3: gtin: …``). Nothing was written."""

    status_code = 422

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:_PROBLEMS_SHOWN])
        more = len(problems) - len(shown)
        suffix = f"; … and {more} more" if more else ""
        super().__init__(
            f"{len(problems)} problem(s), nothing imported: {'; '.join(shown)}{suffix}"
        )
        self.problems = list(problems)


def _pydantic_problems(error: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for item in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"]).lstrip(".")
        where = f"{prefix}{loc}" if loc else prefix.rstrip(": ") or "file"
        problems.append(f"{where}: {item['msg']}")
    return problems


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")  # spreadsheets often write a BOM
    except UnicodeDecodeError as error:
        raise ImportRejected([f"file is not UTF-8: {error.reason} at byte {error.start}"]) from None


def parse_catalogue(content: bytes, fmt: CatalogueFormat) -> list[ProductRecord]:
    """Every product of a CSV or JSON catalogue file, or :class:`ImportRejected`."""
    text = _decode(content)
    return _parse_csv(text) if fmt == "csv" else _parse_json(text)


def _parse_json(text: str) -> list[ProductRecord]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportRejected([f"not JSON: {error.msg} at line {error.lineno}"]) from None
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as error:
        raise ImportRejected(_pydantic_problems(error)) from None
    return [
        ProductRecord(
            online_product_id=p.product_id,
            name=p.title,
            brand=p.brand,
            category=p.category,
            url=p.url,
            image_url=p.image_url,
            variants=tuple(
                VariantRecord(
                    sku=v.sku,
                    gtin14=v.gtin,
                    online_variant_id=v.variant_id,
                    size=v.size,
                    colour=v.colour,
                    price=v.price,
                    currency=catalogue.currency,
                )
                for v in p.variants
            ),
        )
        for p in catalogue.products
    ]


_ALIASES = {"title": "name", "color": "colour", "gtin14": "gtin", "online_product_id": "product_id"}
_PRODUCT_COLUMNS = ("name", "brand", "category", "url", "image_url")
_REQUIRED = ("product_id", "name", "sku")


def _parse_csv(text: str) -> list[ProductRecord]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise ImportRejected(["empty file: no header row"])
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in reader.fieldnames]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ImportRejected([f"header: missing column(s) {', '.join(missing)}"])
    reader.fieldnames = header
    problems: list[str] = []
    products: dict[str, dict[str, object]] = {}
    variants: dict[str, list[VariantRecord]] = {}
    skus: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):  # line 1 is the header
        if None in row:
            problems.append(f"row {line}: more cells than header columns")
            continue
        cells = {k: (v.strip() or None) if isinstance(v, str) else None for k, v in row.items()}
        if not any(cells.values()):
            continue
        where = f"row {line}: "
        try:
            variant = VariantRecord(
                sku=cells.get("sku") or "",
                gtin14=cells.get("gtin"),
                online_variant_id=cells.get("variant_id"),
                size=cells.get("size"),
                colour=cells.get("colour"),
                price=cells.get("price"),  # pydantic parses "49.90"
                currency=(cells.get("currency") or "").upper() or None,
                image_url=cells.get("variant_image_url"),
            )
        except ValidationError as error:
            problems.extend(_pydantic_problems(error, where))
            continue
        product_id = cells.get("product_id")
        if not product_id:
            problems.append(f"{where}product_id: required")
            continue
        if variant.sku in skus:
            problems.append(f"{where}sku {variant.sku} repeats row {skus[variant.sku]}")
            continue
        skus[variant.sku] = line
        fields: dict[str, object] = {c: cells.get(c) for c in _PRODUCT_COLUMNS}
        first = products.setdefault(product_id, fields)
        if first != fields:
            problems.append(f"{where}product {product_id} differs from its first row")
            continue
        variants.setdefault(product_id, []).append(variant)
    records: list[ProductRecord] = []
    for product_id, fields in products.items():
        try:
            records.append(
                ProductRecord.model_validate(
                    {"online_product_id": product_id, **fields, "variants": variants[product_id]}
                )
            )
        except ValidationError as error:
            problems.extend(_pydantic_problems(error, f"product {product_id}: "))
    if problems:
        raise ImportRejected(problems)
    return records


def import_catalogue(session: Session, records: Sequence[ProductRecord]) -> CatalogueImportReport:
    """Upsert every product and variant, then commit once."""
    report = CatalogueImportReport()
    existing = repository.product_ids_by_online_id(session, (r.online_product_id for r in records))
    known_variants = repository.variants_by_sku(
        session, (v.sku for r in records for v in r.variants)
    )
    try:
        for record in records:
            fields = record.model_dump(exclude={"variants"})
            product = existing.get(record.online_product_id)
            if product is None:
                product = Product(**fields)
                session.add(product)
                report.products_created += 1
            elif _assign(product, fields):
                report.products_updated += 1
            session.flush()
            for v in record.variants:
                vfields = {**v.model_dump(), "product_id": product.id}
                if v.image_url is None:
                    vfields.pop("image_url")
                variant = known_variants.get(v.sku)
                if variant is None:
                    session.add(Variant(**vfields))
                    report.variants_created += 1
                elif _assign(variant, vfields):
                    report.variants_updated += 1
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("catalogue imported", extra=report.model_dump())
    return report


def _assign(row: Product | Variant, fields: dict[str, object]) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def parse_stock(content: bytes) -> StockFile:
    try:
        data = json.loads(_decode(content))
    except json.JSONDecodeError as error:
        raise ImportRejected([f"not JSON: {error.msg} at line {error.lineno}"]) from None
    try:
        return StockFile.model_validate(data)
    except ValidationError as error:
        raise ImportRejected(_pydantic_problems(error)) from None


def import_stock(session: Session, stock: StockFile) -> StockImportReport:
    """Upsert the tagged items of one store: EPC → GTIN + serial → variant, rack → zone.

    An existing item keeps its live position (the engine's, from facts); only
    its identity (GTIN, serial, variant) is refreshed.
    """
    if session.get(Store, stock.store_id) is None:
        raise NotFound(f"store {stock.store_id} is not imported; run `vitrine store import` first")
    racks = repository.racks_of_store(session, stock.store_id)
    problems: list[str] = []
    epcs: dict[str, int] = {}
    for i, item in enumerate(stock.items):
        try:
            epc = normalise_epc(item.epc)
        except IdError as error:
            problems.append(f"items[{i}].epc: {error}")
            continue
        if epc in epcs:
            problems.append(f"items[{i}].epc: repeats items[{epcs[epc]}]")
        epcs[epc] = i
        if item.rack is not None and item.rack not in racks:
            problems.append(f"items[{i}].rack: no rack {item.rack} in store {stock.store_id}")
    if problems:
        raise ImportRejected(problems)
    variants = repository.variants_by_gtin(session, (i.gtin for i in stock.items))
    existing = repository.get_items(session, epcs)
    report = StockImportReport()
    try:
        for item in stock.items:
            epc = normalise_epc(item.epc)
            variant = variants.get(item.gtin)
            if variant is None:
                report.unknown_gtins += 1
            identity: dict[str, str | None] = {
                "gtin14": item.gtin,
                "serial": str(item.serial),
                "variant_id": variant.id if variant else None,
            }
            row = existing.get(epc)
            if row is None:
                rack = racks.get(item.rack) if item.rack else None
                session.add(
                    Item(
                        epc=epc,
                        gtin14=item.gtin,
                        serial=str(item.serial),
                        variant_id=variant.id if variant else None,
                        store_id=stock.store_id,
                        zone_id=rack.zone_id if rack else None,
                        rack_id=rack.id if rack else None,
                    )
                )
                report.items_created += 1
            elif any(getattr(row, k) != v for k, v in identity.items()):
                for k, v in identity.items():
                    setattr(row, k, v)
                report.items_updated += 1
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("stock imported", extra={"store": stock.store_id, **report.model_dump()})
    return report


def resolve_line(
    session: Session,
    *,
    product_id: str | None,
    variant_id: str | None,
    sku: str | None,
    variant_text: str | None,
) -> tuple[Product | None, Variant | None]:
    """The catalogue product and variant an online event's product line names.

    Tried in order: the online variant id; the SKU; the SKU or product id read as
    a GTIN (8–14 digits, zero-padded to GTIN-14; WIRE-FORMATS §7 — no web format
    carries a GTIN natively, but retailers do put one in ``sku``/``item_id``);
    the online product id; the product id read as a SKU (GA4 ``item_id`` is often
    the SKU). With the product but no variant, the variant text (``"M / Black"``)
    picks the variant whose size (and colour, if several) it names.
    """
    variant: Variant | None = None
    if variant_id:
        variant = next(iter(repository.variants_by_online_id(session, variant_id)), None)
    for candidate in (sku, product_id):
        if variant is None and candidate:
            variant = repository.get_variant_by_sku(session, candidate)
            digits = candidate.strip()
            if variant is None and digits.isdigit() and 8 <= len(digits) <= 14:
                variant = repository.variants_by_gtin(session, [digits.zfill(14)]).get(
                    digits.zfill(14)
                )
    if variant is not None:
        return repository.get_product(session, variant.product_id), variant
    product = repository.get_product_by_online_id(session, product_id) if product_id else None
    if product is not None and variant_text:
        variant = _variant_from_text(
            repository.variants_of_product(session, product.id), variant_text
        )
    return product, variant


def _variant_from_text(variants: Sequence[Variant], text: str) -> Variant | None:
    tokens = {t.strip().lower() for t in re.split(r"[/,|;]| - ", text) if t.strip()}
    by_size = [v for v in variants if v.size and v.size.lower() in tokens]
    if len(by_size) == 1:
        return by_size[0]
    by_both = [v for v in by_size if v.colour and v.colour.lower() in tokens]
    return by_both[0] if len(by_both) == 1 else None

"""Every catalogue query: upserts for imports, lookups for online events and EPCIS."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, select

from server.models import Item, Product, Rack, Variant

__all__ = [
    "get_items",
    "get_product",
    "get_product_by_online_id",
    "get_variant",
    "get_variant_by_sku",
    "product_ids_by_online_id",
    "racks_of_store",
    "variants_by_gtin",
    "variants_by_online_id",
    "variants_by_sku",
    "variants_of_product",
]


def get_product(session: Session, product_id: str) -> Product | None:
    return session.get(Product, product_id)


def get_variant(session: Session, variant_id: str) -> Variant | None:
    return session.get(Variant, variant_id)


def get_product_by_online_id(session: Session, online_id: str) -> Product | None:
    return session.exec(select(Product).where(Product.online_product_id == online_id)).first()


def get_variant_by_sku(session: Session, sku: str) -> Variant | None:
    return session.exec(select(Variant).where(Variant.sku == sku)).first()


def product_ids_by_online_id(session: Session, online_ids: Iterable[str]) -> dict[str, Product]:
    ids = list(set(online_ids))
    if not ids:
        return {}
    rows = session.exec(select(Product).where(col(Product.online_product_id).in_(ids))).all()
    return {p.online_product_id: p for p in rows if p.online_product_id is not None}


def variants_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Variant]:
    values = list(set(skus))
    if not values:
        return {}
    rows = session.exec(select(Variant).where(col(Variant.sku).in_(values))).all()
    return {v.sku: v for v in rows}


def variants_by_online_id(session: Session, online_id: str) -> Sequence[Variant]:
    return session.exec(select(Variant).where(Variant.online_variant_id == online_id)).all()


def variants_by_gtin(session: Session, gtins: Iterable[str]) -> dict[str, Variant]:
    """GTIN → variant; where a GTIN is shared (re-labels) the first SKU in order wins."""
    values = list(set(gtins))
    if not values:
        return {}
    rows = session.exec(
        select(Variant).where(col(Variant.gtin14).in_(values)).order_by(col(Variant.sku))
    ).all()
    found: dict[str, Variant] = {}
    for v in rows:
        if v.gtin14 is not None:
            found.setdefault(v.gtin14, v)
    return found


def variants_of_product(session: Session, product_id: str) -> Sequence[Variant]:
    return session.exec(
        select(Variant).where(Variant.product_id == product_id).order_by(col(Variant.sku))
    ).all()


def get_items(session: Session, epcs: Iterable[str]) -> dict[str, Item]:
    values = list(set(epcs))
    if not values:
        return {}
    rows = session.exec(select(Item).where(col(Item.epc).in_(values))).all()
    return {i.epc: i for i in rows}


def racks_of_store(session: Session, store_id: str) -> dict[str, Rack]:
    rows = session.exec(select(Rack).where(Rack.store_id == store_id)).all()
    return {r.id: r for r in rows}

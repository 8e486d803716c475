"""A small catalogue and store for the server's feature tests (the simulator's own files)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from server.catalogue import service as catalogue
from server.models import Variant
from server.stores.service import import_layout, parse_layout

__all__ = ["DATA", "load_demo", "variant"]

DATA = Path(__file__).parents[3] / "firmware_sim" / "data"


def load_demo(session: Session) -> None:
    import_layout(session, parse_layout((DATA / "store.yaml").read_bytes()))
    records = catalogue.parse_catalogue((DATA / "catalogue.json").read_bytes(), "json")
    catalogue.import_catalogue(session, records)
    catalogue.import_stock(session, catalogue.parse_stock((DATA / "stock.json").read_bytes()))


def variant(session: Session, sku: str) -> Variant:
    return session.exec(select(Variant).where(Variant.sku == sku)).one()

"""Catalogue and stock import on both backends: the simulator's own files, CSV, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from server.catalogue import service
from server.models import Item, Product, Variant
from server.stores.service import import_layout, parse_layout
from tests.server.ingest_web.support import bearer, client_on

DATA = Path(__file__).parents[3] / "firmware_sim" / "data"

HEADER = b"product_id,title,brand,category,url,image_url,variant_id,sku,gtin,size,color,price,"
CSV = (
    HEADER
    + b"""currency
7001,Linen shirt,Demo,women/shirts,https://shop.example/p/1,https://shop.example/i/1.jpg,41,LS-WHI-M,00614141000036,M,white,49.90,eur
7001,Linen shirt,Demo,women/shirts,https://shop.example/p/1,https://shop.example/i/1.jpg,42,LS-WHI-L,00614141000043,L,white,49.90,EUR
"""
)


def _count(session: Session, table: type[Product | Variant | Item]) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


def test_the_simulators_catalogue_imports_idempotently(session: Session) -> None:
    records = service.parse_catalogue((DATA / "catalogue.json").read_bytes(), "json")
    first = service.import_catalogue(session, records)
    assert first.products_created == len(records) > 0
    assert first.variants_created == sum(len(r.variants) for r in records)
    again = service.import_catalogue(session, records)
    assert again.model_dump() == {
        "products_created": 0,
        "products_updated": 0,
        "variants_created": 0,
        "variants_updated": 0,
    }
    variant = session.exec(select(Variant).where(Variant.sku == "LSX00-WHI-M")).one()
    assert (variant.gtin14, variant.size, variant.currency) == ("00614141000036", "M", "EUR")
    assert variant.online_variant_id == "41000000003"


def test_csv_rows_become_one_product_with_variants(session: Session) -> None:
    report = service.import_catalogue(session, service.parse_catalogue(CSV, "csv"))
    assert (report.products_created, report.variants_created) == (1, 2)
    product = session.exec(select(Product).where(Product.online_product_id == "7001")).one()
    assert product.category == "women/shirts"
    edited = CSV.replace(b"49.90,eur", b"39.90,eur")
    report = service.import_catalogue(session, service.parse_catalogue(edited, "csv"))
    assert (report.variants_updated, report.variants_created) == (1, 0)


def test_bad_rows_are_all_named_and_nothing_is_written(session: Session) -> None:
    bad = CSV + (
        b"7002,Scarf,Demo,acc,,,43,SC-1,00614141000037,,,9.90,EUR\n"  # wrong check digit
        b"7003,Belt,Demo,acc,,,44,,,,,abc,EUR\n"  # no sku, bad price
    )
    with pytest.raises(service.ImportRejected) as caught:
        service.parse_catalogue(bad, "csv")
    problems = "\n".join(caught.value.problems)
    assert "row 4: gtin14" in problems and "check digit" in problems
    assert "row 5: sku" in problems and "row 5: price" in problems
    assert _count(session, Product) == 0


def test_stock_places_items_on_racks_and_resolves_variants(session: Session) -> None:
    import_layout(session, parse_layout((DATA / "store.yaml").read_bytes()))
    records = service.parse_catalogue((DATA / "catalogue.json").read_bytes(), "json")
    service.import_catalogue(session, records)
    stock = service.parse_stock((DATA / "stock.json").read_bytes())
    report = service.import_stock(session, stock)
    assert report.items_created == len(stock.items) and report.unknown_gtins == 0
    item = session.get(Item, "3034257BF40000C0000003E8")
    assert item is not None and (item.zone_id, item.rack_id) == ("floor-women", "rack-w1")
    assert service.import_stock(session, stock).items_created == 0


def test_admin_endpoint_imports_csv_and_refuses_without_a_token(session: Session) -> None:
    with client_on(session) as client:
        url = "/v1/admin/catalogue/import"
        headers = {"Content-Type": "text/csv"}
        assert client.post(url, content=CSV, headers=headers).status_code == 401
        staff = client.post(url, content=CSV, headers=headers | bearer("staff"))
        assert staff.status_code == 403
        ok = client.post(url, content=CSV, headers=headers | bearer())
        assert ok.status_code == 200, ok.text
        assert ok.json()["variants_created"] == 2
        bad = client.post(url, content=b"sku\nX\n", headers=headers | bearer())
        assert bad.status_code == 422 and "product_id" in bad.json()["detail"]
        assert client.post(url, content=CSV, headers=bearer()).status_code == 415

"""Store layout import on both backends: the simulator's store.yaml, re-import, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from server.catalogue.service import ImportRejected
from server.models import Antenna, Scanner, Zone
from server.stores.service import import_layout, parse_layout
from tests.server.ingest_web.support import bearer, client_on

STORE_YAML = (Path(__file__).parents[3] / "firmware_sim" / "data" / "store.yaml").read_bytes()


def test_the_simulators_store_imports_and_reimports(session: Session) -> None:
    layout = parse_layout(STORE_YAML)
    report = import_layout(session, layout)
    assert report.created and report.zones == len(layout.zones) and report.removed == 0
    assert len(session.exec(select(Antenna)).all()) == report.antennas > 0
    again = import_layout(session, layout)
    assert not again.created and again.removed == 0
    smaller = layout.model_copy(update={"scanners": layout.scanners[:1]})
    assert import_layout(session, smaller).removed == len(layout.scanners) - 1
    assert len(session.exec(select(Scanner)).all()) == 1
    zone = session.exec(select(Zone).where(Zone.id == "fitting-1")).one()
    assert zone.type.value == "fitting_room"


def test_a_layout_naming_an_unknown_zone_is_rejected_with_the_reason() -> None:
    bad = STORE_YAML.replace(b"zone: floor-women, rack: rack-w1", b"zone: nowhere, rack: rack-w1")
    with pytest.raises(ImportRejected) as caught:
        parse_layout(bad)
    assert "unknown zone nowhere" in caught.value.message
    with pytest.raises(ImportRejected):
        parse_layout(b"store: [unclosed")


def test_admin_endpoint_imports_and_staff_reads(session: Session) -> None:
    with client_on(session) as client:
        response = client.post("/v1/admin/stores/import", content=STORE_YAML, headers=bearer())
        assert response.status_code == 200, response.text
        store = client.get("/v1/stores/demo-rivoli", headers=bearer("staff"))
        assert store.status_code == 200
        assert {z["type"] for z in store.json()["zones"]} >= {"till", "fitting_room"}
        assert client.get("/v1/stores/nope", headers=bearer("staff")).status_code == 404

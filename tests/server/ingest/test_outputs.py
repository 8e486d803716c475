"""What the ingest now records for the outputs: ``guided`` per card (guidance acted upon),
click & collect orders in the staff alert, and every item observation (EPCIS per period)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.analytics.service import guidance
from server.engine import Decision
from server.epcis.service import export_observations
from server.ingest.service import IngestConfig, process_fact
from server.privacy.service import purge
from server.stores.pickups import PickupIn, add_pickup, collect_pickup
from tests.server.ingest.support import Seeded, seed
from vitrine.contracts.events import StaffAlertEvent
from vitrine.contracts.facts import Fact, ItemMoved, ShopperEntered, ShopperZoneChanged
from vitrine.contracts.facts import make_event_id as eid
from vitrine.contracts.ids import Epc, GatewayId, Gtin, StoreId

CONFIG = IngestConfig(footfall_key=b"k")


def _apply(engine: Engine, fact: Fact) -> Decision:
    with Session(engine) as session:
        decision = process_fact(session, fact, CONFIG, fact.occurred_at)
        assert decision is not None
        session.commit()
    return decision


def _base(s: Seeded, n: int, at: datetime) -> dict[str, object]:
    return {
        "event_id": eid(s.store, "outputs", n),
        "store": StoreId(s.store),
        "gateway": GatewayId("gw-1"),
        "occurred_at": at,
    }


def _move(s: Seeded, n: int, at: datetime, epc: str, frm: str, zone: str) -> ItemMoved:
    return ItemMoved(
        **_base(s, n, at), epc=Epc(epc), gtin=Gtin(s.gtin_a_m), from_zone=frm, zone=zone
    )


def test_guidance_delivered_is_counted_and_acted_upon_when_tried(committed_engine: Engine) -> None:
    s = seed(committed_engine)
    t = datetime.now(UTC)
    token = s.token(t)
    _apply(
        committed_engine,
        ShopperEntered(**_base(s, 1, t), device=token, device_kind="app", zone="entrance"),
    )
    _apply(
        committed_engine,
        ShopperZoneChanged(
            **_base(s, 2, t + timedelta(seconds=30)),
            device=token,
            device_kind="app",
            from_zone="entrance",
            zone="fit-1",
        ),
    )
    _apply(
        committed_engine, _move(s, 3, t + timedelta(seconds=40), s.epcs_a_m[0], "women", "fit-1")
    )
    with Session(committed_engine) as session:
        report = guidance(
            session,
            start=t - timedelta(hours=1),
            end=t + timedelta(hours=1),
            store=s.store,
            product=None,
        )
    rows = {r.product_id: (r.delivered, r.acted_upon) for r in report.rows}
    # A (on the floor) was guided and tried on; B (stockroom) was guided, not acted upon.
    assert rows == {s.product_a: (1, 1), s.product_b: (1, 0)}


def test_click_and_collect_orders_are_in_the_staff_alert_until_collected(
    committed_engine: Engine,
) -> None:
    s = seed(committed_engine)
    t = datetime.now(UTC)
    with Session(committed_engine) as session:
        add_pickup(session, s.store, PickupIn(profile_id=s.profile_id, order_id="#1042"), t)
        add_pickup(session, s.store, PickupIn(profile_id=s.profile_id, order_id="#1043"), t)
        collect_pickup(session, s.store, "#1043", t)
    decision = _apply(
        committed_engine,
        ShopperEntered(**_base(s, 1, t), device=s.token(t), device_kind="app", zone="entrance"),
    )
    [alert] = [e for e in decision.events if isinstance(e, StaffAlertEvent)]
    assert alert.click_and_collect == ("#1042",)


def test_epcis_exports_every_observation_of_the_period_and_purge_drops_them(
    committed_engine: Engine,
) -> None:
    s = seed(committed_engine)
    epc = s.epcs_a_m[1]
    t = datetime.now(UTC)
    _apply(committed_engine, _move(s, 1, t, epc, "women", "back"))
    _apply(committed_engine, _move(s, 2, t + timedelta(minutes=1), epc, "back", "women"))
    _apply(committed_engine, _move(s, 3, t + timedelta(minutes=2), epc, "women", "till-1"))
    with Session(committed_engine) as session:
        doc = export_observations(
            session, s.store, t - timedelta(seconds=1), t + timedelta(minutes=5), t
        )
        mine = [e for e in doc["epcisBody"]["eventList"] if e["readPoint"]["id"].count(":zone:")]
        zones = [
            (e["readPoint"]["id"].rsplit(":", 1)[1], e["bizStep"])
            for e in mine
            if e["epcList"] == doc["epcisBody"]["eventList"][-1]["epcList"]
        ]
        assert zones == [
            ("back", "cycle_counting"),
            ("women", "cycle_counting"),
            ("till-1", "retail_selling"),
        ]
        # A period holding only the middle read exports only it.
        middle = export_observations(
            session, s.store, t + timedelta(seconds=30), t + timedelta(seconds=90), t
        )
        assert len(middle["epcisBody"]["eventList"]) == 1
        report = purge(session, timedelta(days=0), t + timedelta(minutes=10))
        assert report.deleted["item_observations"] >= 3

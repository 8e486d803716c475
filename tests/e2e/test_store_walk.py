"""The issue's "Done when": online views meet the live store, end to end.

Real Mosquitto, real PostgreSQL, the real processes (``vitrine server ingest``,
``vitrine gateway run``) as subprocesses (``vitrine.runtime.supervise``), and
the simulator (scenario ``omnichannel-walk``, seed 1) sending what Zebra/Impinj
readers and ESPresense scanners send, 10x faster than real time. Three app
shoppers viewed products online (their web events imported through
``POST /v1/events``'s service first, as the simulator's vendor payloads):

1. every consent: viewed WDX03-GRE-M (on rack-w2) and SBX01-IVO-XL (stockroom only);
2. no ``staff_recognition``;
3. no consent at all.

The app's iBeacon UUID is the scenario's ``app_uuid``, given to the gateway as
``VITRINE_APP_BEACON_UUID`` (how the gateway recognises the app).
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from firmware_sim.engine import Simulation
from firmware_sim.scenario import load_scenario
from firmware_sim.shell import run_simulation
from gateway.pipeline.rules import PipelineRules
from server import migrate
from server.analytics.service import funnel
from server.catalogue.service import import_catalogue, parse_catalogue
from server.db import make_engine
from server.ingest_web.service import ingest as ingest_web_events
from server.models import (
    AliasKind,
    AppInstall,
    Consent,
    ConsentPurpose,
    ProfileAlias,
    ProfileInteraction,
    ShopperProfile,
    StaffAlert,
    StoreVisit,
    Variant,
)
from server.privacy.service import erase_profile
from server.stores.service import import_layout, parse_layout
from tests.support.services import Broker
from vitrine.contracts.app_token import rotating_token, window_of
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

ROOT = Path(__file__).parents[2]
LAYOUT = ROOT / "firmware_sim" / "data" / "store.yaml"
CATALOGUE = ROOT / "firmware_sim" / "data" / "catalogue.json"
SEED = 1
#: 6x real time: the 300 s walk plays in 50 s, slow enough for the gateway's
#: wall-clock rules (3 reports to enter, 3 s before a zone switch, an item's move
#: confirmed over 5 s + 2 s) while the shopper stands 30–60 simulated s at the till.
SPEED = 6.0
DURATION_S = 300
DEADLINE_S = 20.0
A_SKU, B_SKU = "WDX03-GRE-M", "SBX01-IVO-XL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def database(postgres_database: Callable[[], str]) -> str:
    """A database of the walk's own: its processes commit for real."""
    return postgres_database()


class Out:
    """Everything published under the store's ``out`` tree."""

    def __init__(self, broker: Broker, store: str) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"vitrine/v1/{store}/out/#", 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(DEADLINE_S)

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        while True:
            try:
                self.seen.append(self.messages.get_nowait())
            except queue.Empty:
                return self.seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _database_text(engine: Engine) -> str:
    out = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.select(sa.text("*")).select_from(sa.table(name))):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _enrol(engine: Engine, people: list[dict[str, Any]]) -> dict[str, str]:
    """Profiles, app installs (the simulated secrets), consents, web ids: name → profile id."""
    ids: dict[str, str] = {}
    with Session(engine) as s:
        for person in people:
            profile = ShopperProfile(display_name=person["name"], loyalty_tier="gold")
            s.add(profile)
            s.flush()
            s.add(
                AppInstall(
                    profile_id=profile.id, secret=bytes.fromhex(person["install_secret_hex"])
                )
            )
            for purpose in person["consents"]:
                s.add(Consent(profile_id=profile.id, purpose=ConsentPurpose(purpose), granted=True))
            for kind in (AliasKind.WEB_USER_ID, AliasKind.SHOPIFY_CUSTOMER_ID):
                s.add(ProfileAlias(profile_id=profile.id, kind=kind, value=person["customer_id"]))
            ids[person["name"]] = profile.id
        s.commit()
    return ids


def _tokens(secret_hex: str, start: datetime, seconds: float) -> set[str]:
    secret = bytes.fromhex(secret_hex)
    first = window_of(start.timestamp()) - 1
    last = window_of(start.timestamp() + seconds) + 1
    return {f"{rotating_token(secret, w):08x}" for w in range(first, last + 1)}


@pytest.mark.mqtt
def test_a_shopper_who_viewed_online_is_guided_in_store_and_the_journey_is_recorded(
    mosquitto: Broker, database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    migrate.upgrade(database)
    engine = make_engine(database)
    request.addfinalizer(engine.dispose)  # a failed assertion must not leak connections
    start = datetime.now(UTC).replace(microsecond=0)
    scenario = load_scenario("omnichannel-walk").model_copy(
        update={"start": start, "duration_s": DURATION_S}
    )
    store = parse_layout(LAYOUT.read_bytes()).store.id
    with Session(engine) as s:
        import_layout(s, parse_layout(LAYOUT.read_bytes()))
        import_catalogue(s, parse_catalogue(CATALOGUE.read_bytes(), "json"))
        s.commit()
    sim = Simulation(scenario.bundle(), scenario, SEED)
    people = [p for p in sim._truth_people if p["kind"] == "shopper"]
    profiles = _enrol(engine, people)
    everyone, no_staff, nobody = (profiles[p["name"]] for p in people)
    # The online views (the simulator's Segment/GA4/Shopify payloads, sent at t=0).
    with Session(engine) as s:
        for step in Simulation(scenario.bundle(), scenario, SEED).steps():
            if step.t > 0:
                break
            for e in step.emissions:
                if e.kind == "http":
                    report = ingest_web_events(s, e.payload, start)
                    assert report.rejected == 0, report
        s.commit()
        variants = {v.sku: v for v in s.exec(select(Variant)).all()}
    product_a, product_b = variants[A_SKU].product_id, variants[B_SKU].product_id

    env = {
        "VITRINE_DATABASE_URL": database,
        "VITRINE_MQTT_URL": mosquitto.url,
        "VITRINE_SECRET_KEY": "e2e-secret-key-not-for-production",
        "VITRINE_APP_BEACON_UUID": scenario.app_uuid,
        "VITRINE_LOG_LEVEL": "WARNING",
    }
    group = ProcessGroup(tmp_path / "logs", env)
    out = Out(mosquitto, store)
    try:
        ingest_port, gateway_port = _free_port(), _free_port()
        ingest = group.start(
            "ingest",
            vitrine_command("server", "ingest"),
            {
                "VITRINE_OPS_PORT": str(ingest_port),
                "VITRINE_INGEST_CLIENT_ID": f"e2e-{uuid.uuid4().hex[:6]}",
            },
        )
        gateway = group.start(
            "gateway",
            vitrine_command(
                "gateway", "run", "--layout", str(LAYOUT), "--state-dir", str(tmp_path / "gw")
            ),
            {"VITRINE_OPS_PORT": str(gateway_port)},
        )
        group.wait_until(ingest, lambda: _ready(ingest_port))
        group.wait_until(gateway, lambda: _ready(gateway_port))
        run_simulation(sim, speed=SPEED, out=None, truth=None, mqtt_url=mosquitto.url)

        # The walk is over in the store; let the till's last facts land.
        def settled() -> bool:
            with Session(engine) as s:
                return (
                    s.exec(
                        select(ProfileInteraction).where(
                            ProfileInteraction.profile_id == everyone,
                            ProfileInteraction.kind == "bought",
                        )
                    ).first()
                    is not None
                )

        group.wait_until(ingest, settled, timeout_s=DEADLINE_S)

        # The exit: at 6x the phones cross the exit zone in well under the gateway's
        # exit_confirm_s (wall clock), so each visit is closed by the safety net,
        # left_timeout_s of silence after the walk's last report.
        def closed() -> bool:  # every visit: the others' last reports may come later
            with Session(engine) as s:
                visits = s.exec(select(StoreVisit)).all()
                return any(v.profile_id == everyone for v in visits) and all(
                    v.ended_at is not None for v in visits
                )

        group.wait_until(ingest, closed, timeout_s=PipelineRules().shoppers.left_timeout_s + 30)
        seen = out.drain()
    finally:
        out.close()
        codes = group.stop()
    assert codes == {"gateway": 0, "ingest": 0}

    # -- the phone: arrival guidance with A (zone, rack, count in M) and B "only in stockroom".
    arrival = [
        b
        for t, b in seen
        if t.endswith(f"/out/shopper/{everyone}/guidance") and b["moment"] == "arrival"
    ]
    assert arrival, [t for t, _ in seen]
    cards = {c["product_id"]: c for c in arrival[0]["cards"]}
    a, b = cards[product_a], cards[product_b]
    assert (a["status"], a["zone"], a["rack"], a["size"]) == (
        "on_floor",
        "floor-women",
        "rack-w2",
        "M",
    )
    assert a["count"] >= 1
    assert (b["status"], b["size"]) == ("stockroom_only", "XL")
    assert "only in stockroom — ask staff" in arrival[0]["message"]
    received_at = datetime.fromisoformat(arrival[0]["created_at"])
    assert received_at - start < timedelta(seconds=scenario.shoppers[0].arrive_s / SPEED + 10)

    # -- staff: the alert for the shopper with every consent, and the bring-to-floor task.
    alerts = [b for t, b in seen if t.endswith("/out/staff/staff_alert")]
    tasks = [b for t, b in seen if t.endswith("/out/staff/staff_task")]
    with Session(engine) as s:
        visit_of = {v.profile_id: v.id for v in s.exec(select(StoreVisit)).all() if v.profile_id}
        alert_rows = s.exec(select(StaffAlert)).all()
    assert [x["visit_id"] for x in alerts] == [visit_of[everyone]]
    assert {r.profile_id for r in alert_rows} == {everyone}  # none for the other two
    assert any("size XL" in x["text"] and x["visit_id"] == visit_of[everyone] for x in tasks)
    # Without staff_recognition: guidance still reaches the phone, staff get no alert.
    assert any(t.endswith(f"/out/shopper/{no_staff}/guidance") for t, _ in seen)

    # -- the exit: the visit closed on the phone, with what was tried on and bought.
    [closing] = [b for t, b in seen if t.endswith(f"/out/shopper/{everyone}/visit_closed")]
    assert closing["visit_id"] == visit_of[everyone]
    assert closing["tried_on"] >= 1 and closing["bought"] >= 1, closing
    assert 0 < closing["duration_s"] <= DURATION_S, closing

    # -- the journey: tried on in a fitting room, bought at the till, on the timeline and funnel.
    with Session(engine) as s:
        steps = s.exec(
            select(ProfileInteraction)
            .where(ProfileInteraction.profile_id == everyone)
            .order_by(col(ProfileInteraction.occurred_at))
        ).all()
        kinds_a = [str(i.kind) for i in steps if i.product_id == product_a]
        assert "tried_on" in kinds_a and "bought" in kinds_a, [str(i.kind) for i in steps]
        assert kinds_a.index("tried_on") < kinds_a.index("bought")
        assert {str(i.kind) for i in steps} >= {"viewed", "visited", "guided", "located", "left"}
        funnel_report = funnel(
            s,
            start=start - timedelta(days=10),
            end=start + timedelta(hours=1),
            store=store,
            product=product_a,
        )
        [row] = funnel_report.rows
        assert (row.viewed_online, row.visited, row.tried_on, row.bought_in_store) >= (1, 1, 1, 1)

        # -- no consent: footfall only, never a profile's visit, the device nowhere.
        assert nobody not in visit_of
        assert any(v.profile_id is None for v in s.exec(select(StoreVisit)).all())
    text = _database_text(engine)
    silent = next(p for p in people if p["name"] == "no-consent")
    for token in _tokens(silent["install_secret_hex"], start, DURATION_S):
        assert token not in text

    # -- erasure: no row names the shopper.
    with Session(engine) as s:
        erase_profile(s, everyone)
    person = next(p for p in people if p["name"] == "all-consents")
    text = _database_text(engine)
    assert everyone not in text and person["customer_id"] not in text
    engine.dispose()

"""REST routes against a running app: every route only ever reaches the caller's own data."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from server.db import session_factory
from server.models import (
    Item,
    OutboxMessage,
    Product,
    ProductView,
    ShopperProfile,
    StoreVisit,
    Variant,
)
from server.models.journeys import DeviceKind
from tests.mobile_api.conftest import STORE, RunningApp, sign_in, wait_until
from tests.support.services import Broker
from vitrine.contracts.app_token import token_of
from vitrine.contracts.facts import ShopperEntered, parse_fact
from vitrine.contracts.topics import facts_subscription
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

pytestmark = pytest.mark.mqtt


def seed_catalogue(engine: Engine, viewer: str) -> tuple[str, str, str]:
    """A product with a size-M variant, two items on the denim rack, viewed by ``viewer``."""
    with session_factory(engine) as session:
        product = Product(name="Slim jeans", url="https://shop.example/p/slim")
        session.add(product)
        session.flush()
        gtin = f"0{uuid.uuid4().int % 10**13:013d}"
        variant = Variant(product_id=product.id, sku=uuid.uuid4().hex, gtin14=gtin, size="M")
        session.add(variant)
        session.flush()
        epcs = [uuid.uuid4().hex.upper()[:24] for _ in range(2)]
        for epc in epcs:
            session.add(Item(epc=epc, variant_id=variant.id, store_id=STORE, zone_id="denim"))
        session.add(
            ProductView(
                event_id=uuid.uuid4().hex,
                profile_id=viewer,
                product_id=product.id,
                platform="segment",
                viewed_at=datetime.now(UTC),
            )
        )
        session.commit()
        return variant.id, epcs[0], gtin


def open_visit(engine: Engine, profile_id: str, zone: str = "entrance") -> str:
    with session_factory(engine) as session:
        visit = StoreVisit(
            store_id=STORE,
            profile_id=profile_id,
            device_kind=DeviceKind.APP,
            started_at=datetime.now(UTC),
            entry_zone_id=zone,
            last_zone_id=zone,
        )
        session.add(visit)
        session.commit()
        return visit.id


def test_every_route_reaches_only_the_callers_own_data(
    start_app: Callable[..., RunningApp], engine: Engine
) -> None:
    app = start_app()
    alice, bob = sign_in(app.http), sign_in(app.http)
    variant_id, epc, gtin = seed_catalogue(engine, alice.profile_id)
    visit_id = open_visit(engine, alice.profile_id)
    with httpx.Client(base_url=app.http) as http:
        a_hdr, b_hdr = alice.headers, bob.headers
        # No token, a forged token, a refresh token as access: 401 everywhere.
        for headers in (
            {},
            {"Authorization": "Bearer x.y"},
            {"Authorization": f"Bearer {alice.refresh}"},
        ):
            assert http.get("/v1/me", headers=headers).status_code == 401
        assert http.get("/v1/me", headers=a_hdr).json()["id"] == alice.profile_id
        assert http.get("/v1/me", headers=b_hdr).json()["id"] == bob.profile_id

        # Consents: change logged, visible only to the owner.
        assert (
            http.put("/v1/me/consents/guidance", json={"granted": True}, headers=a_hdr).json()[
                "consents"
            ]["guidance"]
            is True
        )
        assert http.get("/v1/me/consents", headers=b_hdr).json()["consents"]["guidance"] is False
        assert (
            http.put("/v1/me/consents/nonsense", json={"granted": True}, headers=a_hdr).status_code
            == 422
        )

        # Visits.
        assert http.get("/v1/me/visit", headers=a_hdr).json()["visit"]["id"] == visit_id
        assert http.get("/v1/me/visit", headers=b_hdr).json() == {"visit": None, "guidance": None}
        assert [v["id"] for v in http.get("/v1/me/visits", headers=a_hdr).json()] == [visit_id]
        assert http.get("/v1/me/visits", headers=b_hdr).json() == []
        assert http.get(f"/v1/me/visits/{visit_id}", headers=a_hdr).status_code == 200
        assert http.get(f"/v1/me/visits/{visit_id}", headers=b_hdr).status_code == 404

        # My viewed items in this store: where, sizes, counts.
        viewed = http.get("/v1/me/viewed-items", params={"store": STORE}, headers=a_hdr).json()
        assert [(v["size"], v["zone_id"], v["count"]) for v in viewed] == [("M", "denim", 2)]
        assert http.get("/v1/me/viewed-items", params={"store": STORE}, headers=b_hdr).json() == []

        # Help requests: announced to staff through the outbox.
        created = http.post(
            "/v1/me/help-requests",
            json={"store": STORE, "text": "bring size M to fitting room 2", "zone": "denim"},
            headers=a_hdr,
        )
        assert created.status_code == 201
        help_id = created.json()["id"]
        assert [h["id"] for h in http.get("/v1/me/help-requests", headers=a_hdr).json()] == [
            help_id
        ]
        assert http.get("/v1/me/help-requests", headers=b_hdr).json() == []
        assert http.get(f"/v1/me/help-requests/{help_id}", headers=b_hdr).status_code == 404
        with session_factory(engine) as session:
            staff = session.exec(
                select(OutboxMessage).where(OutboxMessage.stream == f"staff:{STORE}")
            ).all()
            assert any(b"fitting room 2" in row.payload for row in staff)
            assert not any(alice.profile_id.encode() in row.payload for row in staff)

        # The reverse journey: tag or barcode → product page and availability; save it.
        for params in ({"epc": epc}, {"gtin": gtin}):
            found = http.get("/v1/items/lookup", params=params, headers=a_hdr).json()
            assert found["url"] == "https://shop.example/p/slim"
            assert found["stores"] == {STORE: 2}
        assert http.get("/v1/items/lookup", headers=a_hdr).status_code == 400
        saved = http.post("/v1/me/saved-items", json={"variant_id": variant_id}, headers=a_hdr)
        assert saved.status_code == 201
        saved_id = saved.json()["id"]
        assert http.get("/v1/me/saved-items", headers=b_hdr).json() == []
        assert http.delete(f"/v1/me/saved-items/{saved_id}", headers=b_hdr).status_code == 404
        assert [s["id"] for s in http.get("/v1/me/saved-items", headers=a_hdr).json()] == [saved_id]
        assert http.delete(f"/v1/me/saved-items/{saved_id}", headers=a_hdr).status_code == 204

        # Export: mine only, never the BLE secret.
        export = http.get("/v1/me/export", headers=a_hdr).json()
        assert export["profile"]["id"] == alice.profile_id
        assert [c["purpose"] for c in export["consent_history"]] == ["guidance"]
        assert all("secret" not in i for i in export["installs"])
        assert alice.secret not in str(export)
        assert http.get("/v1/me/export", headers=b_hdr).json()["visits"] == []

        # Login with someone else's install, or a forged identity: refused.
        assert (
            http.post(
                "/v1/auth/login",
                json={
                    "install_id": alice.install_id,
                    "install_secret": bob.secret,
                    "identity": "x.y",
                },
            ).status_code
            == 401
        )

        # Refresh, then erase: the profile and everything under it are gone.
        refreshed = http.post("/v1/auth/refresh", json={"refresh_token": alice.refresh})
        assert refreshed.status_code == 200
        assert http.delete("/v1/me", headers=b_hdr).status_code == 204
        assert [v["id"] for v in http.get("/v1/me/visits", headers=a_hdr).json()] == [visit_id]
        assert http.delete("/v1/me", headers=a_hdr).status_code == 204
        assert http.get("/v1/me", headers=a_hdr).status_code == 404
        assert (
            http.post("/v1/auth/refresh", json={"refresh_token": alice.refresh}).status_code == 401
        )
    with session_factory(engine) as session:
        assert session.get(ShopperProfile, alice.profile_id) is None
        assert session.get(StoreVisit, visit_id) is None


def test_check_in_publishes_the_same_fact_a_scanner_would(
    start_app: Callable[..., RunningApp], mosquitto: Broker, engine: Engine
) -> None:
    app = start_app()
    phone = sign_in(app.http)
    received: list[bytes] = []
    got = threading.Event()
    target = parse_mqtt_url(mosquitto.url)
    client, props = make_client(f"test-facts-{uuid.uuid4().hex[:8]}", target)
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()

    def on_message(c: object, u: object, m: mqtt.MQTTMessage) -> None:
        received.append(bytes(m.payload))
        got.set()

    client.on_message = on_message
    client.connect(target.host, target.port, properties=props)
    client.subscribe(facts_subscription(STORE), qos=1)
    client.loop_start()
    try:
        wait_until(subscribed.is_set, what="subscribed")
        with httpx.Client(base_url=app.http, headers=phone.headers) as http:
            answer = http.post("/v1/me/check-in", json={"store": STORE, "method": "button"})
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"published": "shopper_entered"}
            assert got.wait(10)
            fact = parse_fact(received[0])
            assert isinstance(fact, ShopperEntered)
            assert fact.zone == "entrance" and fact.device_kind == "app"
            secret = base64.b64decode(phone.secret)
            assert fact.device == f"{token_of(secret, time.time()):08x}"
            # A zone that is not in the store, or another store: refused, nothing published.
            assert (
                http.post(
                    "/v1/me/check-in", json={"store": STORE, "method": "qr", "zone": "nowhere"}
                ).status_code
                == 404
            )
            # A sighting with no open visit enters; with one in the same zone, stays quiet.
            open_visit(engine, phone.profile_id, zone="denim")
            quiet = http.post("/v1/me/sightings", json={"store": STORE, "zone": "denim"})
            assert quiet.json() == {"published": None}
            moved = http.post("/v1/me/sightings", json={"store": STORE, "zone": "entrance"})
            assert moved.json() == {"published": "shopper_zone_changed"}
    finally:
        client.disconnect()
        client.loop_stop()

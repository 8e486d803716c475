"""A committed database per backend per module, a seeded store, MQTT helpers.

The ingest and the outbox publisher commit in their own sessions and read
what others committed, so these tests need real commits: a database of their
own (per backend, per test module), each test on its own store id.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from server import migrate
from server.db import make_engine
from server.models import (
    AppInstall,
    Consent,
    ConsentPurpose,
    Item,
    Product,
    ProductView,
    Rack,
    ShopperProfile,
    Variant,
    ZoneType,
)
from tests.support.stores import add_store
from vitrine.contracts.app_token import rotating_token, window_of
from vitrine.contracts.ids import DeviceToken

DEADLINE_S = 10.0


def committed_engine_fixture(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('committed') / 'vitrine.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    base = make_url(request.getfixturevalue("postgres_url"))
    name = f"{base.database}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class Seeded:
    store: str
    profile_id: str
    secret: bytes
    product_a: str
    product_b: str
    variant_a_m: str
    gtin_a_m: str
    epcs_a_m: list[str]

    def token(self, at: datetime) -> DeviceToken:
        return DeviceToken(f"{rotating_token(self.secret, window_of(at.timestamp())):08x}")


GRANTED_ALL = (
    ConsentPurpose.GUIDANCE,
    ConsentPurpose.STAFF_RECOGNITION,
    ConsentPurpose.JOURNEY_PROFILE,
)


def seed(engine: Engine, *, consents: tuple[ConsentPurpose, ...] = GRANTED_ALL) -> Seeded:
    """A store (entrance, floor with rack r3, stockroom, fitting room, till, exit); shirt A
    with 3 in M on rack r3 and 7 in L; coat B with 2 in M in the stockroom only; a
    shopper (known size M) who viewed A in M and B, with ``consents``."""
    tag = uuid.uuid4().hex[:8]
    store = f"store-{tag}"
    now = datetime.now(UTC)
    secret = secrets.token_bytes(32)
    with Session(engine) as s:
        zones = [
            ("entrance", "Entrance", ZoneType.ENTRANCE),
            ("women", "Women", ZoneType.SALES_FLOOR),
            ("back", "Stockroom", ZoneType.STOCKROOM),
            ("fit-1", "Fitting room 1", ZoneType.FITTING_ROOM),
            ("till-1", "Till", ZoneType.TILL),
            ("exit", "Exit", ZoneType.EXIT),
        ]
        add_store(s, store, f"Lyon {tag}", zones)
        s.add(Rack(store_id=store, id="r3", zone_id="women", name="R3", position_x=1, position_y=1))
        a = Product(name="Linen shirt", category="shirts")
        b = Product(name="Wool coat", category="coats")
        s.add_all([a, b])
        s.flush()
        gtin_a_m = f"0950600{int(tag, 16) % 10_000_000:07d}"
        a_m = Variant(
            product_id=a.id, sku=f"A-M-{tag}", gtin14=gtin_a_m, size="M", price=Decimal("49.90")
        )
        a_l = Variant(product_id=a.id, sku=f"A-L-{tag}", size="L")
        b_m = Variant(product_id=b.id, sku=f"B-M-{tag}", size="M")
        s.add_all([a_m, a_l, b_m])
        s.flush()
        epcs = [f"30340{tag.upper()}{i:011X}" for i in range(3)]
        seen = now - timedelta(minutes=2)
        for epc in epcs:
            s.add(
                Item(
                    epc=epc,
                    gtin14=gtin_a_m,
                    variant_id=a_m.id,
                    store_id=store,
                    zone_id="women",
                    rack_id="r3",
                    last_seen_at=seen,
                )
            )
        for i in range(7):
            s.add(
                Item(
                    epc=f"30341{tag.upper()}{i:011X}",
                    variant_id=a_l.id,
                    store_id=store,
                    zone_id="women",
                    rack_id="r3",
                    last_seen_at=seen,
                )
            )
        for i in range(2):
            s.add(
                Item(
                    epc=f"30342{tag.upper()}{i:011X}",
                    variant_id=b_m.id,
                    store_id=store,
                    zone_id="back",
                    last_seen_at=seen,
                )
            )
        profile = ShopperProfile(display_name="Camille", loyalty_tier="gold", known_size="M")
        s.add(profile)
        s.flush()
        for purpose in consents:
            s.add(Consent(profile_id=profile.id, purpose=purpose, granted=True))
        s.add(AppInstall(profile_id=profile.id, secret=secret))
        s.add(
            ProductView(
                event_id=f"view-a-{tag}",
                profile_id=profile.id,
                product_id=a.id,
                variant_id=a_m.id,
                platform="segment",
                viewed_at=now - timedelta(days=2),
            )
        )
        s.add(
            ProductView(
                event_id=f"view-b-{tag}",
                profile_id=profile.id,
                product_id=b.id,
                platform="ga4",
                viewed_at=now - timedelta(days=1),
            )
        )
        s.commit()
        return Seeded(store, profile.id, secret, a.id, b.id, a_m.id, gtin_a_m, epcs)


@dataclass
class Listener:
    """A subscriber collecting every message under a store's ``out`` and ``deadletter`` trees."""

    client: mqtt.Client
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def wait_for(self, predicate: Any, deadline_s: float = DEADLINE_S) -> dict[str, Any]:
        """The first message (topic, JSON) matching ``predicate``; fails after the deadline."""
        for topic, old in self.seen:
            if predicate(topic, old):
                return old
        end = threading.Event()
        timer = threading.Timer(deadline_s, end.set)
        timer.start()
        try:
            while not end.is_set():
                try:
                    topic, payload = self.messages.get(timeout=0.1)
                except queue.Empty:
                    continue
                body: dict[str, Any] = json.loads(payload)
                self.seen.append((topic, body))
                if predicate(topic, body):
                    return body
        finally:
            timer.cancel()
        raise AssertionError(
            f"no matching message within {deadline_s}s; saw {[t for t, _ in self.seen]}"
        )

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        while True:
            try:
                topic, payload = self.messages.get_nowait()
            except queue.Empty:
                return self.seen
            self.seen.append((topic, json.loads(payload)))


@contextmanager
def listen(host: str, port: int, store: str) -> Iterator[Listener]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener = Listener(client)
    subscribed = threading.Event()
    client.on_message = lambda c, u, m: listener.messages.put((m.topic, bytes(m.payload)))
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(
        [(f"vitrine/v1/{store}/out/#", 1), (f"vitrine/v1/{store}/deadletter/#", 1)]
    )
    client.connect(host, port)
    client.loop_start()
    assert subscribed.wait(DEADLINE_S)
    try:
        yield listener
    finally:
        client.disconnect()
        client.loop_stop()


def publish(host: str, port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(DEADLINE_S)
    finally:
        client.disconnect()
        client.loop_stop()


def database_text(engine: Engine) -> str:
    """Every row of every table as text: for "this identifier is nowhere" checks."""
    out = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in inspector.get_table_names():
            table = sa.table(name)
            for row in conn.execute(sa.select(sa.text("*")).select_from(table)):
                out.append(repr(tuple(row)))
    return "\n".join(out)

"""The fact consumer against a real Mosquitto and both databases, end to end.

Facts are published by hand in the gateway's place (the gateway's own pipeline
is tested in its package); what phones and staff screens would receive is read
back from the ``out`` topics.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.ingest.consumer import FactConsumer
from server.ingest.service import CONSUMER, IngestConfig
from server.models import (
    ConsentPurpose,
    Item,
    ItemStatus,
    Offer,
    OfferDelivery,
    ProcessedEvent,
    ProfileInteraction,
    ShopperProfile,
    StaffAlert,
    StaffTask,
    StoreVisit,
)
from server.outbox import OutboxPublisher
from tests.server.ingest.support import (
    DEADLINE_S,
    Seeded,
    database_text,
    listen,
    publish,
    seed,
)
from tests.support.services import Broker
from vitrine.contracts.facts import (
    FactBase,
    ItemMoved,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
    dump_fact,
    make_event_id,
)
from vitrine.contracts.ids import DeviceToken, Epc, GatewayId, Gtin, StoreId
from vitrine.contracts.topics import fact_topic, facts_subscription
from vitrine.runtime.mqtt import MqttTarget

Start = Callable[[str], FactConsumer]


@pytest.fixture
def ingest(committed_engine: Engine, mosquitto: Broker) -> Iterator[Start]:
    """Start a consumer (for one store) and an outbox publisher; stopped after the test."""
    running: list[FactConsumer | OutboxPublisher] = []
    target = MqttTarget(mosquitto.host, mosquitto.port)

    def start(store: str) -> FactConsumer:
        tag = uuid.uuid4().hex[:8]
        publisher = OutboxPublisher(committed_engine, target, client_id=f"test-outbox-{tag}")
        consumer = FactConsumer(
            committed_engine,
            target,
            IngestConfig(footfall_key=b"test-footfall-key"),
            client_id=f"test-ingest-{tag}",
            subscription=facts_subscription(StoreId(store)),
            on_committed=publisher.wake,
        )
        publisher.start()
        consumer.start()
        running.extend([consumer, publisher])
        assert consumer.subscribed.wait(DEADLINE_S)
        return consumer

    yield start
    for thing in running:
        thing.stop()


class Walk:
    """Facts of one shopper's walk, as the gateway would publish them."""

    def __init__(self, broker: Broker, seeded: Seeded) -> None:
        self.broker = broker
        self.s = seeded
        self.t = datetime.now(UTC)
        self.token: DeviceToken = seeded.token(self.t)
        self.n = 0

    def send(self, fact: FactBase) -> bytes:
        payload = dump_fact(fact)
        publish(self.broker.host, self.broker.port, fact_topic(fact.store, fact.kind), payload)  # type: ignore[attr-defined]
        return payload

    def _base(self) -> dict[str, object]:
        self.n += 1
        self.t += timedelta(seconds=30)
        return {
            "event_id": make_event_id(self.s.store, self.token, self.n),
            "store": StoreId(self.s.store),
            "gateway": GatewayId("gw-1"),
            "occurred_at": self.t,
        }

    def entered(self) -> ShopperEntered:
        return ShopperEntered(**self._base(), device=self.token, device_kind="app", zone="entrance")

    def to(self, frm: str, zone: str) -> ShopperZoneChanged:
        return ShopperZoneChanged(
            **self._base(),
            device=self.token,
            device_kind="app",
            from_zone=frm,
            zone=zone,
        )

    def left(self) -> ShopperLeft:
        return ShopperLeft(**self._base(), device=self.token, device_kind="app", last_zone="exit")

    def item(self, epc: str, frm: str, zone: str) -> ItemMoved:
        return ItemMoved(
            **self._base(),
            epc=Epc(epc),
            gtin=Gtin(self.s.gtin_a_m),
            from_zone=frm,
            zone=zone,
        )


def _kind(kind: str) -> Callable[[str, dict[str, object]], bool]:
    return lambda topic, body: body.get("kind") == kind


def test_a_shopper_walk_becomes_guidance_alerts_tasks_and_a_journey(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine)
    walk = Walk(mosquitto, s)
    with listen(mosquitto.host, mosquitto.port, s.store) as out:
        ingest(s.store)
        walk.send(walk.entered())

        guidance = out.wait_for(_kind("guidance"))
        cards = {c["product_id"]: c for c in guidance["cards"]}
        a, b = cards[s.product_a], cards[s.product_b]
        assert (a["status"], a["zone"], a["rack"], a["count"], a["size"]) == (
            "on_floor",
            "women",
            "r3",
            3,
            "M",
        )
        assert a["seen_at"] is not None
        assert (b["status"], b["size"]) == ("stockroom_only", "M")
        assert "Wool coat: only in stockroom — ask staff" in str(guidance["message"])
        assert guidance["seq"] == 1

        alert = out.wait_for(_kind("staff_alert"))
        assert (alert["shopper_label"], alert["tier"]) == ("Camille", "gold")
        task = out.wait_for(_kind("staff_task"))
        assert task["text"] == "Bring size M of Wool coat to the floor"
        topics = {t for t, _ in out.seen}
        assert f"vitrine/v1/{s.store}/out/shopper/{s.profile_id}/guidance" in topics
        assert f"vitrine/v1/{s.store}/out/staff/staff_alert" in topics

        walk.send(walk.to("entrance", "fit-1"))
        walk.send(walk.item(s.epcs_a_m[0], "women", "fit-1"))
        tried = out.wait_for(lambda t, b: b.get("interaction") == "tried_on")
        assert tried["product_id"] == s.product_a

        walk.send(walk.to("fit-1", "till-1"))
        walk.send(walk.item(s.epcs_a_m[0], "fit-1", "till-1"))
        out.wait_for(lambda t, b: b.get("interaction") == "bought")

        walk.send(walk.left())
        closed = out.wait_for(_kind("visit_closed"))
        assert (closed["tried_on"], closed["bought"]) == (1, 1)

    with Session(committed_engine) as db:
        kinds = db.exec(
            select(ProfileInteraction.kind)
            .where(ProfileInteraction.profile_id == s.profile_id)
            .order_by(col(ProfileInteraction.occurred_at))
        ).all()
        # One ``guided`` per arrival card (A on the floor, B in the stockroom).
        assert [str(k) for k in kinds] == [
            "visited",
            "guided",
            "guided",
            "located",  # implied by trying on a product viewed online
            "tried_on",
            "bought",
            "left",
        ]
        item = db.get(Item, s.epcs_a_m[0])
        assert item is not None and item.status == ItemStatus.SOLD
        assert db.exec(select(StaffAlert).where(StaffAlert.store_id == s.store)).all()
        assert db.exec(select(StaffTask).where(StaffTask.store_id == s.store)).all()


def test_the_same_fact_delivered_twice_has_one_effect(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine)
    walk = Walk(mosquitto, s)
    with listen(mosquitto.host, mosquitto.port, s.store) as out:
        consumer = ingest(s.store)
        entered = walk.entered()
        walk.send(entered)
        walk.send(entered)
        walk.send(walk.left())
        out.wait_for(_kind("visit_closed"))
        assert consumer.counts["duplicate"] == 1
        assert len([b for _, b in out.drain() if b.get("kind") == "guidance"]) == 1
    with Session(committed_engine) as db:
        visits = db.exec(select(StoreVisit).where(StoreVisit.store_id == s.store)).all()
        assert len(visits) == 1


def test_a_malformed_fact_is_dead_lettered_and_the_stream_goes_on(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine)
    walk = Walk(mosquitto, s)
    bad = b'{"kind": "shopper_entered", "store": "' + s.store.encode() + b'", "event_id": 7'
    with listen(mosquitto.host, mosquitto.port, s.store) as out:
        ingest(s.store)
        publish(
            mosquitto.host, mosquitto.port, fact_topic(StoreId(s.store), "shopper_entered"), bad
        )
        walk.send(walk.entered())
        letter = out.wait_for(lambda t, b: t.endswith("/deadletter/server"))
        assert str(letter["reason"]).startswith("invalid fact")
        assert base64.b64decode(str(letter["payload_b64"])) == bad
        out.wait_for(_kind("guidance"))


def test_without_staff_recognition_no_staff_alert(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine, consents=(ConsentPurpose.GUIDANCE, ConsentPurpose.JOURNEY_PROFILE))
    walk = Walk(mosquitto, s)
    with listen(mosquitto.host, mosquitto.port, s.store) as out:
        ingest(s.store)
        walk.send(walk.entered())
        out.wait_for(_kind("guidance"))
        walk.send(walk.left())
        out.wait_for(_kind("visit_closed"))
        assert not [b for _, b in out.drain() if b.get("kind") == "staff_alert"]
    with Session(committed_engine) as db:
        assert not db.exec(select(StaffAlert).where(StaffAlert.store_id == s.store)).all()


def test_without_consent_the_device_is_footfall_only_and_never_stored(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine, consents=())
    walk = Walk(mosquitto, s)
    ingest(s.store)
    walk.send(walk.entered())
    walk.send(walk.to("entrance", "women"))
    left = walk.left()
    walk.send(left)
    _wait_processed(committed_engine, left.event_id)
    with Session(committed_engine) as db:
        [visit] = db.exec(select(StoreVisit).where(StoreVisit.store_id == s.store)).all()
        assert visit.profile_id is None and visit.footfall_hash is not None
        assert visit.ended_at is not None and visit.last_zone_id == "exit"
        interactions = db.exec(
            select(ProfileInteraction).where(ProfileInteraction.profile_id == s.profile_id)
        ).all()
        assert interactions == []
    text = database_text(committed_engine)
    assert walk.token not in text
    assert s.store in text  # the dump does cover the visit rows


def _wait_processed(engine: Engine, event_id: str) -> None:
    end = datetime.now(UTC) + timedelta(seconds=DEADLINE_S)
    while datetime.now(UTC) < end:
        with Session(engine) as db:
            if db.get(ProcessedEvent, (CONSUMER, event_id)) is not None:
                return
        threading.Event().wait(0.05)  # poll interval
    raise AssertionError("fact not processed in time")


def test_an_offer_from_the_library_is_pushed_once_and_recorded(
    committed_engine: Engine, mosquitto: Broker, ingest: Start
) -> None:
    s = seed(committed_engine)
    tier = f"vip-{uuid.uuid4().hex[:6]}"  # only this test's shopper is eligible
    with Session(committed_engine) as db:
        profile = db.get(ShopperProfile, s.profile_id)
        assert profile is not None
        profile.loyalty_tier = tier
        offer = Offer(
            title="Welcome back", body="A coffee on us", moments=["arrival", "zone"], tiers=[tier]
        )
        db.add_all([profile, offer])
        db.commit()
        offer_id = offer.id
    walk = Walk(mosquitto, s)
    with listen(mosquitto.host, mosquitto.port, s.store) as out:
        ingest(s.store)
        walk.send(walk.entered())
        pushed = out.wait_for(_kind("offer"))
        assert (pushed["offer_id"], pushed["moment"], pushed["title"]) == (
            offer_id,
            "arrival",
            "Welcome back",
        )
        walk.send(walk.to("entrance", "women"))
        walk.send(walk.left())
        out.wait_for(_kind("visit_closed"))
        assert len([b for _, b in out.drain() if b.get("kind") == "offer"]) == 1
    with Session(committed_engine) as db:
        deliveries = db.exec(select(OfferDelivery).where(OfferDelivery.offer_id == offer_id)).all()
        assert [d.profile_id for d in deliveries] == [s.profile_id]
        db.delete(db.get(Offer, offer_id))
        db.commit()


def test_a_burst_larger_than_the_intake_queue_is_all_processed_once(
    committed_engine: Engine, mosquitto: Broker, ingest: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny queue makes the network thread wait for room (backpressure): the
    # burst must stay in the broker and arrive, never be dropped.
    from server.ingest import consumer as consumer_module

    monkeypatch.setattr(consumer_module, "INTAKE_QUEUE", 3)
    s = seed(committed_engine)
    consumer = ingest(s.store)
    now = datetime.now(UTC)
    burst = [
        ShopperEntered(
            event_id=make_event_id("burst", s.store, i),
            store=StoreId(s.store),
            gateway=GatewayId("gw"),
            occurred_at=now,
            device=DeviceToken(f"{i:016x}"),
            device_kind="anonymous",
            zone="entrance",
        )
        for i in range(120)
    ]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        infos = [
            client.publish(fact_topic(StoreId(s.store), f.kind), dump_fact(f), qos=1) for f in burst
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while sum(consumer.counts.values()) < len(burst):
        assert datetime.now(UTC) < deadline, f"processed {dict(consumer.counts)} of {len(burst)}"
        threading.Event().wait(0.05)
    assert consumer.counts["applied"] == len(burst)
    with Session(committed_engine) as db:
        visits = db.exec(select(StoreVisit).where(StoreVisit.store_id == s.store)).all()
        assert len(visits) == len(burst)

"""A running mobile_api (real uvicorn on a free port) on a real broker and database."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from mobile_api import repository as repo
from mobile_api.app import create_app, uvicorn_config
from mobile_api.settings import MobileApiSettings
from server import migrate
from server.db import make_engine, session_factory
from server.models import Store, ZoneType
from tests.support.phones import register_and_log_in
from tests.support.services import Broker, free_port
from tests.support.stores import add_store
from vitrine.contracts.events import GuidanceEvent
from vitrine.contracts.ids import EventId, StoreId
from vitrine.contracts.topics import shopper_out_topic
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

IDENTITY_SECRET = "test-identity-secret"
ORIGIN = "https://app.example-retailer.test"
STORE = StoreId("paris-01")


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


@pytest.fixture(scope="session")
def mobile_postgres_url(postgres_database: Callable[[], str]) -> str:
    """The app under test commits for real: it gets a database of its own."""
    url = postgres_database()
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("mobile_postgres_url")
        return url
    url = f"sqlite:///{tmp_path}/mobile.db"
    migrate.upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/mobile.db"
    migrate.upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, poolclass=NullPool) if "sqlite" in db_url else make_engine(db_url)
    with session_factory(eng) as session:
        if session.get(Store, STORE) is None:
            zones = [
                ("entrance", "Entrance", ZoneType.ENTRANCE),
                ("denim", "Denim", ZoneType.SALES_FLOOR),
            ]
            add_store(session, STORE, "Paris", zones)
            session.commit()
    yield eng
    eng.dispose()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RunningApp:
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/me/stream"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def make_settings(broker: Broker, db_url: str, **overrides: Any) -> MobileApiSettings:
    values: dict[str, Any] = {
        "mqtt_url": broker.url,
        "database_url": db_url,
        "mobile_identity_secret": IDENTITY_SECRET,
        "mobile_allowed_origins": (ORIGIN,),
        "log_format": "text",
    }
    values.update(overrides)
    return MobileApiSettings(**values)


@pytest.fixture
def start_app(mosquitto: Broker, engine: Engine) -> Iterator[Callable[..., RunningApp]]:
    started: list[RunningApp] = []

    def start(clock: Callable[[], datetime] | None = None, **overrides: Any) -> RunningApp:
        settings = make_settings(
            mosquitto, str(engine.url.render_as_string(hide_password=False)), **overrides
        )
        app = create_app(settings, engine=engine, **({"clock": clock} if clock else {}))
        port = free_port()
        server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, what="uvicorn started")
        wait_until(lambda: app.state.bus.subscribed.is_set(), what="bus subscribed")
        running = RunningApp(app, server, thread, port)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@dataclass
class Phone:
    """A registered, signed-in app install."""

    install_id: str
    secret: str
    profile_id: str
    access: str
    refresh: str
    headers: dict[str, str] = field(default_factory=dict)


def sign_in(http: str, web_user: str | None = None) -> Phone:
    with httpx.Client(base_url=http) as client:
        install, tokens = register_and_log_in(
            client, IDENTITY_SECRET, web_user or f"web-{uuid.uuid4().hex}"
        )
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = client.get("/v1/me", headers=headers).raise_for_status().json()
    return Phone(
        install["install_id"],
        install["secret"],
        me["id"],
        tokens["access_token"],
        tokens["refresh_token"],
        headers,
    )


class Emitter:
    """Plays the server's outbox publisher: commit the outbox row, then publish it."""

    def __init__(self, broker: Broker, engine: Engine) -> None:
        self.engine = engine
        target = parse_mqtt_url(broker.url)
        self.client, props = make_client(f"test-emitter-{uuid.uuid4().hex[:8]}", target)
        self.client.connect(target.host, target.port, properties=props)
        self.client.loop_start()

    def emit(self, shopper: str, n: int, *, publish: bool = True) -> list[int]:
        seqs = []
        for _ in range(n):
            event = GuidanceEvent(
                event_id=EventId(uuid.uuid4().hex),
                store=STORE,
                created_at=datetime.now(UTC),
                shopper=shopper,
                visit_id="v-1",
                moment="arrival",
                message="hello",
            )
            with session_factory(self.engine) as session:
                seq = repo.enqueue(
                    session,
                    repo.shopper_stream(shopper),
                    shopper_out_topic(STORE, shopper, "guidance"),
                    event.model_dump(mode="json"),
                )
                session.commit()
            seqs.append(seq)
            if publish:
                payload = event.model_copy(update={"seq": seq}).model_dump_json()
                info = self.client.publish(
                    shopper_out_topic(STORE, shopper, "guidance"), payload, qos=1
                )
                info.wait_for_publish(5)
        return seqs

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def emitter(mosquitto: Broker, engine: Engine) -> Iterator[Emitter]:
    em = Emitter(mosquitto, engine)
    yield em
    em.close()


__all__ = [
    "ORIGIN",
    "STORE",
    "Emitter",
    "FakeClock",
    "Phone",
    "RunningApp",
    "mqtt",
    "sign_in",
    "wait_until",
]

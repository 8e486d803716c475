"""The simulator registers its app shoppers with the real server over HTTP, as the
retailer's app backend would, and their online views land on the same profiles.

The real server app (SQLite, migrated) is served by uvicorn on a free loopback port.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from firmware_sim.engine import Simulation
from firmware_sim.scenario import load_scenario
from firmware_sim.shell import run_simulation
from firmware_sim.store import SampleFiles
from server import migrate
from server.app import create_app
from server.auth.tokens import Principal, Role, issue_token
from server.catalogue.service import import_catalogue, parse_catalogue
from server.db import make_engine
from server.ingest.repository import resolve_install
from server.models import AppInstall, Consent, ProductView, ProfileAlias
from server.settings import ServerSettings
from tests.support.services import free_port
from vitrine.contracts.app_token import token_of

KEY = "sim-register-test-key"
#: Long enough for a busy shared machine to start uvicorn.
START_S = 20.0


@dataclass
class _Server:
    url: str
    engine: Engine

    def token(self, role: Role) -> str:
        return issue_token(
            KEY.encode(),
            Principal(subject="sim-test", role=role),
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    url = f"sqlite:///{tmp_path / 'vitrine.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        import_catalogue(session, parse_catalogue(SampleFiles().catalogue.read_bytes(), "json"))
    port = free_port()
    app = create_app(ServerSettings(secret_key=KEY, database_url=url), engine=engine)
    http = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=START_S)
    while not http.started:
        assert thread.is_alive() and datetime.now(UTC) < deadline, "server did not start"
        threading.Event().wait(0.05)
    try:
        yield _Server(f"http://127.0.0.1:{port}", engine)
    finally:
        http.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def _run(server_url: str, token: str | None, out: Path, seed: int = 2) -> Simulation:
    sc = load_scenario("demo-saturday").model_copy(
        update={"duration_s": 5.0, "start": datetime.now(UTC).replace(microsecond=0)}
    )
    sim = Simulation(sc.bundle(), sc, seed)
    report = run_simulation(
        sim,
        speed=None,
        out=out,
        truth=None,
        mqtt_url=None,
        server_url=server_url,
        admin_token=token,
    )
    assert report.registered + report.register_failed == len(sim.app_shoppers())
    return sim


def test_app_shoppers_become_known_installs_with_their_views(
    server: _Server, tmp_path: Path
) -> None:
    sim = _run(server.url, server.token("admin"), tmp_path / "out.jsonl")
    shoppers = sim.app_shoppers()
    assert len(shoppers) >= 2  # the scenario's two written shoppers at least
    with Session(server.engine) as session:
        installs = {i.id: i for i in session.exec(select(AppInstall))}
        assert set(installs) == {s.install_id for s in shoppers}
        now = sim.scenario.start
        for shopper in shoppers:
            install = installs[shopper.install_id]
            assert install.secret == shopper.secret
            # What a scanner reports during the visit resolves to this install.
            token = f"{token_of(shopper.secret, now.timestamp() + shopper.arrive_s):08x}"
            resolved = resolve_install(session, token, now + timedelta(seconds=shopper.arrive_s))
            assert resolved is not None and resolved.id == install.id
            user = shopper.keys[0].removeprefix("userId:")
            alias = session.exec(select(ProfileAlias).where(ProfileAlias.value == user)).one()
            assert install.profile_id == alias.profile_id
            granted = {
                c.purpose.value: c.granted
                for c in session.exec(select(Consent).where(Consent.profile_id == alias.profile_id))
            }
            assert granted == dict(shopper.consents)
            # The Segment, GA4 and Shopify views of the shopper all land on that profile.
            views = session.exec(
                select(ProductView).where(ProductView.profile_id == alias.profile_id)
            ).all()
            assert views, shopper.pid
            # Every web id of the shopper (Segment, GA4, Shopify) names that one profile:
            # no orphan profile from a Shopify pixel that carries only a client id.
            values = [k.split(":", 1)[1] for k in shopper.keys]
            owners = session.exec(
                select(ProfileAlias.profile_id).where(ProfileAlias.value.in_(values))  # type: ignore[attr-defined]
            ).all()
            assert set(owners) == {alias.profile_id} and len(owners) == len(values)
        app_profiles = {i.profile_id for i in installs.values()}
        assert len(app_profiles) == len(shoppers)


def test_registration_repeats_are_harmless_and_out_is_unchanged(
    server: _Server, tmp_path: Path
) -> None:
    first, second, offline = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    sc = load_scenario("demo-saturday").model_copy(update={"duration_s": 5.0})
    run_simulation(
        Simulation(sc.bundle(), sc, 2), speed=None, out=offline, truth=None, mqtt_url=None
    )
    for out in (first, second):
        report = run_simulation(
            Simulation(sc.bundle(), sc, 2),
            speed=None,
            out=out,
            truth=None,
            mqtt_url=None,
            server_url=server.url,
            admin_token=server.token("admin"),
        )
        assert report.register_failed == 0 and report.registered > 0
    # Registration is HTTP only: --out is byte-identical with or without a server.
    assert first.read_bytes() == second.read_bytes() == offline.read_bytes()
    with Session(server.engine) as session:
        assert len(session.exec(select(AppInstall)).all()) == report.registered


def test_a_refused_registration_is_counted_and_the_run_goes_on(
    server: _Server, tmp_path: Path
) -> None:
    sc = load_scenario("demo-saturday").model_copy(update={"duration_s": 5.0})
    sim = Simulation(sc.bundle(), sc, 2)
    report = run_simulation(
        sim,
        speed=None,
        out=None,
        truth=None,
        mqtt_url=None,
        server_url=server.url,
        admin_token=server.token("ingest"),  # not an admin: 403
    )
    assert report.registered == 0
    assert report.register_failed == len(sim.app_shoppers())
    assert report.sim_seconds == 5.0
    with Session(server.engine) as session:
        assert session.exec(select(AppInstall)).first() is None

"""HTTP rate and body limits of the server and mobile_api (QUALITY.md, "Security";
docs/security.md, "HTTP limits"), and every process refusing placeholder secrets.

The apps run in process (Starlette's TestClient) on a migrated SQLite file and,
for mobile_api, the session's real Mosquitto. Rates are set to a few per second
so that a window passes within a test: ``limits`` keeps its own clock
(``time.time``), so recovery is awaited by polling with a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from mobile_api.app import create_app as create_mobile_app
from mobile_api.settings import MobileApiSettings
from server import migrate
from server.app import create_app as create_server_app
from server.auth.tokens import Principal, Role, issue_token
from server.db import make_engine, session_factory
from server.models import ZoneType
from server.settings import ServerSettings
from tests.support.phones import register_and_log_in
from tests.support.services import Broker
from tests.support.stores import add_store
from vitrine.runtime.settings import SettingsError

SECRET = "http-limits-test-secret-not-for-production"
IDENTITY_SECRET = "http-limits-identity-secret-not-for-production"
#: Short windows so a test sees the recovery; the defaults are per minute.
FAST = "3/second"
#: Requests a test needs before the limit it is not testing could bite.
ROOMY = "1000/second"
STORE = "paris-01"
#: Longest wait for a window to pass (1 s) on a loaded 2-core machine.
RECOVERY_S = 5.0

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('http-limits') / 'vitrine.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    with session_factory(eng) as session:
        zones = [
            ("entrance", "entrance", ZoneType.ENTRANCE),
            ("denim", "denim", ZoneType.SALES_FLOOR),
        ]
        add_store(session, STORE, "Paris", zones)
        session.commit()
    yield eng
    eng.dispose()


def server_app(db_url: str, engine: Engine, **overrides: Any) -> FastAPI:
    settings = ServerSettings(database_url=db_url, secret_key=SECRET, **overrides)
    return create_server_app(settings, engine=engine)


def server_token(subject: str, role: Role = "admin") -> dict[str, str]:
    token = issue_token(
        SECRET.encode(),
        Principal(subject=subject, role=role),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    return {"Authorization": f"Bearer {token}"}


MobileFactory = Callable[..., TestClient]
#: TestClient's response type (httpx2's, not httpx's).
Response = Any


@pytest.fixture
def mobile(mosquitto: Broker, db_url: str, engine: Engine) -> Iterator[MobileFactory]:
    """Start mobile_api apps (lifespan run: bus on the real broker) with given settings."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        settings = MobileApiSettings(
            mqtt_url=mosquitto.url,
            database_url=db_url,
            mobile_secret_key=SECRET,
            mobile_identity_secret=IDENTITY_SECRET,
            log_format="text",
            **overrides,
        )
        client = TestClient(create_mobile_app(settings, engine=engine))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def sign_in(client: TestClient, web_user: str) -> dict[str, str]:
    _, tokens = register_and_log_in(client, IDENTITY_SECRET, web_user)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def recovers(call: Callable[[], Response], within_s: float = RECOVERY_S) -> float:
    """Seconds until ``call`` stops answering 429 (polled; fails past ``within_s``)."""
    start = time.monotonic()
    while call().status_code == 429:
        if time.monotonic() - start > within_s:
            raise AssertionError(f"still 429 after {within_s} s")
        time.sleep(0.05)
    return time.monotonic() - start


def assert_429(r: Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/json"
    assert "rate limit exceeded" in r.json()["detail"]
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= 1, retry_after  # a 1-second window: never more than 1 s
    return retry_after


# ------------------------------------------------------------------ rate limits: server


def test_server_rate_limit_per_principal_and_class(db_url: str, engine: Engine) -> None:
    app = server_app(
        db_url, engine, http_rate_admin=FAST, http_rate_api=FAST, http_rate_ingest=FAST
    )
    alice, bob = server_token("alice"), server_token("bob")
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/v1/admin/webhooks", headers=alice).status_code == 200
        assert_429(client.get("/v1/admin/webhooks", headers=alice))
        # Another principal, and the same one on another class, are unaffected.
        assert client.get("/v1/admin/webhooks", headers=bob).status_code == 200
        assert client.get("/v1/stores/no-such-store", headers=alice).status_code == 404
        # Ops routes are never limited.
        assert all(client.get("/healthz").status_code == 200 for _ in range(10))
        waited = recovers(lambda: client.get("/v1/admin/webhooks", headers=alice))
        assert waited <= RECOVERY_S


def test_server_ingest_limit_counts_events_posts(db_url: str, engine: Engine) -> None:
    app = server_app(db_url, engine, http_rate_ingest=FAST)
    ingest = server_token("shop-relay", "ingest")
    with TestClient(app) as client:
        codes = [
            client.post("/v1/events", headers=ingest, content=b"[]").status_code for _ in range(4)
        ]
        assert 429 not in codes[:3] and codes[3] == 429, codes


def test_a_forged_token_buys_no_fresh_budget(db_url: str, engine: Engine) -> None:
    """An unverifiable token counts against the client address, whatever it says."""
    app = server_app(db_url, engine, http_rate_api=FAST)
    with TestClient(app) as client:
        codes = [
            client.get(
                "/v1/stores/x", headers={"Authorization": f"Bearer v1.forged{i}.sig"}
            ).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 401, 429], codes
        # A verified principal behind the same address has its own budget.
        assert client.get("/v1/stores/x", headers=server_token("carol")).status_code == 404


# ------------------------------------------------------------------ rate limits: mobile_api


def test_mobile_rate_limit_per_shopper(mobile: MobileFactory) -> None:
    client = mobile(mobile_rate_phone=FAST, mobile_rate_public=ROOMY)
    ann, ben = sign_in(client, "web-rate-ann"), sign_in(client, "web-rate-ben")
    for _ in range(3):
        assert client.get("/v1/me/visits", headers=ann).status_code == 200
    assert_429(client.get("/v1/me/visits", headers=ann))
    assert client.get("/v1/me/visits", headers=ben).status_code == 200
    # No token: counted against the address, apart from the shoppers.
    assert client.get("/v1/me/visits").status_code == 401
    recovers(lambda: client.get("/v1/me/visits", headers=ann))


def test_mobile_public_routes_are_limited_per_address(mobile: MobileFactory) -> None:
    client = mobile(mobile_rate_public=FAST)
    bad = {"install_id": "x", "install_secret": "eA==", "identity": "x.y"}
    codes = [client.post("/v1/auth/login", json=bad).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429], codes
    assert_429(client.post("/v1/installs"))
    assert client.get("/healthz").status_code == 200
    recovers(lambda: client.post("/v1/installs"))


# ------------------------------------------------------------------ body limits


def _body_routes(app: FastAPI, extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """Every POST/PUT/PATCH of the app's OpenAPI (ids filled in), plus ``extra``."""
    routes = [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("post", "put", "patch")
    ]
    return routes + list(extra)


def _chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes in 64 KiB chunks, sent without Content-Length (chunked)."""
    while size > 0:
        yield b" " * min(size, 64 * 1024)
        size -= 64 * 1024


SERVER_BULK = {
    "/v1/events": 1024 * 1024,
    "/v1/admin/stores/import": 2 * 1024 * 1024,
    "/v1/admin/catalogue/import": 32 * 1024 * 1024,
    "/v1/admin/catalogue/stock": 32 * 1024 * 1024,
}


def test_server_every_body_route_refuses_an_oversized_body(db_url: str, engine: Engine) -> None:
    app = server_app(db_url, engine, http_rate_admin=ROOMY, http_rate_api=ROOMY)
    admin = {**server_token("body-sweep"), "content-type": "application/json"}
    routes = _body_routes(app)
    assert len(routes) >= 12 and all(p in {r[1] for r in routes} for p in SERVER_BULK)
    with TestClient(app) as client:
        for method, path in routes:
            limit = SERVER_BULK.get(path, 64 * 1024)
            r = client.request(method, path, headers=admin, content=b" " * (limit + 1))
            assert r.status_code == 413, (method, path, r.status_code)
            assert r.json() == {"detail": f"body larger than {limit} bytes"}
            assert client.get("/healthz").status_code == 200
        # Without Content-Length the body is counted as it arrives: same answer.
        for path, limit in SERVER_BULK.items():
            r = client.post(path, headers=admin, content=_chunks(limit + 1))
            assert r.status_code == 413, (path, r.status_code)
            assert r.json() == {"detail": f"body larger than {limit} bytes"}
        r = client.post("/v1/admin/offers", headers=admin, content=_chunks(64 * 1024 + 1))
        assert r.status_code == 413
        # And the app still works after all of that.
        assert client.get("/v1/admin/offers", headers=admin).status_code == 200


def test_mobile_every_body_route_refuses_an_oversized_body(mobile: MobileFactory) -> None:
    client = mobile(mobile_rate_public=ROOMY, mobile_rate_phone=ROOMY)
    me = {**sign_in(client, "web-body-sweep"), "content-type": "application/json"}
    app = cast(FastAPI, client.app)
    routes = _body_routes(app, extra=(("POST", "/phone/demo/identity"),))
    assert len(routes) >= 8
    limit = 16 * 1024
    for method, path in routes:
        r = client.request(method, path, headers=me, content=b" " * (limit + 1))
        assert r.status_code == 413, (method, path, r.status_code)
        assert r.json() == {"detail": f"body larger than {limit} bytes"}
        r = client.request(method, path, headers=me, content=_chunks(limit + 1))
        if path != "/v1/installs":  # reads no body: a chunked one is never buffered
            assert r.status_code == 413, ("chunked", method, path, r.status_code)
        assert client.get("/v1/me/visits", headers=me).status_code == 200
    # A body exactly at the limit is not refused for its size.
    padded = b'{"store": "paris-01", "text": "my size?"}'.ljust(limit)
    r = client.post("/v1/me/help-requests", headers=me, content=padded)
    assert r.status_code != 413, r.status_code


# ------------------------------------------------------------------ placeholder secrets
#
# Each process's entry point (what its ``vitrine … run`` command calls), in
# process: a subprocess per case costs 10-20 s of imports on the shared machine.


def _production(tmp_path: Path) -> dict[str, Any]:
    return {
        "mode": "production",
        "database_url": f"sqlite:///{tmp_path / 'never.db'}",
        "mqtt_url": "mqtt://127.0.0.1:1",
    }


def test_server_refuses_placeholder_secret(tmp_path: Path) -> None:
    from server.app import serve

    with pytest.raises(SettingsError, match="placeholder secrets: secret_key"):
        serve(ServerSettings(**_production(tmp_path), http_port=1))
    assert not (tmp_path / "never.db").exists()


def test_ingest_refuses_placeholder_secret(tmp_path: Path) -> None:
    from server.ingest.runner import run
    from server.ingest.settings import IngestSettings

    settings = IngestSettings(**_production(tmp_path), secret_key="changeme")
    with pytest.raises(SettingsError, match="placeholder secrets: secret_key"):
        run(settings, threading.Event())
    assert not (tmp_path / "never.db").exists()


def test_mobile_api_refuses_placeholder_secrets(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="mobile_secret_key, mobile_identity_secret"):
        create_mobile_app(MobileApiSettings(**_production(tmp_path)))
    with pytest.raises(SettingsError, match=r"placeholder secrets: mobile_identity_secret$"):
        create_mobile_app(
            MobileApiSettings(**_production(tmp_path), mobile_secret_key="from-the-vault-1")
        )
    create_mobile_app(
        MobileApiSettings(
            **_production(tmp_path),
            mobile_secret_key="from-the-vault-1",
            mobile_identity_secret="from-the-vault-2",
        )
    )


def test_gateway_refuses_placeholder_server_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.service import main
    from gateway.settings import GatewaySettings

    # main() configures the process's logging; keep pytest's capture in place.
    monkeypatch.setattr("vitrine.runtime.logs.configure_logging", lambda *a, **k: None)
    settings = GatewaySettings(
        mode="production",
        mqtt_url="mqtt://127.0.0.1:1",
        layout_url="http://127.0.0.1:1/v1/stores/s/layout",
        gateway_server_token="change-me",
    )
    with caplog.at_level(logging.ERROR, logger="gateway.service"):
        assert main(settings) == 2
    errors = [str(getattr(r, "error", "")) for r in caplog.records]
    assert any("placeholder secrets: gateway_server_token" in e for e in errors), errors

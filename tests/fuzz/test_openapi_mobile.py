"""schemathesis against mobile_api's OpenAPI, with a signed-in shopper's token.

The app runs in this process under a real uvicorn (on a free port, like
``tests/mobile_api``), on a migrated SQLite file with one store and the
session's real Mosquitto (check-in and sightings publish facts). Every
operation gets up to ``MAX_EXAMPLES`` generated requests (hypothesis,
derandomized so a run is repeatable); none may answer 5xx. ``DELETE /v1/me``
(erasure: its only input is the token) is left out of the generated run, which
it would end for everyone after it, and checked on its own last.

Without a token every route answers 401/403, except the ops routes, the docs and
the three routes that issue tokens (``/v1/installs``, ``/v1/auth/login``,
``/v1/auth/refresh``), which refuse a wrong proof with 401 instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from mobile_api.app import create_app, uvicorn_config
from mobile_api.settings import MobileApiSettings
from mobile_api.tokens import TokenSigner
from server import migrate
from server.db import make_engine, session_factory
from server.models import ZoneType
from tests.support.services import Broker, free_port
from tests.support.stores import add_store

#: Per operation: enough to try each parameter's shape, small enough for CI.
MAX_EXAMPLES = 20
SECRET = "mobile-openapi-fuzz-secret-not-for-production"
IDENTITY_SECRET = "mobile-openapi-fuzz-identity-not-for-production"
OPEN = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")
ISSUES_TOKENS = ("/v1/installs", "/v1/auth/login", "/v1/auth/refresh")
#: One shopper floods every operation: rate limits are tested elsewhere
#: (tests/security/test_http_limits.py) and set far above the run here.
UNLIMITED = "1000000/minute"


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _seed(url: str) -> None:
    engine = make_engine(url)
    with session_factory(engine) as session:
        zones = [
            ("entrance", "entrance", ZoneType.ENTRANCE),
            ("denim", "denim", ZoneType.SALES_FLOOR),
        ]
        add_store(session, "paris-01", "Paris", zones)
        session.commit()
    engine.dispose()


@pytest.fixture(scope="module")
def base_url(mosquitto: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('mobile-openapi') / 'vitrine.db'}"
    migrate.upgrade(url)
    _seed(url)
    app_settings = MobileApiSettings(
        mqtt_url=mosquitto.url,
        database_url=url,
        mobile_secret_key=SECRET,
        mobile_identity_secret=IDENTITY_SECRET,
        mobile_rate_public=UNLIMITED,
        mobile_rate_phone=UNLIMITED,
        log_format="text",
    )
    app = create_app(app_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, app_settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started, "uvicorn started")
    _wait(lambda: app.state.bus.subscribed.is_set(), "bus subscribed")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sign_in(base_url: str, web_user: str) -> dict[str, str]:
    with httpx.Client(base_url=base_url) as client:
        install = client.post("/v1/installs").raise_for_status().json()
        identity = TokenSigner(IDENTITY_SECRET.encode(), time.time).issue("identity", web_user, 300)
        body = {
            "install_id": install["install_id"],
            "install_secret": install["secret"],
            "identity": identity,
        }
        tokens = client.post("/v1/auth/login", json=body).raise_for_status().json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture(scope="module")
def shopper(base_url: str) -> dict[str, str]:
    return sign_in(base_url, "web-openapi-fuzz")


# The operations come from the app's own OpenAPI (no I/O to build it); the
# requests go to the running app. (``schemathesis.pytest.from_fixture`` would
# load it from the server, but schemathesis 4.32 fails under pytest 9.2 there:
# ``'Function' object has no attribute '_nodeid'``.)
_SPEC = create_app(
    MobileApiSettings(mobile_secret_key=SECRET, mobile_identity_secret=IDENTITY_SECRET)
).openapi()
schema = schemathesis.openapi.from_dict(_SPEC).exclude(method="DELETE", path="/v1/me")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx(case: Any, base_url: str, shopper: dict[str, str]) -> None:
    response = case.call(base_url=base_url, headers=shopper)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])


def test_every_route_needs_a_token(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        spec = client.get("/openapi.json").json()
        checked = 0
        for path, ops in spec["paths"].items():
            if path.startswith(OPEN) or path in ISSUES_TOKENS:
                continue
            for method in ops:
                concrete = path.replace("{", "").replace("}", "")
                r = client.request(method.upper(), concrete)
                assert r.status_code in (401, 403), (method, path, r.status_code)
                checked += 1
        assert checked >= 15, checked
        # The token-issuing routes refuse a wrong proof.
        bad_login = {"install_id": "x", "install_secret": "eA==", "identity": "x.y"}
        assert client.post("/v1/auth/login", json=bad_login).status_code == 401
        assert client.post("/v1/auth/refresh", json={"refresh_token": "x.y"}).status_code == 401
        assert {p for p in spec["paths"] if p in ISSUES_TOKENS} == set(ISSUES_TOKENS)


def test_erasing_me_twice_is_not_a_5xx(base_url: str) -> None:
    me = sign_in(base_url, "web-openapi-erase")
    with httpx.Client(base_url=base_url, headers=me) as client:
        assert client.delete("/v1/me").status_code == 204
        again = client.delete("/v1/me")
        assert again.status_code in (401, 404), again.status_code
        assert client.get("/v1/me").status_code in (401, 404)

"""schemathesis against the server's OpenAPI, in process (ASGI), with an admin token.

Every operation gets up to ``MAX_EXAMPLES`` generated requests (hypothesis,
bounded so the suite stays fast); none may answer 5xx. Without a token, every
route but health, metrics and the docs must answer 401/403.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from server import migrate
from server.app import create_app
from server.auth.tokens import Principal, issue_token
from server.db import make_engine
from server.settings import ServerSettings

#: Per operation: enough to try each parameter's shape, small enough for CI.
MAX_EXAMPLES = 20
SECRET = "openapi-fuzz-secret-key-not-for-production"
OPEN = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc")


def _app(tmp: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp / 'vitrine.db'}"
    migrate.upgrade(url)
    # One admin floods every operation: rate limits are out of scope here
    # (tests/security/test_http_limits.py), so they are set far above the run.
    unlimited = "1000000/minute"
    settings = ServerSettings(
        database_url=url,
        secret_key=SECRET,
        http_rate_admin=unlimited,
        http_rate_api=unlimited,
        http_rate_ingest=unlimited,
    )
    return create_app(settings, engine=make_engine(url))


_TMP = Path(__import__("tempfile").mkdtemp(prefix="vitrine-openapi-"))
APP = _app(_TMP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
TOKEN = issue_token(
    SECRET.encode(),
    Principal(subject="fuzz", role="admin", store=None),
    expires_at=datetime.now(UTC) + timedelta(hours=1),
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:300])


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(APP) as c:
        yield c


def test_every_route_but_health_needs_a_token(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        if path.startswith(OPEN):
            continue
        for method in ops:
            concrete = path.replace("{", "").replace("}", "")
            r = client.request(method.upper(), concrete)
            assert r.status_code in (401, 403), (method, path, r.status_code)
            checked += 1
    assert checked > 10


def test_an_offer_with_a_65_bit_integer_is_refused_not_a_500(client: TestClient) -> None:
    r = client.post(
        "/v1/admin/offers",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"title": "0", "body": "0", "moments": ["exit"], "max_per_profile": 2**63},
    )
    assert r.status_code == 422, r.status_code

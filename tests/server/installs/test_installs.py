"""``POST /v1/admin/installs`` on SQLite and PostgreSQL: auth, validation, idempotent upsert,
consent history, and the install resolving a rotating token to its profile."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from server.ingest.repository import resolve_install
from server.models import AppInstall, ConsentEvent, ProfileAlias
from tests.server.ingest_web.support import bearer, client_on
from vitrine.contracts.app_token import token_of

URL = "/v1/admin/installs"


def _secret(label: str) -> str:
    # Derived, not written out: no secret-looking literal in the fixtures.
    return hashlib.sha256(f"test-install:{label}".encode()).hexdigest()


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "install_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "test-install-a")),
        "secret": _secret("a"),
        "keys": ["userId:test-user-a", "anonymousId:test-anon-a"],
        "consents": {"guidance": True, "staff_recognition": True, "journey_profile": False},
    }
    body.update(changes)
    return body


def test_only_an_admin_token_may_register(session: Session) -> None:
    with client_on(session) as client:
        assert client.post(URL, json=_body()).status_code == 401
        assert (
            client.post(URL, json=_body(), headers={"Authorization": "Bearer x"}).status_code == 401
        )
        for role in ("staff", "ingest"):
            assert client.post(URL, json=_body(), headers=bearer(role)).status_code == 403
    assert session.exec(select(AppInstall)).first() is None


@pytest.mark.parametrize(
    "changes",
    [
        {"install_id": "not-a-uuid"},
        {"secret": "zz" * 16},
        {"secret": "ab" * 15},  # 15 bytes: too short a key
        {"secret": "ab" * 65},  # longer than the column
        {"keys": []},
        {"keys": ["anonymousId:only-a-browser"]},  # no signed-in shopper
        {"keys": ["userId:u", "nonsense"]},
        {"keys": ["pager:123", "userId:u"]},
        {"keys": ["userId:a\u0000b"]},  # PostgreSQL text holds no NUL: 422, not a 500
        {"consents": {"marketing": True}},
        {"unknown": 1},
    ],
)
def test_invalid_registrations_are_422(session: Session, changes: dict[str, Any]) -> None:
    with client_on(session) as client:
        response = client.post(URL, json=_body(**changes), headers=bearer())
    assert response.status_code == 422, response.text
    assert _secret("a") not in response.text


def test_register_is_an_idempotent_upsert_with_consent_history(session: Session) -> None:
    with client_on(session) as client:
        first = client.post(URL, json=_body(), headers=bearer())
        assert first.status_code == 201, first.text
        doc = first.json()
        assert doc["created"] is True and doc["consent_changes"] == 3
        assert doc["consents"] == {
            "guidance": True,
            "staff_recognition": True,
            "journey_profile": False,
        }
        assert "secret" not in doc and _secret("a") not in first.text
        profile_id = doc["profile_id"]

        again = client.post(URL, json=_body(), headers=bearer())
        assert again.status_code == 200
        assert again.json() == {**doc, "created": False, "consent_changes": 0}

        changed = client.post(
            URL, json=_body(consents={"staff_recognition": False}), headers=bearer()
        )
        assert changed.status_code == 200
        assert changed.json()["consents"]["staff_recognition"] is False
        assert changed.json()["consents"]["guidance"] is True  # left out: unchanged
        assert changed.json()["consent_changes"] == 1

        other_secret = client.post(URL, json=_body(secret=_secret("b")), headers=bearer())
        assert other_secret.status_code == 409

        history = client.get(f"/v1/profiles/{profile_id}/consents", headers=bearer())
    entries = [
        (e["purpose"], e["granted"], e["source"], e["actor"]) for e in history.json()["history"]
    ]
    assert sorted(entries) == sorted(
        [
            ("guidance", True, "app", "shopper"),
            ("staff_recognition", True, "app", "shopper"),
            ("journey_profile", False, "app", "shopper"),
            ("staff_recognition", False, "app", "shopper"),
        ]
    )
    assert len(session.exec(select(ConsentEvent)).all()) == 4
    installs = session.exec(select(AppInstall)).all()
    assert [(i.id, i.profile_id) for i in installs] == [(_body()["install_id"], profile_id)]
    aliases = {(a.kind.value, a.value) for a in session.exec(select(ProfileAlias))}
    assert aliases == {("web_user_id", "test-user-a"), ("anonymous_id", "test-anon-a")}


def test_the_install_joins_the_profile_its_web_views_made(session: Session) -> None:
    """Views posted first (Segment userId) and the install later land on one profile."""
    with client_on(session) as client:
        view = {
            "type": "track",
            "event": "Product Viewed",
            "userId": "test-user-c",
            "messageId": "test-view-c",
            "timestamp": "2025-01-01T10:00:00Z",
            "properties": {"sku": "unknown-sku"},
        }
        posted = client.post("/v1/events", json=view, headers=bearer("ingest"))
        assert posted.status_code < 300, posted.text
        body = _body(
            install_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "test-install-c")),
            secret=_secret("c"),
            keys=["userId:test-user-c", "shopify_client_id:test-shop-c"],
        )
        registered = client.post(URL, json=body, headers=bearer())
        assert registered.status_code == 201
    alias = session.exec(select(ProfileAlias).where(ProfileAlias.value == "test-user-c")).one()
    assert registered.json()["profile_id"] == alias.profile_id
    # The gateway's shopper_entered carries the rotating token: it resolves to this install.
    now = datetime.now(UTC)
    token = f"{token_of(bytes.fromhex(_secret('c')), now.timestamp()):08x}"
    install = resolve_install(session, token, now)
    assert install is not None and install.profile_id == alias.profile_id


def test_another_shopper_signing_in_takes_the_install(session: Session) -> None:
    with client_on(session) as client:
        a = client.post(URL, json=_body(), headers=bearer()).json()
        b = client.post(URL, json=_body(keys=["userId:test-user-b"]), headers=bearer()).json()
    assert b["profile_id"] != a["profile_id"] and b["created"] is False
    install = session.get(AppInstall, _body()["install_id"])
    assert install is not None and install.profile_id == b["profile_id"]

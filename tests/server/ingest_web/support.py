"""Helpers for HTTP tests of the server's features: an app on the test's session, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from server.app import create_app
from server.auth.tokens import Principal, Role, issue_token
from server.db import get_session
from server.settings import ServerSettings

__all__ = ["SECRET", "bearer", "client_on"]

SECRET = "test-secret-key-for-tokens"


def bearer(role: Role = "admin", subject: str = "ops-1") -> dict[str, str]:
    token = issue_token(
        SECRET.encode(),
        Principal(subject=subject, role=role),
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def client_on(session: Session) -> Iterator[TestClient]:
    """A TestClient whose requests all use ``session`` (rolled back after the test)."""
    app = create_app(ServerSettings(secret_key=SECRET))

    def _session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = _session
    client = TestClient(app)
    try:
        yield client
    finally:
        client.close()

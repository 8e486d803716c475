"""Sign a phone in the way the app does: register an install, log in with an identity."""

from __future__ import annotations

import time
from typing import Any, Protocol

from mobile_api.tokens import TokenSigner


class _Client(Protocol):
    """An httpx client or starlette's TestClient (which no longer subclasses it)."""

    def post(self, url: str, *, json: Any = None) -> Any: ...


def register_and_log_in(
    client: _Client, identity_secret: str, web_user: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``POST /v1/installs`` then ``/v1/auth/login``: (install, tokens) as mobile_api answers."""
    install: dict[str, Any] = client.post("/v1/installs").raise_for_status().json()
    identity = TokenSigner(identity_secret.encode(), time.time).issue("identity", web_user, 300)
    tokens: dict[str, Any] = (
        client.post(
            "/v1/auth/login",
            json={
                "install_id": install["install_id"],
                "install_secret": install["secret"],
                "identity": identity,
            },
        )
        .raise_for_status()
        .json()
    )
    return install, tokens

"""Bearer tokens: a forged, tampered or expired token is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.auth.tokens import Principal, TokenError, issue_token, verify_token

KEY = b"test-key"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_token_round_trips_and_refuses_tampering_and_expiry() -> None:
    token = issue_token(
        KEY, Principal("ops-1", "staff", "demo-rivoli"), expires_at=NOW + timedelta(hours=1)
    )
    assert verify_token(KEY, token, now=NOW) == Principal("ops-1", "staff", "demo-rivoli")
    head, _payload, signature = token.split(".")
    forged = issue_token(b"other", Principal("ops-1", "admin"), expires_at=NOW + timedelta(hours=1))
    for bad in (f"{head}.{forged.split('.')[1]}.{signature}", forged, "v1.x", ""):
        with pytest.raises(TokenError):
            verify_token(KEY, bad, now=NOW)
    with pytest.raises(TokenError, match="expired"):
        verify_token(KEY, token, now=NOW + timedelta(hours=2))

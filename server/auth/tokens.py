"""A small signed bearer token: ``v1.<payload>.<signature>`` (base64url, no padding).

``payload`` is the JSON ``{"sub": ..., "role": ..., "exp": <unix seconds>}``
(plus ``"store"`` for staff scoped to one store); ``signature`` is
HMAC-SHA256 (RFC 2104) of ``"v1." + payload`` under the server's ``secret_key``.
Pure: the caller passes the key and the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

__all__ = ["ROLES", "Principal", "Role", "TokenError", "issue_token", "verify_token"]

#: ``gateway``: a store's gateway process; reads its own store's layout only
#: (the token names the store), so a gateway host never holds an admin token.
Role = Literal["admin", "staff", "ingest", "gateway"]
ROLES: tuple[Role, ...] = get_args(Role)
_VERSION = "v1"


class TokenError(ValueError):
    """The token is malformed, forged or expired (the reason never echoes the token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a staff or admin user id (never a shopper), their role, their store."""

    subject: str
    role: Role
    store: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, message: str) -> str:
    return _b64(hmac.new(key, message.encode("ascii"), hashlib.sha256).digest())


def issue_token(key: bytes, principal: Principal, *, expires_at: datetime) -> str:
    claims: dict[str, object] = {
        "sub": principal.subject,
        "role": principal.role,
        "exp": int(expires_at.timestamp()),
    }
    if principal.store is not None:
        claims["store"] = principal.store
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_VERSION}.{payload}"
    return f"{signed}.{_sign(key, signed)}"


def verify_token(key: bytes, token: str, *, now: datetime) -> Principal:
    """The principal ``token`` names, if its signature is ours and it has not expired."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise TokenError("malformed token")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, signed), parts[2]):
        raise TokenError("bad signature")
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError as error:
        raise TokenError("malformed payload") from error
    if not isinstance(claims, dict):
        raise TokenError("malformed payload")
    subject, role, exp, store = (claims.get(k) for k in ("sub", "role", "exp", "store"))
    if not isinstance(subject, str) or role not in ROLES or not isinstance(exp, int):
        raise TokenError("malformed claims")
    if store is not None and not isinstance(store, str):
        raise TokenError("malformed claims")
    if exp <= now.timestamp():
        raise TokenError("expired token")
    return Principal(subject=subject, role=role, store=store)

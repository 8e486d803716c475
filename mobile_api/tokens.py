"""Short-lived signed tokens: access (minutes), refresh (days), and login assertions.

A token is ``base64url(JSON claims) "." base64url(HMAC-SHA256(key, claims))``
— the HS256 idea of JWT (RFC 7519) without its header and algorithm choice, so
there is no ``alg=none`` to get wrong. Claims: ``typ`` (``access``,
``refresh`` or ``identity``), ``sub`` (profile id), ``ins`` (install id),
``exp`` (epoch seconds). The clock is injected; verification is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Claims", "TokenError", "TokenSigner", "TokenType"]

TokenType = Literal["access", "refresh", "identity"]


class TokenError(ValueError):
    """A token that is malformed, forged, expired or of the wrong type."""


@dataclass(frozen=True, slots=True)
class Claims:
    typ: TokenType
    sub: str
    exp: int
    ins: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenSigner:
    key: bytes
    clock: Callable[[], float]

    def issue(self, typ: TokenType, sub: str, ttl_s: int, ins: str | None = None) -> str:
        claims = {"typ": typ, "sub": sub, "exp": int(self.clock()) + ttl_s}
        if ins is not None:
            claims["ins"] = ins
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, typ: TokenType) -> Claims:
        body, _, mac = token.partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("invalid token")
        try:
            raw = json.loads(_unb64(body))
            claims = Claims(
                typ=raw["typ"], sub=str(raw["sub"]), exp=int(raw["exp"]), ins=raw.get("ins")
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("invalid token") from exc
        if claims.typ != typ:
            raise TokenError(f"not an {typ} token")
        if claims.exp <= self.clock():
            raise TokenError("token expired")
        return claims

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>`` (docs/server-api.md).

The scheme is Stripe's (``t.payload`` signed, timestamp in the signed bytes so a
captured request cannot be replayed later with a fresh timestamp) and
Standard Webhooks' header trio, with our names:

- ``Vitrine-Event-Id``: the interaction's ``event_id`` (the receiver's idempotency key);
- ``Vitrine-Timestamp``: Unix seconds at the attempt;
- ``Vitrine-Signature``: ``v1=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>``.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_VERSION", "TOLERANCE_S", "sign", "verify"]

SIGNATURE_VERSION = "v1"
#: How old a timestamp a receiver should accept: Stripe's default of 5 minutes
#: covers clock skew and a slow network, not a replay hours later.
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Vitrine-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)

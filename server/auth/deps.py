"""FastAPI dependencies: ``Authorization: Bearer <token>`` → :class:`Principal`.

Tokens never travel in query strings (QUALITY.md, "Security": they end up in
access logs). ``admin`` may do everything; ``staff`` reads (scoped to their
store once the security issue lands); ``ingest`` may only post online events;
``gateway`` may only read the layout of the store its token names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth.tokens import Principal, Role, TokenError, verify_token
from server.errors import Forbidden, Unauthorized
from server.settings import ServerSettings

__all__ = ["AdminDep", "GatewayDep", "IngestDep", "StaffDep", "require_roles"]

_bearer = HTTPBearer(auto_error=False, description="A token from `vitrine auth token`.")


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting a valid token whose role is one of ``roles`` (or admin)."""
    allowed = {*roles, "admin"}

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("a bearer token is required")
        settings: ServerSettings = request.app.state.settings
        key = settings.secret_key.get_secret_value().encode()
        try:
            principal = verify_token(key, credentials.credentials, now=datetime.now(UTC))
        except TokenError as error:
            raise Unauthorized(f"invalid token: {error}") from error
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role} may not do this")
        return principal

    return dependency


AdminDep = Annotated[Principal, Depends(require_roles("admin"))]
StaffDep = Annotated[Principal, Depends(require_roles("staff"))]
IngestDep = Annotated[Principal, Depends(require_roles("ingest"))]
GatewayDep = Annotated[Principal, Depends(require_roles("gateway"))]

"""``POST /v1/admin/installs``: the integration point of a retailer's own app backend."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from server.auth.deps import AdminDep
from server.db import SessionDep
from server.installs import service
from server.installs.schemas import InstallRegistered, InstallRegistration

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["installs"])


@router.post(
    "/installs",
    summary="Register or update a companion-app install, its shopper and their consents",
    responses={201: {"model": InstallRegistered}, 409: {"description": "another secret"}},
)
def register_install(
    body: InstallRegistration, session: SessionDep, admin: AdminDep, response: Response
) -> InstallRegistered:
    result = service.register_install(session, body, now=datetime.now(UTC))
    response.status_code = 201 if result.created else 200
    return result

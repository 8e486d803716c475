"""Routes of the shopper companion page.

- ``GET /phone``: the page; ``GET /phone/assets/{name}``: its CSS and ES modules
  (a fixed set of files: no request path ever reaches the filesystem).
- ``POST /phone/demo/identity {"web_user_id"}`` → ``{"identity"}``: in
  ``MODE=local`` only, the identity assertion the online store's sign-in would
  issue (``docs/mobile-api.md``, "Sign-in"), so the demo can sign a phone in
  without a web shop. Outside local mode it answers 404, like a route that does
  not exist: production sign-in is the shop's, never ours.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from mobile_api.settings import MobileApiSettings
from mobile_api.tokens import TokenSigner
from server.errors import NotFound

__all__ = ["router"]

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
_ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES} if STATIC.is_dir() else {}
_HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
#: The demo assertion lives as long as a real shop's would need to reach
#: ``/v1/auth/login``: a couple of minutes.
DEMO_IDENTITY_TTL_S = 120

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = _ASSETS.get(name)
    if path is None:
        raise NotFound("no such asset")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


@router.get("/phone")
def phone_page() -> FileResponse:
    return _file("phone.html")


@router.get("/phone/assets/{name}")
def phone_asset(name: str) -> FileResponse:
    return _file(name)


class DemoIdentityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    web_user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@:-]+$")


class DemoIdentity(BaseModel):
    identity: str


@router.post("/phone/demo/identity")
def demo_identity(request: Request, body: DemoIdentityRequest) -> DemoIdentity:
    settings: MobileApiSettings = request.app.state.settings
    if settings.mode != "local":
        raise NotFound("Not Found")
    signer = TokenSigner(
        settings.mobile_identity_secret.get_secret_value().encode(),
        request.app.state.signer.clock,
    )
    return DemoIdentity(identity=signer.issue("identity", body.web_user_id, DEMO_IDENTITY_TTL_S))

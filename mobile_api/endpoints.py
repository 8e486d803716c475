"""The REST routes under ``/v1``. A shopper only ever reaches ``/v1/me/…``:
the profile id comes from the access token, never from the path, and every id
that does appear in a path is looked up *within* the caller's profile."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from mobile_api import repository as repo
from mobile_api import schemas
from mobile_api.bus import Bus, BusUnavailableError
from mobile_api.settings import MobileApiSettings
from mobile_api.tokens import TokenError, TokenSigner
from server.db import SessionDep
from server.errors import BadRequest, NotFound, Unauthorized, VitrineError
from server.models import ConsentPurpose, InteractionKind, StoreVisit, Variant
from vitrine.contracts.app_token import token_of
from vitrine.contracts.events import StaffTaskEvent
from vitrine.contracts.facts import ShopperEntered, ShopperZoneChanged, make_event_id
from vitrine.contracts.ids import DeviceToken, EventId, GatewayId, StoreId, ZoneId
from vitrine.contracts.topics import staff_out_topic

__all__ = ["Shopper", "router"]

router = APIRouter(prefix="/v1")
_bearer = HTTPBearer(auto_error=False, description="An access token from /v1/auth/login.")

HELP = "help_request"
SAVED = "saved_item"
#: The ``gateway`` field of facts that come from phones rather than fixed scanners.
APP_GATEWAY = GatewayId("mobile-api")


class UnavailableError(VitrineError):
    status_code = 503


@dataclass(frozen=True, slots=True)
class Shopper:
    profile_id: str
    install_id: str


def _settings(request: Request) -> MobileApiSettings:
    settings: MobileApiSettings = request.app.state.settings
    return settings


def _signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def current_shopper(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Shopper:
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    try:
        claims = _signer(request).verify(credentials.credentials, "access")
    except TokenError as exc:
        raise Unauthorized(str(exc)) from exc
    if claims.ins is None:
        raise Unauthorized("invalid token")
    return Shopper(claims.sub, claims.ins)


ShopperDep = Annotated[Shopper, Depends(current_shopper)]


def _tokens(request: Request, profile_id: str, install_id: str) -> schemas.TokenPair:
    settings, signer = _settings(request), _signer(request)
    return schemas.TokenPair(
        access_token=signer.issue("access", profile_id, settings.mobile_access_ttl_s, install_id),
        refresh_token=signer.issue(
            "refresh", profile_id, settings.mobile_refresh_ttl_s, install_id
        ),
        expires_in=settings.mobile_access_ttl_s,
    )


# ------------------------------------------------------------------ install and sign-in


@router.post("/installs", status_code=201, tags=["auth"], summary="Register an app install")
def create_install(request: Request, session: SessionDep) -> schemas.InstallCreated:
    install = repo.create_install(session)
    return schemas.InstallCreated(
        install_id=install.id,
        secret=base64.b64encode(install.secret).decode(),
        token_period_s=_settings(request).app_token_period_s,
    )


@router.post("/auth/login", tags=["auth"], summary="Link the install to the signed-in shopper")
def login(request: Request, body: schemas.Login, session: SessionDep) -> schemas.TokenPair:
    install = repo.get_install(session, body.install_id)
    try:
        secret = base64.b64decode(body.install_secret, validate=True)
    except (binascii.Error, ValueError):
        secret = b""
    if install is None or not hmac.compare_digest(secret, install.secret):
        raise Unauthorized("unknown install or wrong secret")
    identity_signer = TokenSigner(
        _settings(request).mobile_identity_secret.get_secret_value().encode(),
        _signer(request).clock,
    )
    try:
        web_user = identity_signer.verify(body.identity, "identity").sub
    except TokenError as exc:
        raise Unauthorized(f"identity assertion: {exc}") from exc
    profile = repo.profile_for_web_user(session, web_user)
    install.profile_id = profile.id
    session.add(install)
    session.commit()
    return _tokens(request, profile.id, install.id)


@router.post("/auth/refresh", tags=["auth"], summary="A new token pair from a refresh token")
def refresh(request: Request, body: schemas.Refresh, session: SessionDep) -> schemas.TokenPair:
    try:
        claims = _signer(request).verify(body.refresh_token, "refresh")
    except TokenError as exc:
        raise Unauthorized(str(exc)) from exc
    install = repo.get_install(session, claims.ins or "")
    # An erased profile or an install relinked to someone else ends the session.
    if install is None or install.profile_id != claims.sub:
        raise Unauthorized("session ended")
    return _tokens(request, claims.sub, install.id)


# ------------------------------------------------------------------ me


@router.get("/me", tags=["me"], summary="My profile")
def get_me(me: ShopperDep, session: SessionDep) -> dict[str, Any]:
    profile = repo.get_profile(session, me.profile_id)
    return profile.model_dump(mode="json")


@router.get("/me/consents", tags=["me"], summary="My consent per purpose")
def list_consents(me: ShopperDep, session: SessionDep) -> schemas.ConsentsPublic:
    return schemas.ConsentsPublic(consents=repo.list_consents(session, me.profile_id))


@router.put("/me/consents/{purpose}", tags=["me"], summary="Grant or withdraw one purpose")
def set_consent(
    request: Request,
    purpose: ConsentPurpose,
    body: schemas.ConsentChange,
    me: ShopperDep,
    session: SessionDep,
) -> schemas.ConsentsPublic:
    repo.get_profile(session, me.profile_id)
    repo.set_consent(session, me.profile_id, purpose, body.granted, _now(request))
    return schemas.ConsentsPublic(consents=repo.list_consents(session, me.profile_id))


def _visit(visit: StoreVisit) -> schemas.VisitPublic:
    return schemas.VisitPublic.model_validate(visit, from_attributes=True)


@router.get("/me/visit", tags=["me"], summary="My current visit and its latest guidance")
def current_visit(me: ShopperDep, session: SessionDep) -> schemas.CurrentVisit:
    visit = repo.current_visit(session, me.profile_id)
    if visit is None:
        return schemas.CurrentVisit(visit=None, guidance=None)
    guidance = repo.latest_guidance(session, me.profile_id, visit.id)
    return schemas.CurrentVisit(
        visit=_visit(visit), guidance=None if guidance is None else orjson.loads(guidance)
    )


@router.get("/me/visits", tags=["me"], summary="My store visits")
def list_visits(me: ShopperDep, session: SessionDep) -> list[schemas.VisitPublic]:
    return [_visit(v) for v in repo.list_visits(session, me.profile_id)]


@router.get("/me/visits/{visit_id}", tags=["me"], summary="One of my store visits")
def get_visit(visit_id: str, me: ShopperDep, session: SessionDep) -> schemas.VisitPublic:
    return _visit(repo.get_visit(session, me.profile_id, visit_id))


@router.get("/me/viewed-items", tags=["me"], summary="What I viewed online, in this store")
def viewed_items(
    me: ShopperDep, session: SessionDep, store: Annotated[str, Query(max_length=128)]
) -> list[schemas.ViewedItem]:
    return [
        schemas.ViewedItem(
            product_id=w.product_id,
            name=w.name,
            variant_id=w.variant_id,
            size=w.size,
            zone_id=w.zone_id,
            zone_name=w.zone_name,
            count=w.count,
        )
        for w in repo.viewed_items_in_store(session, me.profile_id, store)
    ]


# ------------------------------------------------------------------ help requests


def _help(row: Any) -> schemas.HelpRequestPublic:
    data = row.data or {}
    return schemas.HelpRequestPublic(
        id=row.id,
        store=row.store_id,
        text=data["text"],
        zone=data.get("zone"),
        created_at=row.occurred_at,
    )


@router.post("/me/help-requests", status_code=201, tags=["me"], summary="Ask staff for help")
def create_help_request(
    request: Request, body: schemas.HelpRequest, me: ShopperDep, session: SessionDep
) -> schemas.HelpRequestPublic:
    now = _now(request)
    if body.zone is not None:
        repo.get_zone(session, body.store, body.zone)
    row = repo.add_interaction(
        session,
        me.profile_id,
        InteractionKind.ASSISTED,
        now,
        store_id=body.store,
        variant_id=body.variant_id
        if body.variant_id and session.get(Variant, body.variant_id)
        else None,
        data={"what": HELP, "text": body.text, "zone": body.zone},
    )
    task = StaffTaskEvent(
        event_id=EventId(row.event_id),
        store=StoreId(body.store),
        created_at=now,
        task_id=row.id,
        task="assist",
        text=body.text,
        zone=body.zone,
        variant_id=row.variant_id,
    )
    # Announced to staff through the outbox, after commit (ARCHITECTURE.md, "State").
    repo.enqueue(
        session,
        f"staff:{body.store}",
        staff_out_topic(StoreId(body.store), "staff_task"),
        task.model_dump(mode="json"),
    )
    session.commit()
    return _help(row)


@router.get("/me/help-requests", tags=["me"], summary="My help requests")
def list_help_requests(me: ShopperDep, session: SessionDep) -> list[schemas.HelpRequestPublic]:
    return [
        _help(r)
        for r in repo.list_interactions(session, me.profile_id, InteractionKind.ASSISTED, HELP)
    ]


@router.get("/me/help-requests/{request_id}", tags=["me"], summary="One of my help requests")
def get_help_request(
    request_id: str, me: ShopperDep, session: SessionDep
) -> schemas.HelpRequestPublic:
    return _help(repo.get_interaction(session, me.profile_id, request_id, HELP))


# ------------------------------------------------------------------ check-in and sightings


def _device(session: Session, me: Shopper, now: datetime, period_s: int) -> DeviceToken:
    install = repo.get_install(session, me.install_id)
    if install is None or install.profile_id != me.profile_id:
        raise Unauthorized("session ended")
    return DeviceToken(f"{token_of(install.secret, now.timestamp(), period_s):08x}")


async def _publish(request: Request, fact: ShopperEntered | ShopperZoneChanged) -> None:
    bus: Bus = request.app.state.bus
    try:
        await asyncio.to_thread(bus.publish_fact, fact)
    except BusUnavailableError as exc:
        raise UnavailableError("the store bus is unavailable; try again") from exc


@router.post(
    "/me/check-in", status_code=202, tags=["me"], summary="I'm in the store (QR or button)"
)
async def check_in(request: Request, body: schemas.CheckIn, me: ShopperDep) -> schemas.FactAccepted:
    now = _now(request)
    settings = _settings(request)

    def prepare() -> ShopperEntered:
        with repo_session(request) as session:
            zone = (
                repo.get_zone(session, body.store, body.zone)
                if body.zone is not None
                else repo.entrance_zone(session, body.store)
            )
            device = _device(session, me, now, settings.app_token_period_s)
        return ShopperEntered(
            event_id=make_event_id("app-check-in", device, body.store, zone.id, now.isoformat()),
            store=StoreId(body.store),
            gateway=APP_GATEWAY,
            occurred_at=now,
            device=device,
            device_kind="app",
            zone=ZoneId(zone.id),
        )

    fact = await asyncio.to_thread(prepare)
    await _publish(request, fact)
    return schemas.FactAccepted(published=fact.kind)


@router.post(
    "/me/sightings", status_code=202, tags=["me"], summary="A store beacon my phone ranged"
)
async def create_sighting(
    request: Request, body: schemas.Sighting, me: ShopperDep
) -> schemas.FactAccepted:
    now = _now(request)
    settings = _settings(request)

    def prepare() -> ShopperEntered | ShopperZoneChanged | None:
        with repo_session(request) as session:
            repo.get_zone(session, body.store, body.zone)
            device = _device(session, me, now, settings.app_token_period_s)
            visit = repo.current_visit(session, me.profile_id)
        store, zone = StoreId(body.store), ZoneId(body.zone)
        event_id = make_event_id("app-sighting", device, body.store, body.zone, now.isoformat())
        if visit is None or visit.store_id != body.store:
            return ShopperEntered(
                event_id=event_id,
                store=store,
                gateway=APP_GATEWAY,
                occurred_at=now,
                device=device,
                device_kind="app",
                zone=zone,
            )
        if visit.last_zone_id == body.zone:
            return None  # nothing changed: no fact, as a fixed scanner would stay quiet
        return ShopperZoneChanged(
            event_id=event_id,
            store=store,
            gateway=APP_GATEWAY,
            occurred_at=now,
            device=device,
            device_kind="app",
            from_zone=ZoneId(visit.last_zone_id or visit.entry_zone_id or body.zone),
            zone=zone,
        )

    fact = await asyncio.to_thread(prepare)
    if fact is None:
        return schemas.FactAccepted(published=None)
    await _publish(request, fact)
    return schemas.FactAccepted(published=fact.kind)


def repo_session(request: Request) -> Session:
    from server.db import session_factory

    return session_factory(request.app.state.engine)


# ------------------------------------------------------------------ the reverse journey


def _availability(found: repo.Availability) -> schemas.Availability:
    return schemas.Availability(
        product_id=found.product.id,
        name=found.product.name,
        url=found.product.url,
        variant_id=found.variant.id if found.variant else None,
        size=found.variant.size if found.variant else None,
        stores=found.stores,
    )


@router.get("/items/lookup", tags=["items"], summary="A tag or barcode seen in store → product")
def lookup_item(
    me: ShopperDep,
    session: SessionDep,
    epc: Annotated[str | None, Query(max_length=128, pattern=r"^[0-9A-Fa-f]+$")] = None,
    gtin: Annotated[str | None, Query(pattern=r"^[0-9]{8,14}$")] = None,
) -> schemas.Availability:
    if (epc is None) == (gtin is None):
        raise BadRequest("give exactly one of epc or gtin")
    return _availability(
        repo.lookup_item(
            session, epc=epc.upper() if epc else None, gtin=gtin.zfill(14) if gtin else None
        )
    )


def _saved(row: Any) -> schemas.SavedItemPublic:
    return schemas.SavedItemPublic(
        id=row.id, product_id=row.product_id, variant_id=row.variant_id, created_at=row.occurred_at
    )


@router.post("/me/saved-items", status_code=201, tags=["me"], summary="Save an item I spotted")
def save_item(
    request: Request, body: schemas.SaveItem, me: ShopperDep, session: SessionDep
) -> schemas.SavedItemPublic:
    variant = session.get(Variant, body.variant_id)
    if variant is None:
        raise NotFound("unknown variant")
    row = repo.add_interaction(
        session,
        me.profile_id,
        InteractionKind.VIEWED,
        _now(request),
        product_id=variant.product_id,
        variant_id=variant.id,
        data={"what": SAVED},
    )
    session.commit()
    return _saved(row)


@router.get("/me/saved-items", tags=["me"], summary="Items I saved")
def list_saved_items(me: ShopperDep, session: SessionDep) -> list[schemas.SavedItemPublic]:
    return [
        _saved(r)
        for r in repo.list_interactions(session, me.profile_id, InteractionKind.VIEWED, SAVED)
    ]


@router.delete(
    "/me/saved-items/{item_id}", status_code=204, tags=["me"], summary="Forget a saved item"
)
def delete_saved_item(item_id: str, me: ShopperDep, session: SessionDep) -> Response:
    row = repo.get_interaction(session, me.profile_id, item_id, SAVED)
    session.delete(row)
    session.commit()
    return Response(status_code=204)


# ------------------------------------------------------------------ export and erase


@router.get("/me/export", tags=["me"], summary="Everything held about me (JSON)")
def export_me(me: ShopperDep, session: SessionDep) -> dict[str, Any]:
    return repo.export_profile(session, me.profile_id)


@router.delete("/me", status_code=204, tags=["me"], summary="Erase me")
def erase_me(me: ShopperDep, session: SessionDep) -> Response:
    repo.get_profile(session, me.profile_id)
    repo.erase_profile(session, me.profile_id)
    return Response(status_code=204)

"""Admin routes of the offer library (``/v1/admin/offers``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from server.auth.deps import AdminDep
from server.db import SessionDep
from server.offers import service
from server.offers.schemas import OfferIn, OfferPublic

__all__ = ["router"]

router = APIRouter(tags=["offers"])
_404: dict[int | str, dict[str, Any]] = {404: {"description": "No such offer"}}


@router.get("/v1/admin/offers", summary="The offer library")
def list_offers(session: SessionDep, admin: AdminDep) -> list[OfferPublic]:
    return service.list_offers(session)


@router.post("/v1/admin/offers", status_code=201, summary="Add an offer")
def create_offer(data: OfferIn, session: SessionDep, admin: AdminDep) -> OfferPublic:
    return service.create_offer(session, data)


@router.get("/v1/admin/offers/{offer_id}", summary="One offer", responses=_404)
def get_offer(offer_id: str, session: SessionDep, admin: AdminDep) -> OfferPublic:
    return service.get_offer(session, offer_id)


@router.put("/v1/admin/offers/{offer_id}", summary="Replace an offer", responses=_404)
def update_offer(offer_id: str, data: OfferIn, session: SessionDep, admin: AdminDep) -> OfferPublic:
    return service.update_offer(session, offer_id, data)


@router.delete(
    "/v1/admin/offers/{offer_id}", status_code=204, summary="Remove an offer", responses=_404
)
def delete_offer(offer_id: str, session: SessionDep, admin: AdminDep) -> Response:
    service.delete_offer(session, offer_id)
    return Response(status_code=204)

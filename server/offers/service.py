"""Create, read, update and delete offers (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from server.errors import NotFound
from server.models import Offer
from server.offers import repository
from server.offers.schemas import OfferIn, OfferPublic

__all__ = ["create_offer", "delete_offer", "get_offer", "list_offers", "update_offer"]


def _public(row: Offer) -> OfferPublic:
    return OfferPublic.model_validate(row, from_attributes=True)


def list_offers(session: Session) -> list[OfferPublic]:
    return [_public(o) for o in repository.list_offers(session)]


def get_offer(session: Session, offer_id: str) -> OfferPublic:
    row = repository.get_offer(session, offer_id)
    if row is None:
        raise NotFound("no such offer")
    return _public(row)


def create_offer(session: Session, data: OfferIn) -> OfferPublic:
    row = Offer(**data.model_dump(), updated_at=datetime.now(UTC))
    session.add(row)
    session.commit()
    return _public(row)


def update_offer(session: Session, offer_id: str, data: OfferIn) -> OfferPublic:
    row = repository.get_offer(session, offer_id)
    if row is None:
        raise NotFound("no such offer")
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.commit()
    return _public(row)


def delete_offer(session: Session, offer_id: str) -> None:
    row = repository.get_offer(session, offer_id)
    if row is None:
        raise NotFound("no such offer")
    session.delete(row)
    session.commit()

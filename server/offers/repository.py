"""Queries of the offer library."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from server.models import Offer

__all__ = ["get_offer", "list_offers"]


def list_offers(session: Session) -> Sequence[Offer]:
    return session.exec(select(Offer).order_by(col(Offer.priority).desc(), col(Offer.id))).all()


def get_offer(session: Session, offer_id: str) -> Offer | None:
    return session.get(Offer, offer_id)

"""The engine: pure, deterministic decisions from a store fact and a context snapshot.

No database, no I/O, no clock: :func:`decide` is a function of ``(fact,
Context, now)`` (ARCHITECTURE.md, "The engine"; docs/engine.md).
"""

from __future__ import annotations

from server.engine.context import (
    Consents,
    Context,
    EngineSettings,
    ItemState,
    OfferRule,
    Presence,
    Shopper,
    StockLine,
    ViewedProduct,
    Visit,
    ZoneInfo,
)
from server.engine.decisions import Decision, Interaction, ItemChange, VisitClose, VisitOpen
from server.engine.offers import eligible, pick_offer
from server.engine.rules import FLOOR_ZONES, arrival_cards, decide, derived_id, guidance_message

__all__ = [
    "FLOOR_ZONES",
    "Consents",
    "Context",
    "Decision",
    "EngineSettings",
    "Interaction",
    "ItemChange",
    "ItemState",
    "OfferRule",
    "Presence",
    "Shopper",
    "StockLine",
    "ViewedProduct",
    "Visit",
    "VisitClose",
    "VisitOpen",
    "ZoneInfo",
    "arrival_cards",
    "decide",
    "derived_id",
    "eligible",
    "guidance_message",
    "pick_offer",
]

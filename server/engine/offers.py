"""Next best action: which offer of the library, if any, to push at a moment.

Quiet by default (ARCHITECTURE.md, "Next best action"): nothing without the
``guidance`` consent, nothing while the shopper is in a fitting room, at most
``max_offer_pushes_per_visit`` per visit, each offer at most once per visit
and at most ``max_per_profile`` times per profile in the cap window. Among the
eligible, the highest ``priority`` wins; ties go to the smallest offer id, so
the choice is deterministic.
"""

from __future__ import annotations

from server.engine.context import Context, OfferRule, Shopper, Visit
from vitrine.contracts.events import Moment
from vitrine.contracts.layout import ZoneType

__all__ = ["eligible", "pick_offer"]


def eligible(rule: OfferRule, shopper: Shopper, visit: Visit, moment: Moment) -> bool:
    """Whether ``rule`` may be shown to ``shopper`` now, ignoring the per-visit push cap."""
    if not rule.active or moment not in rule.moments:
        return False
    if rule.offer_id in visit.offers_sent:
        return False
    sent = shopper.offer_history.get(rule.offer_id, 0)
    if rule.max_per_profile is not None and sent >= rule.max_per_profile:
        return False
    if rule.segments and not (rule.segments & shopper.segments):
        return False
    if rule.tiers and shopper.tier not in rule.tiers:
        return False
    if rule.categories:
        viewed = {v.category for v in shopper.views if v.category is not None}
        if not (rule.categories & viewed):
            return False
    return shopper.visits_before >= rule.min_visits


def pick_offer(ctx: Context, shopper: Shopper, visit: Visit, moment: Moment) -> OfferRule | None:
    """The offer to push at ``moment``, or ``None`` (the usual answer)."""
    if not shopper.consents.guidance:
        return None
    if visit.offer_pushes >= ctx.settings.max_offer_pushes_per_visit:
        return None
    if ctx.zone_type(visit.zone) is ZoneType.FITTING_ROOM:
        return None
    candidates = [r for r in ctx.offers if eligible(r, shopper, visit, moment)]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (-r.priority, r.offer_id))

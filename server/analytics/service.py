"""Analytics over the timeline: the ROPO funnel, footfall and dwell, guidance outcomes.

Computed from ``profile_interactions`` and ``store_visits`` for one period (the
rows of a store-period are small enough to fold in Python; a chain-wide,
year-long query would want a materialised aggregate — noted in docs).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlmodel import Session

from server.analytics import repository
from server.analytics.schemas import (
    FootfallReport,
    FunnelReport,
    FunnelRow,
    GuidanceReport,
    GuidanceRow,
    ZoneFootfall,
)
from server.errors import BadRequest

__all__ = ["GUIDED", "footfall", "funnel", "guidance"]

#: The interaction kind the engine writes when guidance for a product reaches a phone.
GUIDED = "guided"
_IN_STORE = ("located", "tried_on", "bought")
_ACTED = frozenset(_IN_STORE)


def _check(start: datetime, end: datetime) -> None:
    if end <= start:
        raise BadRequest("'to' must be after 'from'")


def funnel(
    session: Session, *, start: datetime, end: datetime, store: str | None, product: str | None
) -> FunnelReport:
    _check(start, end)
    views = repository.interactions(
        session, kinds=["viewed"], start=start, end=end, product=product
    )
    first_view: dict[tuple[str, str], datetime] = {}
    for v in views:
        if v.channel == "web" and v.product_id is not None:
            key = (v.profile_id, v.product_id)
            first_view[key] = min(first_view.get(key, v.occurred_at), v.occurred_at)
    visit_rows = [
        v for v in repository.visits(session, start=start, end=end, store=store) if v.profile_id
    ]
    visits_of: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for visit in visit_rows:
        assert visit.profile_id is not None
        visits_of[visit.profile_id].append((visit.store_id, visit.started_at))
    steps = repository.interactions(
        session, kinds=[*_IN_STORE], start=start, end=end, store=store, product=product
    )
    counts: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    stores = {store} if store else {s for s, _ in (x for vs in visits_of.values() for x in vs)}
    for (profile, prod), viewed_at in first_view.items():
        for store_id, started in visits_of.get(profile, []):
            if started >= viewed_at and (store is None or store_id == store):
                counts[(store_id, prod)]["visited"].add(profile)
    for s in steps:
        if s.product_id is None:
            continue
        seen = first_view.get((s.profile_id, s.product_id))
        if seen is None or s.occurred_at < seen:
            continue
        if s.channel == "web" and s.kind == "bought":
            for store_id, started in visits_of.get(s.profile_id, []):
                if seen <= started <= s.occurred_at:
                    counts[(store_id, s.product_id)]["bought_online_after_visit"].add(s.profile_id)
        elif s.channel != "web" and s.store_id is not None:
            name = "bought_in_store" if s.kind == "bought" else s.kind
            counts[(s.store_id, s.product_id)][name].add(s.profile_id)
    viewers: dict[str, set[str]] = defaultdict(set)
    for profile, prod in first_view:
        viewers[prod].add(profile)
    keys = set(counts) | {(st, prod) for prod in viewers for st in stores}
    rows = [
        FunnelRow(
            store_id=st,
            product_id=prod,
            viewed_online=len(viewers.get(prod, set())),
            visited=len(counts[(st, prod)]["visited"]),
            located=len(counts[(st, prod)]["located"]),
            tried_on=len(counts[(st, prod)]["tried_on"]),
            bought_in_store=len(counts[(st, prod)]["bought_in_store"]),
            bought_online_after_visit=len(counts[(st, prod)]["bought_online_after_visit"]),
        )
        for st, prod in sorted(keys)
        if store is None or st == store
    ]
    return FunnelReport(start=start, end=end, rows=rows)


def footfall(session: Session, *, store: str, start: datetime, end: datetime) -> FootfallReport:
    _check(start, end)
    rows = repository.visits(session, start=start, end=end, store=store)
    closed = [(v.ended_at - v.started_at).total_seconds() for v in rows if v.ended_at is not None]
    zone_visits: dict[str, int] = defaultdict(int)
    for v in rows:
        for zone in {z for z in (v.entry_zone_id, v.last_zone_id) if z}:
            zone_visits[zone] += 1
    identified = sum(1 for v in rows if v.profile_id is not None)
    return FootfallReport(
        store_id=store,
        start=start,
        end=end,
        visits=len(rows),
        identified_visits=identified,
        anonymous_visits=len(rows) - identified,
        mean_dwell_s=sum(closed) / len(closed) if closed else None,
        zones=[ZoneFootfall(zone_id=z, visits=n) for z, n in sorted(zone_visits.items())],
    )


def guidance(
    session: Session, *, start: datetime, end: datetime, store: str | None, product: str | None
) -> GuidanceReport:
    """Guidance per product: delivered, and acted upon (located/tried/bought it afterwards)."""
    _check(start, end)
    guided = repository.interactions(
        session, kinds=[GUIDED], start=start, end=end, store=store, product=product
    )
    after = repository.interactions(
        session, kinds=[*_IN_STORE], start=start, end=end, store=store, product=product
    )
    delivered: dict[tuple[str | None, str], int] = defaultdict(int)
    acted: dict[tuple[str | None, str], int] = defaultdict(int)
    for g in guided:
        if g.product_id is None:
            continue
        key = (g.store_id, g.product_id)
        delivered[key] += 1
        if any(
            a.profile_id == g.profile_id
            and a.product_id == g.product_id
            and a.kind in _ACTED
            and a.channel != "web"
            and a.occurred_at >= g.occurred_at
            and (g.store_id is None or a.store_id == g.store_id)
            for a in after
        ):
            acted[key] += 1
    return GuidanceReport(
        start=start,
        end=end,
        rows=[
            GuidanceRow(store_id=s, product_id=p, delivered=n, acted_upon=acted[(s, p)])
            for (s, p), n in sorted(delivered.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
        ],
    )

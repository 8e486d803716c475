"""The engine's rules: ``decide(fact, context, now) -> Decision``, pure and deterministic.

Rules (docs/engine.md explains each and its constants):

- **Consent where facts enter.** A shopper fact whose device does not resolve to
  a profile with at least one granted purpose is anonymous footfall: a visit
  keyed by the ingest's footfall hash, no events, no interactions.
- **Arrival** (``shopper_entered`` with no open visit): a card per product
  viewed online in the view window, in the size viewed (else the known size):
  ``on_floor`` (zone, rack and count where most units are, and how fresh),
  ``stockroom_only``, or ``not_in_store`` (another store that has it, or none →
  order online). ``guidance`` → a ranked :class:`GuidanceEvent`;
  ``staff_recognition`` → a :class:`StaffAlertEvent` (capped per visit);
  ``guidance`` or ``staff_recognition`` → a ``bring_to_floor`` task per
  stockroom-only variant (once per variant per visit; it never names the shopper).
- **Walking** into a zone that holds a viewed item (wanted size) → proximity
  guidance, once per product per visit, and ``located`` on the timeline.
- **Fitting room**: an item arriving in a fitting-room zone → ``tried_on`` for
  the consenting (``journey_profile``) shopper present there. **Till**: an item
  read at a till is sold (leaves stock) and ``bought`` is attributed the same
  way. Attribution needs exactly one candidate (or exactly one of them who
  viewed the product): a read is never linked to a person by a guess, nor to
  anyone without consent.
- **Exit** (``shopper_left``) → the visit closes with its summary.
- **Next best action** at arrival, on entering a zone, on leaving a fitting room
  (moment ``fitting_room``) and at exit: :func:`server.engine.offers.pick_offer`.

Every id the engine makes is derived from the fact's ``event_id``, so a
replayed fact decides exactly the same thing.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from server.engine.context import Context, ItemState, Presence, Shopper, ViewedProduct, Visit
from server.engine.decisions import (
    Decision,
    Interaction,
    InteractionName,
    ItemChange,
    VisitClose,
    VisitOpen,
)
from server.engine.offers import pick_offer
from vitrine.contracts.events import (
    GuidanceCard,
    GuidanceEvent,
    InteractionEvent,
    Moment,
    OfferEvent,
    OutboundEvent,
    StaffAlertEvent,
    StaffTaskEvent,
    VisitClosedEvent,
)
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemDeparted,
    ItemMoved,
    ReadsLost,
    ShopperDwelled,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
    make_event_id,
)
from vitrine.contracts.ids import EventId, StoreId
from vitrine.contracts.layout import ZoneType

__all__ = ["FLOOR_ZONES", "arrival_cards", "decide", "derived_id"]

#: Where a shopper can take an item from a rail: not the stockroom (staff only),
#: not a fitting room or till (the item is in someone's hands).
FLOOR_ZONES = frozenset({ZoneType.SALES_FLOOR, ZoneType.ENTRANCE})

_STATUS_RANK = {"on_floor": 0, "stockroom_only": 1, "not_in_store": 2}


def derived_id(*parts: object) -> str:
    """A uuid-shaped id derived from ``parts`` (a replayed fact makes the same one)."""
    return str(uuid.UUID(make_event_id(*parts)))


def decide(fact: Fact, ctx: Context, now: datetime) -> Decision:
    """What ``fact`` changes, given ``ctx``; ``now`` stamps the outbound events."""
    if isinstance(fact, ShopperEntered | ShopperZoneChanged | ShopperDwelled) and _expired(
        ctx.visit, fact.occurred_at, ctx
    ):
        # The open visit's exit was missed: close it where its time ran out, start anew.
        assert ctx.visit is not None
        old = ctx.visit
        ended = old.started_at + ctx.settings.max_visit
        decision = _arrived(fact, replace(ctx, visit=None), now)
        return replace(decision, visit_close=VisitClose(old.visit_id, ended, old.zone))
    if isinstance(fact, ShopperEntered):
        if ctx.visit is not None:
            # Seen entering again within an open visit: a zone change, not an arrival.
            return _walked(fact.event_id, fact.store, fact.zone, ctx, now, zone_changed=True)
        return _arrived(fact, ctx, now)
    if isinstance(fact, ShopperZoneChanged):
        if ctx.visit is None:
            # The entry fact was missed (gateway restart): the first sighting is the arrival.
            return _arrived(fact, ctx, now)
        return _walked(fact.event_id, fact.store, fact.zone, ctx, now, zone_changed=True)
    if isinstance(fact, ShopperDwelled):
        if ctx.visit is None:
            return _arrived(fact, ctx, now)
        changed = fact.zone != ctx.visit.zone
        return _walked(fact.event_id, fact.store, fact.zone, ctx, now, zone_changed=changed)
    if isinstance(fact, ShopperLeft):
        return _left(fact, ctx, now)
    if isinstance(fact, ItemArrived | ItemMoved):
        return _item_seen(fact, ctx, now)
    if isinstance(fact, ItemDeparted):
        return _item_departed(fact, ctx)
    assert isinstance(fact, ReadsLost)
    return Decision(note="reads lost: nothing to decide")


# -- shoppers ----------------------------------------------------------------------------


def _expired(visit: Visit | None, at: datetime, ctx: Context) -> bool:
    return visit is not None and at - visit.started_at > ctx.settings.max_visit


def _arrived(
    fact: ShopperEntered | ShopperZoneChanged | ShopperDwelled, ctx: Context, now: datetime
) -> Decision:
    visit_id = derived_id(fact.event_id, "visit")
    shopper = ctx.shopper
    if shopper is None:
        if ctx.footfall_hash is None:
            return Decision(note="no footfall key")
        opened = VisitOpen(
            visit_id=visit_id,
            started_at=fact.occurred_at,
            zone=fact.zone,
            device_kind=fact.device_kind,
            footfall_hash=ctx.footfall_hash,
        )
        return Decision(
            visit_open=opened,
            visits=(Visit(visit_id, fact.occurred_at, fact.zone),),
            note="anonymous footfall",
        )
    opened = VisitOpen(
        visit_id=visit_id,
        started_at=fact.occurred_at,
        zone=fact.zone,
        device_kind=fact.device_kind,
        profile_id=shopper.profile_id,
    )
    visit = Visit(visit_id, fact.occurred_at, fact.zone, profile_id=shopper.profile_id)
    consents = shopper.consents
    cards = arrival_cards(shopper, ctx, fact.occurred_at)
    events: list[OutboundEvent] = []
    interactions: list[Interaction] = []
    store = fact.store
    if consents.journey_profile:
        interactions.append(
            _interaction(fact.event_id, shopper, visit, "visited", fact.occurred_at, zone=fact.zone)
        )
    if consents.guidance and cards:
        if consents.journey_profile:
            interactions.extend(_guided(fact.event_id, shopper, visit, cards, fact.occurred_at))
        events.append(
            GuidanceEvent(
                event_id=_eid(fact.event_id, "guidance"),
                store=store,
                created_at=now,
                shopper=shopper.profile_id,
                visit_id=visit_id,
                moment="arrival",
                cards=cards,
                message=guidance_message(cards),
            )
        )
    if consents.staff_recognition and visit.staff_alerts < ctx.settings.max_staff_alerts_per_visit:
        events.append(
            StaffAlertEvent(
                event_id=_eid(fact.event_id, "staff_alert"),
                store=store,
                created_at=now,
                alert_id=derived_id(fact.event_id, "alert"),
                visit_id=visit_id,
                shopper_label=shopper.label,
                tier=shopper.tier,
                zone=fact.zone,
                cards=cards,
                click_and_collect=shopper.click_and_collect,
            )
        )
        visit = replace(visit, staff_alerts=visit.staff_alerts + 1)
    if consents.guidance or consents.staff_recognition:
        tasks, visit = _bring_to_floor_tasks(fact.event_id, store, cards, visit, now)
        events.extend(tasks)
    offer, visit = _offer(fact.event_id, store, ctx, shopper, visit, "arrival", now)
    events.extend(offer)
    events.extend(_interaction_events(store, interactions, now))
    return Decision(
        visit_open=opened, visits=(visit,), interactions=tuple(interactions), events=tuple(events)
    )


def _walked(
    event_id: EventId,
    store: StoreId,
    zone: str,
    ctx: Context,
    now: datetime,
    *,
    zone_changed: bool,
) -> Decision:
    assert ctx.visit is not None
    before = ctx.visit
    visit = replace(before, zone=zone)
    shopper = ctx.shopper
    if shopper is None:
        return Decision(visits=(visit,))
    events: list[OutboundEvent] = []
    interactions: list[Interaction] = []
    zone_type = ctx.zone_type(zone)
    consents = shopper.consents
    if zone_type in FLOOR_ZONES and (consents.guidance or consents.journey_profile):
        cards = _cards_in_zone(shopper, ctx, zone, now)
        if cards:
            visit = replace(
                visit, proximity_done=visit.proximity_done | {c.product_id for c in cards}
            )
            if consents.guidance:
                if consents.journey_profile:
                    interactions.extend(_guided(event_id, shopper, visit, cards, now))
                events.append(
                    GuidanceEvent(
                        event_id=_eid(event_id, "proximity"),
                        store=store,
                        created_at=now,
                        shopper=shopper.profile_id,
                        visit_id=visit.visit_id,
                        moment="zone",
                        cards=cards,
                        message=guidance_message(cards),
                    )
                )
            if consents.journey_profile:
                for card in cards:
                    interactions.append(
                        _interaction(
                            event_id,
                            shopper,
                            visit,
                            "located",
                            now,
                            product_id=card.product_id,
                            variant_id=card.variant_id,
                            zone=zone,
                            rack=card.rack,
                        )
                    )
    if zone_changed:
        moment: Moment | None = None
        if ctx.zone_type(before.zone) is ZoneType.FITTING_ROOM and zone_type is not (
            ZoneType.FITTING_ROOM
        ):
            moment = "fitting_room"
        elif zone_type in FLOOR_ZONES:
            moment = "zone"
        if moment is not None:
            offer, visit = _offer(event_id, store, ctx, shopper, visit, moment, now)
            events.extend(offer)
    events.extend(_interaction_events(store, interactions, now))
    return Decision(visits=(visit,), interactions=tuple(interactions), events=tuple(events))


def _left(fact: ShopperLeft, ctx: Context, now: datetime) -> Decision:
    visit = ctx.visit
    if visit is None:
        return Decision(note="left without an open visit")
    close = VisitClose(visit.visit_id, fact.occurred_at, fact.last_zone or visit.zone)
    shopper = ctx.shopper
    if shopper is None:
        return Decision(visit_close=close, visits=(visit,))
    events: list[OutboundEvent] = []
    interactions: list[Interaction] = []
    offer, visit = _offer(fact.event_id, fact.store, ctx, shopper, visit, "exit", now)
    events.extend(offer)
    if shopper.consents.guidance:
        events.append(
            VisitClosedEvent(
                event_id=_eid(fact.event_id, "visit_closed"),
                store=fact.store,
                created_at=now,
                shopper=shopper.profile_id,
                visit_id=visit.visit_id,
                duration_s=max(0.0, (fact.occurred_at - visit.started_at).total_seconds()),
                tried_on=visit.tried_on,
                bought=visit.bought,
            )
        )
    if shopper.consents.journey_profile:
        interactions.append(_interaction(fact.event_id, shopper, visit, "left", fact.occurred_at))
    events.extend(_interaction_events(fact.store, interactions, now))
    return Decision(
        visit_close=close, visits=(visit,), interactions=tuple(interactions), events=tuple(events)
    )


# -- items -------------------------------------------------------------------------------


def _item_seen(fact: ItemArrived | ItemMoved, ctx: Context, now: datetime) -> Decision:
    zone_type = ctx.zone_type(fact.zone)
    if zone_type is None:
        return Decision(note="unknown zone")
    item = ctx.item or ItemState(epc=fact.epc)
    at_till = zone_type is ZoneType.TILL
    change = ItemChange(
        epc=fact.epc,
        zone=fact.zone,
        rack=fact.rack,
        sold=item.sold or at_till,
        seen_at=fact.occurred_at,
    )
    if item.sold or zone_type not in (ZoneType.FITTING_ROOM, ZoneType.TILL):
        # A sold item read anywhere (the customer carrying it out) is never linked to anyone.
        return Decision(item=change)
    kind: InteractionName = "bought" if at_till else "tried_on"
    present = _attributed(ctx.present, fact.zone, item)
    if present is None:
        return Decision(item=change, note="no consenting shopper to attribute to")
    visit = present.visit
    visit = (
        replace(visit, bought=visit.bought + 1)
        if at_till
        else replace(visit, tried_on=visit.tried_on + 1)
    )
    interactions: list[Interaction] = []
    viewed = item.product_id is not None and any(
        v.product_id == item.product_id for v in present.shopper.views
    )
    if viewed and item.product_id not in visit.proximity_done:
        # Trying on or buying a product viewed online means it was found, even when
        # the walk to its rack was too quick to register as a zone change: the
        # funnel's steps stay nested (located ⊇ tried ⊇ bought).
        assert item.product_id is not None
        visit = replace(visit, proximity_done=visit.proximity_done | {item.product_id})
        interactions.append(
            _interaction(
                fact.event_id,
                present.shopper,
                visit,
                "located",
                fact.occurred_at,
                product_id=item.product_id,
                variant_id=item.variant_id,
                zone=fact.zone,
            )
        )
    interactions.append(
        _interaction(
            fact.event_id,
            present.shopper,
            visit,
            kind,
            fact.occurred_at,
            product_id=item.product_id,
            variant_id=item.variant_id,
            epc=fact.epc,
            zone=fact.zone,
        )
    )
    return Decision(
        item=change,
        visits=(visit,),
        interactions=tuple(interactions),
        events=tuple(_interaction_events(fact.store, interactions, now)),
    )


def _attributed(present: tuple[Presence, ...], zone: str, item: ItemState) -> Presence | None:
    candidates = [p for p in present if p.visit.zone == zone and p.shopper.consents.journey_profile]
    if len(candidates) == 1:
        return candidates[0]
    viewers = [
        p
        for p in candidates
        if item.product_id is not None
        and any(v.product_id == item.product_id for v in p.shopper.views)
    ]
    return viewers[0] if len(viewers) == 1 else None


def _item_departed(fact: ItemDeparted, ctx: Context) -> Decision:
    item = ctx.item
    if item is None:
        return Decision(note="departure of an unknown item")
    if item.zone != fact.zone:
        # Already seen elsewhere since: a late departure must not erase the new place.
        return Decision(note="stale departure")
    change = ItemChange(
        epc=fact.epc, zone=None, rack=None, sold=item.sold, seen_at=fact.occurred_at
    )
    return Decision(item=change)


# -- guidance ----------------------------------------------------------------------------


def _wanted(shopper: Shopper, ctx: Context, at: datetime) -> list[tuple[ViewedProduct, str | None]]:
    """Recent views, newest first, one per product, each with the size wanted."""
    window = ctx.settings.view_window
    seen: set[str] = set()
    out: list[tuple[ViewedProduct, str | None]] = []
    for view in sorted(shopper.views, key=lambda v: v.viewed_at, reverse=True):
        if view.product_id in seen or at - view.viewed_at > window:
            continue
        seen.add(view.product_id)
        out.append((view, view.size or shopper.known_size))
    return out


def arrival_cards(shopper: Shopper, ctx: Context, at: datetime) -> tuple[GuidanceCard, ...]:
    """Ranked cards: on the floor first, then stockroom only, then not here; fresh
    readings before stale ones; then the most recently viewed first."""
    ranked: list[tuple[tuple[int, int, int], GuidanceCard]] = []
    for order, (view, size) in enumerate(_wanted(shopper, ctx, at)):
        card = _card(view, size, ctx)
        stale = card.seen_at is not None and at - card.seen_at > ctx.settings.stale_after
        ranked.append(((_STATUS_RANK[card.status], int(stale), order), card))
    ranked.sort(key=lambda pair: pair[0])
    return tuple(card for _, card in ranked[: ctx.settings.max_cards])


def _card(view: ViewedProduct, size: str | None, ctx: Context) -> GuidanceCard:
    lines = [
        line
        for line in ctx.stock
        if line.product_id == view.product_id and (size is None or line.size == size)
    ]
    floor = [line for line in lines if ctx.zone_type(line.zone) in FLOOR_ZONES]
    if floor:
        best = max(floor, key=lambda line: (line.count, line.seen_at, line.zone))
        return GuidanceCard(
            product_id=view.product_id,
            variant_id=best.variant_id,
            name=view.name,
            size=size,
            status="on_floor",
            zone=best.zone,
            zone_name=ctx.zones[best.zone].name,
            rack=best.rack,
            count=best.count,
            seen_at=best.seen_at,
        )
    back = [line for line in lines if ctx.zone_type(line.zone) is ZoneType.STOCKROOM]
    if back:
        freshest = max(back, key=lambda line: line.seen_at)
        return GuidanceCard(
            product_id=view.product_id,
            variant_id=freshest.variant_id,
            name=view.name,
            size=size,
            status="stockroom_only",
            zone=freshest.zone,
            zone_name=ctx.zones[freshest.zone].name,
            count=sum(line.count for line in back),
            seen_at=freshest.seen_at,
        )
    return GuidanceCard(
        product_id=view.product_id,
        variant_id=view.variant_id,
        name=view.name,
        size=size,
        status="not_in_store",
        nearest_store=ctx.elsewhere.get((view.product_id, size)),
    )


def _cards_in_zone(
    shopper: Shopper, ctx: Context, zone: str, at: datetime
) -> tuple[GuidanceCard, ...]:
    cards: list[GuidanceCard] = []
    visit = ctx.visit
    done = visit.proximity_done if visit is not None else frozenset()
    for view, size in _wanted(shopper, ctx, at):
        if view.product_id in done:
            continue
        here = [
            line
            for line in ctx.stock
            if line.product_id == view.product_id
            and line.zone == zone
            and (size is None or line.size == size)
        ]
        if not here:
            continue
        best = max(here, key=lambda line: (line.count, line.seen_at))
        cards.append(
            GuidanceCard(
                product_id=view.product_id,
                variant_id=best.variant_id,
                name=view.name,
                size=size,
                status="on_floor",
                zone=zone,
                zone_name=ctx.zones[zone].name,
                rack=best.rack,
                count=best.count,
                seen_at=best.seen_at,
            )
        )
    return tuple(cards[: ctx.settings.max_cards])


def guidance_message(cards: tuple[GuidanceCard, ...]) -> str:
    """One line per card, as a phone notification would show it."""
    lines = []
    for card in cards:
        size = f" in {card.size}" if card.size else ""
        if card.status == "on_floor":
            rack = f", rack {card.rack}" if card.rack else ""
            where = f"{card.zone_name}{rack}: {card.count}{size}"
        elif card.status == "stockroom_only":
            where = f"only in stockroom — ask staff{' for' + size if size else ''}"
        elif card.nearest_store:
            where = f"not in this store — available at {card.nearest_store}"
        else:
            where = "not in this store — order online for pickup"
        lines.append(f"{card.name}: {where}")
    return "\n".join(lines)


def _bring_to_floor_tasks(
    event_id: EventId,
    store: StoreId,
    cards: tuple[GuidanceCard, ...],
    visit: Visit,
    now: datetime,
) -> tuple[list[StaffTaskEvent], Visit]:
    tasks: list[StaffTaskEvent] = []
    done = set(visit.tasks_done)
    for card in cards:
        key = card.variant_id or card.product_id
        if card.status != "stockroom_only" or key in done:
            continue
        done.add(key)
        what = f"size {card.size} of {card.name}" if card.size else card.name
        tasks.append(
            StaffTaskEvent(
                event_id=_eid(event_id, "task", key),
                store=store,
                created_at=now,
                task_id=derived_id(event_id, "task", key),
                task="bring_to_floor",
                text=f"Bring {what} to the floor",
                zone=card.zone,
                variant_id=card.variant_id,
                visit_id=visit.visit_id,
            )
        )
    return tasks, replace(visit, tasks_done=frozenset(done))


def _offer(
    event_id: EventId,
    store: StoreId,
    ctx: Context,
    shopper: Shopper,
    visit: Visit,
    moment: Moment,
    now: datetime,
) -> tuple[list[OfferEvent], Visit]:
    rule = pick_offer(ctx, shopper, visit, moment)
    if rule is None:
        return [], visit
    event = OfferEvent(
        event_id=_eid(event_id, "offer", rule.offer_id),
        store=store,
        created_at=now,
        shopper=shopper.profile_id,
        visit_id=visit.visit_id,
        moment=moment,
        offer_id=rule.offer_id,
        title=rule.title,
        body=rule.body,
    )
    visit = replace(
        visit,
        offer_pushes=visit.offer_pushes + 1,
        offers_sent=visit.offers_sent | {rule.offer_id},
    )
    return [event], visit


# -- helpers -----------------------------------------------------------------------------


def _eid(*parts: object) -> EventId:
    return make_event_id(*parts)


def _interaction(
    event_id: EventId,
    shopper: Shopper,
    visit: Visit,
    kind: InteractionName,
    at: datetime,
    *,
    product_id: str | None = None,
    variant_id: str | None = None,
    epc: str | None = None,
    zone: str | None = None,
    rack: str | None = None,
    status: str | None = None,
) -> Interaction:
    data = {k: v for k, v in (("zone", zone), ("rack", rack), ("status", status)) if v is not None}
    return Interaction(
        event_id=_eid(event_id, "interaction", kind, product_id or ""),
        profile_id=shopper.profile_id,
        visit_id=visit.visit_id,
        kind=kind,
        occurred_at=at,
        product_id=product_id,
        variant_id=variant_id,
        epc=epc,
        data=data or None,
    )


def _guided(
    event_id: EventId,
    shopper: Shopper,
    visit: Visit,
    cards: tuple[GuidanceCard, ...],
    at: datetime,
) -> list[Interaction]:
    """A ``guided`` timeline entry per card delivered (the denominator of "acted upon")."""
    return [
        _interaction(
            event_id,
            shopper,
            visit,
            "guided",
            at,
            product_id=card.product_id,
            variant_id=card.variant_id,
            zone=card.zone,
            rack=card.rack,
            status=card.status,
        )
        for card in cards
    ]


def _interaction_events(
    store: StoreId, interactions: list[Interaction], now: datetime
) -> list[InteractionEvent]:
    # ``guided`` stays on the timeline: the phone already got the guidance itself.
    return [
        InteractionEvent(
            event_id=i.event_id,
            store=store,
            created_at=now,
            shopper=i.profile_id,
            visit_id=i.visit_id,
            interaction=i.kind,
            product_id=i.product_id,
            variant_id=i.variant_id,
        )
        for i in interactions
        if i.kind != "guided"
    ]

"""Every query of the fact consumer: loading the engine's context, applying its decision.

Privacy rules enforced here, where facts enter:

- A device token is resolved to an :class:`AppInstall` through the token
  index (:mod:`server.installs.token_index`: the fact's window and its
  neighbours, for clock skew between phone and server; a token matching two
  installs is refused). The token seen is never written anywhere.
- With no consent at all, the device is counted as footfall under a keyed hash
  (HMAC-SHA256 with the server's secret and the UTC day — a salt that rotates
  daily), never the token or the install id in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.engine import (
    Consents,
    Context,
    Decision,
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
from server.installs.token_index import resolve_install
from server.models import (
    Channel,
    Consent,
    InteractionKind,
    Item,
    ItemObservation,
    ItemStatus,
    Offer,
    OfferDelivery,
    PendingPickup,
    ProcessedEvent,
    Product,
    ProductView,
    ProfileInteraction,
    Rack,
    ShopperProfile,
    StaffAlert,
    StaffTask,
    StoreVisit,
    Variant,
    VisitEngineState,
    WebhookEndpoint,
    Zone,
)
from server.models.journeys import DeviceKind
from server.webhooks.service import active_endpoints, enqueue_interaction
from vitrine.contracts.events import OfferEvent, StaffAlertEvent, StaffTaskEvent
from vitrine.contracts.facts import (
    Fact,
    ItemArrived,
    ItemDeparted,
    ItemMoved,
    ShopperDwelled,
    ShopperEntered,
    ShopperLeft,
    ShopperZoneChanged,
)
from vitrine.contracts.layout import ZoneType

__all__ = [
    "Lookups",
    "UnknownStoreError",
    "apply_decision",
    "footfall_hash",
    "load_context",
    "resolve_install",
]

#: Deliveries counted against an offer's ``max_per_profile``: a month, the
#: horizon over which a repeated offer starts to feel like nagging.
OFFER_CAP_WINDOW = timedelta(days=30)
#: Views loaded per shopper: far more than any guidance shows (``max_cards``),
#: bounded so one heavy browser cannot make a fact slow.
MAX_VIEWS = 200

ShopperFact = ShopperEntered | ShopperZoneChanged | ShopperDwelled | ShopperLeft


class UnknownStoreError(LookupError):
    """A fact for a store with no layout in the database (dead-lettered)."""


def footfall_hash(key: bytes, subject: str, at: datetime) -> str:
    """The keyed, daily-rotating hash that counts an unconsenting device (64 hex)."""
    message = f"{at.date().isoformat()}\x1f{subject}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Lookups:
    """What one transaction of the ingest reads more than once: loaded once, then kept.

    A worker applies a batch of facts in one transaction (docs/engine.md,
    "Batches"); most of what each fact's context needs either cannot change
    under the ingest's feet for the length of that transaction, or changes only
    through the ingest's own writes in it:

    - a store's zones, the layout's racks, the variant of a GTIN, the active
      offers: the ingest never writes them; an edit committed by the admin API
      mid-batch is seen from the next batch (a batch lasts milliseconds to a
      second, as a single fact's transaction did for its own reads);
    - the items of the batch's EPCs (one ``IN`` query, see :meth:`preload`): the
      ingest is the only writer of an item's place and status, and the rows
      here are the session's own objects, so its writes are what later facts see;
    - the ``processed_events`` of the batch's event ids (one ``IN`` query), plus
      those recorded in this transaction (:meth:`mark_processed`).

    One instance per transaction, never shared between sessions or threads. A
    single fact gets a fresh one: the same code path, one fact long.
    """

    __slots__ = (
        "_endpoints",
        "_held",
        "_items",
        "_offers",
        "_processed",
        "_racks",
        "_variants",
        "_zones",
    )

    def __init__(self) -> None:
        self._zones: dict[str, dict[str, ZoneInfo]] = {}
        self._racks: dict[tuple[str, str], bool] = {}
        self._variants: dict[str, Variant | None] = {}
        self._offers: tuple[OfferRule, ...] | None = None
        self._endpoints: Sequence[WebhookEndpoint] | None = None
        #: EPC → the session's row (strongly held: the identity map is weak), or None.
        self._items: dict[str, Item | None] = {}
        #: event ids known processed; ``None`` while not preloaded (ask per fact).
        self._processed: set[str] | None = None
        #: Rows read that the decision's application reads again by primary key.
        self._held: list[object] = []

    @property
    def batched(self) -> bool:
        """True once :meth:`preload` ran: this transaction holds a batch of facts."""
        return self._processed is not None

    def preload(self, session: Session, consumer: str, facts: Iterable[Fact]) -> None:
        """Two queries for the whole batch: its processed event ids and its items."""
        facts = list(facts)
        event_ids = sorted({f.event_id for f in facts})
        self._processed = set()
        for chunk in _chunks(event_ids):
            self._processed.update(
                session.exec(
                    select(ProcessedEvent.event_id).where(
                        ProcessedEvent.consumer == consumer,
                        col(ProcessedEvent.event_id).in_(chunk),
                    )
                )
            )
        epcs = sorted(
            {f.epc for f in facts if isinstance(f, ItemArrived | ItemMoved | ItemDeparted)}
            - self._items.keys()
        )
        for chunk in _chunks(epcs):
            found = {
                row.epc: row for row in session.exec(select(Item).where(col(Item.epc).in_(chunk)))
            }
            for epc in chunk:
                self._items[epc] = found.get(epc)

    def processed(self, session: Session, consumer: str, event_id: str) -> bool:
        if self._processed is not None:
            return event_id in self._processed
        return session.get(ProcessedEvent, (consumer, event_id)) is not None

    def mark_processed(self, event_id: str) -> None:
        if self._processed is not None:
            self._processed.add(event_id)

    def zones(self, session: Session, store: str) -> dict[str, ZoneInfo]:
        zones = self._zones.get(store)
        if zones is None:
            zones = {
                z.id: ZoneInfo(z.id, z.name, z.type)
                for z in session.exec(select(Zone).where(Zone.store_id == store))
            }
            self._zones[store] = zones
        return zones

    def rack_exists(self, session: Session, store: str, rack: str) -> bool:
        known = self._racks.get((store, rack))
        if known is None:
            known = session.get(Rack, (store, rack)) is not None
            self._racks[(store, rack)] = known
        return known

    def variant_of_gtin(self, session: Session, gtin: str) -> Variant | None:
        if gtin not in self._variants:
            self._variants[gtin] = session.exec(
                select(Variant).where(Variant.gtin14 == gtin)
            ).first()
        return self._variants[gtin]

    def offers(self, session: Session) -> tuple[OfferRule, ...]:
        if self._offers is None:
            self._offers = _offers(session)
        return self._offers

    def webhook_endpoints(self, session: Session) -> Sequence[WebhookEndpoint]:
        """The active webhook endpoints, read once per transaction (like the offers)."""
        if self._endpoints is None:
            self._endpoints = active_endpoints(session)
        return self._endpoints

    def item(self, session: Session, epc: str) -> Item | None:
        if epc not in self._items:
            self._items[epc] = session.get(Item, epc)
        return self._items[epc]

    def add_item(self, row: Item) -> None:
        self._items[row.epc] = row

    def hold(self, *rows: object) -> None:
        """Keep ``rows`` alive for the transaction (the session's identity map is weak),
        so that a later ``session.get`` of them is answered without a query."""
        self._held.extend(r for r in rows if r is not None)


#: Ids per ``IN (...)`` list: SQLite's default limit of host parameters is
#: 32,766 since 3.32 (999 before; https://sqlite.org/limits.html §9), PostgreSQL's
#: 65,535; 500 stays under both with room and keeps each statement small.
IN_CHUNK = 500


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


def load_context(
    session: Session,
    fact: Fact,
    *,
    key: bytes,
    settings: EngineSettings,
    period_s: int,
    lookups: Lookups | None = None,
) -> Context:
    lookups = lookups if lookups is not None else Lookups()
    zones = lookups.zones(session, fact.store)
    if not zones:
        raise UnknownStoreError(fact.store)
    ctx = Context(store=fact.store, zones=zones, settings=settings)
    if isinstance(fact, ShopperEntered | ShopperZoneChanged | ShopperDwelled | ShopperLeft):
        return _shopper_context(session, fact, ctx, key=key, period_s=period_s, lookups=lookups)
    if isinstance(fact, ItemArrived | ItemMoved | ItemDeparted):
        return _item_context(session, fact, ctx, lookups)
    return ctx


# -- shopper facts -----------------------------------------------------------------------


def _shopper_context(
    session: Session,
    fact: ShopperFact,
    ctx: Context,
    *,
    key: bytes,
    period_s: int,
    lookups: Lookups,
) -> Context:
    at = fact.occurred_at
    subject = f"device:{fact.device}"
    profile: ShopperProfile | None = None
    if fact.device_kind == "app":
        install = resolve_install(session, fact.device, at, period_s)
        if install is not None:
            subject = f"install:{install.id}"
            if install.profile_id is not None:
                profile = session.get(ShopperProfile, install.profile_id)
    consents = _consents(session, profile.id) if profile is not None else Consents()
    if profile is None or not consents.any:
        hashed = footfall_hash(key, subject, at)
        visit_row = session.exec(
            select(StoreVisit)
            .where(StoreVisit.store_id == fact.store, StoreVisit.footfall_hash == hashed)
            .where(col(StoreVisit.ended_at).is_(None))
            .order_by(col(StoreVisit.started_at).desc())
        ).first()
        visit = _visit(session, visit_row, lookups) if visit_row is not None else None
        return _replace(ctx, footfall_hash=hashed, visit=visit)
    shopper = _shopper(session, profile, consents, at, ctx.settings, fact.store)
    visit_row = session.exec(
        select(StoreVisit)
        .where(StoreVisit.store_id == fact.store, StoreVisit.profile_id == profile.id)
        .where(col(StoreVisit.ended_at).is_(None))
        .order_by(col(StoreVisit.started_at).desc())
    ).first()
    visit = _visit(session, visit_row, lookups) if visit_row is not None else None
    product_ids = {v.product_id for v in shopper.views}
    stock = _stock(session, fact.store, product_ids)
    held = {(s.product_id, s.size) for s in stock} | {(s.product_id, None) for s in stock}
    wanted = {(v.product_id, v.size or shopper.known_size) for v in shopper.views}
    elsewhere = _elsewhere(session, fact.store, wanted - held)
    return _replace(
        ctx,
        shopper=shopper,
        visit=visit,
        stock=stock,
        elsewhere=elsewhere,
        offers=lookups.offers(session),
    )


def _replace(ctx: Context, **changes: object) -> Context:
    from dataclasses import replace

    return replace(ctx, **changes)  # type: ignore[arg-type]


def _consents(session: Session, profile_id: str) -> Consents:
    granted = {
        c.purpose.value
        for c in session.exec(select(Consent).where(Consent.profile_id == profile_id))
        if c.granted
    }
    return Consents(
        guidance="guidance" in granted,
        staff_recognition="staff_recognition" in granted,
        journey_profile="journey_profile" in granted,
    )


def _shopper(
    session: Session,
    profile: ShopperProfile,
    consents: Consents,
    at: datetime,
    settings: EngineSettings,
    store: str,
) -> Shopper:
    rows = session.exec(
        select(ProductView, Product, Variant)
        .join(Product, col(Product.id) == col(ProductView.product_id))
        .join(Variant, col(Variant.id) == col(ProductView.variant_id), isouter=True)
        .where(ProductView.profile_id == profile.id)
        .where(col(ProductView.viewed_at) >= at - settings.view_window)
        .order_by(col(ProductView.viewed_at).desc())
        .limit(MAX_VIEWS)
    ).all()
    views = tuple(
        ViewedProduct(
            product_id=product.id,
            name=product.name,
            viewed_at=view.viewed_at,
            category=product.category,
            variant_id=variant.id if variant is not None else None,
            size=variant.size if variant is not None else None,
        )
        for view, product, variant in rows
    )
    visits_before = session.exec(
        select(sa.func.count())
        .select_from(StoreVisit)
        .where(StoreVisit.profile_id == profile.id)
        .where(col(StoreVisit.ended_at).is_not(None))
    ).one()
    history: dict[str, int] = defaultdict(int)
    for offer_id, count in session.exec(
        select(OfferDelivery.offer_id, sa.func.count())
        .where(OfferDelivery.profile_id == profile.id)
        .where(col(OfferDelivery.delivered_at) >= at - OFFER_CAP_WINDOW)
        .group_by(col(OfferDelivery.offer_id))
    ):
        history[offer_id] = count
    # Click & collect orders waiting in this store (order ids: what staff look up).
    pickups = session.exec(
        select(PendingPickup.order_id)
        .where(PendingPickup.profile_id == profile.id, PendingPickup.store_id == store)
        .where(col(PendingPickup.collected_at).is_(None))
        .order_by(col(PendingPickup.created_at))
    ).all()
    segments = {"returning" if visits_before else "first_visit"}
    if profile.loyalty_tier:
        segments.add(f"tier:{profile.loyalty_tier}")
    return Shopper(
        profile_id=profile.id,
        # Staff see a display name or a pseudonym derived from the profile id.
        label=profile.display_name or f"Shopper {profile.id[:6]}",
        consents=consents,
        tier=profile.loyalty_tier,
        known_size=profile.known_size,
        segments=frozenset(segments),
        views=views,
        click_and_collect=tuple(pickups),
        visits_before=int(visits_before),
        offer_history=dict(history),
    )


def _stock(session: Session, store: str, product_ids: Iterable[str]) -> tuple[StockLine, ...]:
    ids = list(product_ids)
    if not ids:
        return ()
    rows = session.execute(
        sa.select(
            col(Variant.product_id),
            col(Item.variant_id),
            col(Variant.size),
            col(Item.zone_id),
            col(Item.rack_id),
            sa.func.count(),
            sa.func.max(Item.last_seen_at),
        )
        .select_from(Item)
        .join(Variant, col(Variant.id) == col(Item.variant_id))
        .where(col(Item.store_id) == store, col(Item.status) == ItemStatus.IN_STOCK)
        .where(col(Item.zone_id).is_not(None), col(Variant.product_id).in_(ids))
        .group_by(
            col(Variant.product_id),
            col(Item.variant_id),
            col(Variant.size),
            col(Item.zone_id),
            col(Item.rack_id),
        )
    ).all()
    return tuple(
        StockLine(pid, vid, size, zone, rack, int(count), seen)
        for pid, vid, size, zone, rack, count, seen in rows
        if vid is not None and zone is not None and seen is not None
    )


def _elsewhere(
    session: Session, store: str, missing: set[tuple[str, str | None]]
) -> dict[tuple[str, str | None], str]:
    """For each (product, size) not here, the other store holding most of it.

    Stores carry no coordinates yet, so "nearest" is approximated by "has the
    most units" (ties: smallest store id); docs/engine.md.
    """
    ids = sorted({pid for pid, _ in missing})
    if not ids:
        return {}
    rows = session.exec(
        select(Item.store_id, Variant.product_id, Variant.size, sa.func.count())
        .select_from(Item)
        .join(Variant, col(Variant.id) == col(Item.variant_id))
        .where(col(Item.store_id) != store, Item.status == ItemStatus.IN_STOCK)
        .where(col(Item.zone_id).is_not(None), col(Variant.product_id).in_(ids))
        .group_by(col(Item.store_id), col(Variant.product_id), col(Variant.size))
    ).all()
    best: dict[tuple[str, str | None], tuple[int, str]] = {}
    for other, pid, size, count in rows:
        if other is None:
            continue
        for key in ((pid, size), (pid, None)):
            if key in missing:
                current = best.get(key)
                candidate = (-int(count), other)
                if current is None or candidate < current:
                    best[key] = candidate
    return {key: other for key, (_, other) in best.items()}


def _offers(session: Session) -> tuple[OfferRule, ...]:
    return tuple(
        OfferRule(
            offer_id=o.id,
            title=o.title,
            body=o.body,
            moments=frozenset(o.moments),  # type: ignore[arg-type]
            priority=o.priority,
            segments=frozenset(o.segments),
            tiers=frozenset(o.tiers),
            categories=frozenset(o.categories),
            min_visits=o.min_visits,
            max_per_profile=o.max_per_profile,
            active=o.active,
        )
        for o in session.exec(select(Offer).where(col(Offer.active).is_(True)))
    )


def _visit(session: Session, row: StoreVisit, lookups: Lookups) -> Visit:
    state = session.get(VisitEngineState, row.id)
    # Applying the decision reads both again by primary key: held, they are
    # found in the session instead of queried a second time.
    lookups.hold(row, state)
    base = Visit(row.id, row.started_at, row.last_zone_id, profile_id=row.profile_id)
    if state is None:
        return base
    return Visit(
        visit_id=row.id,
        started_at=row.started_at,
        zone=row.last_zone_id,
        profile_id=row.profile_id,
        proximity_done=frozenset(state.proximity_done),
        tasks_done=frozenset(state.tasks_done),
        offers_sent=frozenset(state.offers_sent),
        staff_alerts=state.staff_alerts,
        offer_pushes=state.offer_pushes,
        tried_on=state.tried_on,
        bought=state.bought,
    )


# -- item facts --------------------------------------------------------------------------


def _item_context(
    session: Session, fact: ItemArrived | ItemMoved | ItemDeparted, ctx: Context, lookups: Lookups
) -> Context:
    row = lookups.item(session, fact.epc)
    variant: Variant | None = None
    if row is not None and row.variant_id is not None:
        variant = session.get(Variant, row.variant_id)
    elif fact.gtin is not None:
        variant = lookups.variant_of_gtin(session, fact.gtin)
    item = ItemState(
        epc=fact.epc,
        product_id=variant.product_id if variant is not None else None,
        variant_id=variant.id if variant is not None else None,
        sold=row is not None and row.status == ItemStatus.SOLD,
        zone=row.zone_id if row is not None and row.store_id == fact.store else None,
    )
    present: list[Presence] = []
    if ctx.zone_type(fact.zone) in (ZoneType.FITTING_ROOM, ZoneType.TILL) and not item.sold:
        rows = session.exec(
            select(StoreVisit)
            .where(StoreVisit.store_id == fact.store, StoreVisit.last_zone_id == fact.zone)
            .where(col(StoreVisit.ended_at).is_(None), col(StoreVisit.profile_id).is_not(None))
        ).all()
        for visit_row in rows:
            assert visit_row.profile_id is not None
            profile = session.get(ShopperProfile, visit_row.profile_id)
            if profile is None:
                continue
            consents = _consents(session, profile.id)
            shopper = _shopper(
                session, profile, consents, fact.occurred_at, ctx.settings, fact.store
            )
            present.append(Presence(_visit(session, visit_row, lookups), shopper))
    return _replace(ctx, item=item, present=tuple(present))


# -- applying a decision -----------------------------------------------------------------


def apply_decision(
    session: Session,
    fact: Fact,
    ctx: Context,
    decision: Decision,
    lookups: Lookups | None = None,
    *,
    flush: bool = True,
) -> None:
    """Write what ``decision`` changes into ``session`` (the caller commits).

    ``flush=False`` leaves the last rows pending (a batch's item-only facts).
    """
    lookups = lookups if lookups is not None else Lookups()
    opened = decision.visit_open
    if opened is not None:
        new_visit = StoreVisit(
            id=opened.visit_id,
            store_id=fact.store,
            profile_id=opened.profile_id,
            device_kind=DeviceKind(opened.device_kind),
            footfall_hash=opened.footfall_hash,
            started_at=opened.started_at,
            entry_zone_id=opened.zone,
            last_zone_id=opened.zone,
        )
        session.add(new_visit)
        session.flush()
        # Held, so the ``session.get`` below finds it without reading it back.
        lookups.hold(new_visit)
    for visit in decision.visits:
        row = session.get(StoreVisit, visit.visit_id)
        if row is None:
            continue
        row.last_zone_id = visit.zone
        state: VisitEngineState | None = None
        if opened is None or visit.visit_id != opened.visit_id:
            # A visit opened by this decision has no engine state yet: not asked.
            state = session.get(VisitEngineState, visit.visit_id)
        if state is None:
            state = VisitEngineState(visit_id=visit.visit_id)
        state.proximity_done = sorted(visit.proximity_done)
        state.tasks_done = sorted(visit.tasks_done)
        state.offers_sent = sorted(visit.offers_sent)
        state.staff_alerts = visit.staff_alerts
        state.offer_pushes = visit.offer_pushes
        state.tried_on = visit.tried_on
        state.bought = visit.bought
        session.add(row)
        session.add(state)
    closed = decision.visit_close
    if closed is not None:
        row = session.get(StoreVisit, closed.visit_id)
        if row is not None:
            row.ended_at = closed.ended_at
            row.last_zone_id = closed.last_zone
            session.add(row)
    if decision.item is not None:
        _apply_item(session, fact, ctx, decision, lookups)
    for i in decision.interactions:
        interaction = ProfileInteraction(
            event_id=i.event_id,
            profile_id=i.profile_id,
            channel=Channel.STORE,
            kind=InteractionKind(i.kind),
            product_id=i.product_id,
            variant_id=i.variant_id,
            epc=i.epc,
            store_id=fact.store,
            visit_id=i.visit_id,
            occurred_at=i.occurred_at,
            data=i.data,
        )
        session.add(interaction)
        # Owed to the CRM webhooks in this same transaction.
        enqueue_interaction(session, interaction, i.occurred_at, lookups.webhook_endpoints(session))
    for event in decision.events:
        if isinstance(event, StaffAlertEvent):
            profile_id = ctx.shopper.profile_id if ctx.shopper is not None else None
            session.add(
                StaffAlert(
                    id=event.alert_id,
                    store_id=fact.store,
                    zone_id=event.zone,
                    created_at=event.created_at,
                    updated_at=event.created_at,
                    visit_id=event.visit_id,
                    profile_id=profile_id,
                    payload=event.model_dump(mode="json"),
                )
            )
        elif isinstance(event, StaffTaskEvent):
            session.add(
                StaffTask(
                    id=event.task_id,
                    store_id=fact.store,
                    zone_id=event.zone,
                    created_at=event.created_at,
                    updated_at=event.created_at,
                    task=event.task,
                    text=event.text,
                    variant_id=event.variant_id,
                    visit_id=event.visit_id,
                )
            )
        elif isinstance(event, OfferEvent):
            session.add(
                OfferDelivery(
                    offer_id=event.offer_id,
                    profile_id=event.shopper,
                    visit_id=event.visit_id,
                    moment=event.moment,
                    delivered_at=event.created_at,
                )
            )
    if flush:
        session.flush()


def _apply_item(
    session: Session, fact: Fact, ctx: Context, decision: Decision, lookups: Lookups
) -> None:
    change = decision.item
    assert change is not None and isinstance(fact, ItemArrived | ItemMoved | ItemDeparted)
    rack = change.rack
    if rack is not None and not lookups.rack_exists(session, fact.store, rack):
        rack = None  # a rack the layout does not know: keep the zone, drop the rack
    row = lookups.item(session, change.epc)
    if row is None:
        row = Item(epc=change.epc, gtin14=fact.gtin, serial=fact.serial)
        lookups.add_item(row)
    if row.variant_id is None and ctx.item is not None:
        row.variant_id = ctx.item.variant_id
    row.store_id = fact.store
    row.zone_id = change.zone
    row.rack_id = rack if change.zone is not None else None
    row.last_seen_at = change.seen_at
    row.status = ItemStatus.SOLD if change.sold else ItemStatus.IN_STOCK
    session.add(row)
    # The observation history (EPCIS per period): every applied item fact, one row.
    session.add(
        ItemObservation(
            event_id=fact.event_id,
            epc=change.epc,
            store_id=fact.store,
            zone_id=fact.zone,
            kind=fact.kind,
            sold=change.sold,
            occurred_at=fact.occurred_at,
        )
    )

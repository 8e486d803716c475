"""The engine's rules, one behaviour per test, on plain in-memory contexts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.engine import (
    Consents,
    Context,
    ItemState,
    OfferRule,
    Presence,
    Visit,
    decide,
)
from vitrine.contracts.events import (
    GuidanceEvent,
    InteractionEvent,
    OfferEvent,
    StaffAlertEvent,
    StaffTaskEvent,
    VisitClosedEvent,
)
from vitrine.contracts.facts import Fact, ItemDeparted, ReadsLost, make_event_id
from vitrine.contracts.ids import Epc

from .helpers import (
    ALL,
    GATEWAY,
    STORE,
    T0,
    TOKEN,
    context,
    entered,
    item_arrived,
    left,
    moved,
    shopper,
)

NOW = T0 + timedelta(seconds=1)


def _of(events: tuple[object, ...], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def _open_visit(**kw: object) -> Visit:
    base: dict[str, object] = {
        "visit_id": "v-1",
        "started_at": T0,
        "zone": "entrance",
        "profile_id": "p-1",
    }
    base.update(kw)
    return Visit(**base)  # type: ignore[arg-type]


def test_arrival_guidance_locates_viewed_products_in_the_wanted_size() -> None:
    decision = decide(entered(), context(shopper=shopper()), NOW)

    [guidance] = _of(decision.events, GuidanceEvent)
    assert guidance.moment == "arrival" and guidance.shopper == "p-1"
    a, b = guidance.cards
    # A in M: the place holding most units of M (not the L rail with 7).
    assert (a.product_id, a.status, a.zone, a.rack, a.count, a.size) == (
        "prod-a",
        "on_floor",
        "women",
        "r3",
        3,
        "M",
    )
    assert a.seen_at == T0 - timedelta(minutes=5)
    # B viewed without a size: the known size M, only in the stockroom.
    assert (b.product_id, b.status, b.size, b.count) == ("prod-b", "stockroom_only", "M", 2)
    assert guidance.message is not None
    assert "Women, rack r3: 3 in M" in guidance.message
    assert "Wool coat: only in stockroom — ask staff" in guidance.message
    assert decision.visit_open is not None and decision.visit_open.profile_id == "p-1"
    assert decision.visit_open.footfall_hash is None


def test_arrival_alerts_staff_with_context_and_asks_for_the_stockroom_size() -> None:
    decision = decide(entered(), context(shopper=shopper()), NOW)

    [alert] = _of(decision.events, StaffAlertEvent)
    assert alert.shopper_label == "Camille" and alert.tier == "gold"
    assert alert.click_and_collect == ("order 1042",)
    assert [c.product_id for c in alert.cards] == ["prod-a", "prod-b"]
    [task] = _of(decision.events, StaffTaskEvent)
    assert task.task == "bring_to_floor" and task.variant_id == "var-b-m"
    assert task.text == "Bring size M of Wool coat to the floor"
    assert "Camille" not in task.text
    [visit] = decision.visits
    assert visit.staff_alerts == 1 and visit.tasks_done == {"var-b-m"}


def test_not_in_store_names_another_store_or_online_pickup() -> None:
    ctx = context(shopper=shopper(), stock=(), elsewhere={("prod-a", "M"): "paris-2"})
    [guidance] = _of(decide(entered(), ctx, NOW).events, GuidanceEvent)
    cards = {c.product_id: c for c in guidance.cards}
    a, b = cards["prod-a"], cards["prod-b"]
    assert (a.status, a.nearest_store) == ("not_in_store", "paris-2")
    assert (b.status, b.nearest_store) == ("not_in_store", None)
    assert guidance.message is not None and "order online for pickup" in guidance.message


def test_views_outside_the_window_are_not_what_they_came_for() -> None:
    old = replace(shopper().views[1], viewed_at=T0 - timedelta(days=31))
    ctx = context(shopper=shopper(views=(shopper().views[0], old)))
    [guidance] = _of(decide(entered(), ctx, NOW).events, GuidanceEvent)
    assert [c.product_id for c in guidance.cards] == ["prod-a"]


def test_cards_rank_floor_before_stockroom_before_elsewhere() -> None:
    views = tuple(reversed(shopper().views))  # B viewed last
    ctx = context(shopper=shopper(views=views))
    [guidance] = _of(decide(entered(), ctx, NOW).events, GuidanceEvent)
    assert [c.status for c in guidance.cards] == ["on_floor", "stockroom_only"]


CONSENT_MATRIX = [
    Consents(guidance=g, staff_recognition=s, journey_profile=j)
    for g in (False, True)
    for s in (False, True)
    for j in (False, True)
]


@pytest.mark.parametrize("consents", CONSENT_MATRIX, ids=repr)
def test_each_purpose_gates_its_own_output(consents: Consents) -> None:
    ctx = context(shopper=shopper(consents) if consents.any else None, footfall_hash="h" * 64)
    decision = decide(entered(), ctx, NOW)
    events = decision.events
    assert bool(_of(events, GuidanceEvent)) == consents.guidance
    assert bool(_of(events, StaffAlertEvent)) == consents.staff_recognition
    assert bool(_of(events, StaffTaskEvent)) == (consents.guidance or consents.staff_recognition)
    assert bool(decision.interactions) == consents.journey_profile
    assert bool(_of(events, InteractionEvent)) == consents.journey_profile
    assert decision.visit_open is not None
    if consents.any:
        assert decision.visit_open.profile_id == "p-1"
        assert decision.visit_open.footfall_hash is None
    else:
        assert decision.visit_open.profile_id is None
        assert decision.visit_open.footfall_hash == "h" * 64
        assert decision.events == () and decision.interactions == ()


def test_no_consent_is_footfall_only_through_the_whole_visit() -> None:
    anon = context(footfall_hash="f" * 64)
    visit = Visit("v-1", T0, "entrance")
    walked = decide(moved("women"), replace(anon, visit=visit), NOW)
    assert walked.events == () and walked.visits[0].zone == "women"
    closed = decide(left(), replace(anon, visit=walked.visits[0]), NOW)
    assert closed.visit_close is not None and closed.events == ()


def test_staff_alerts_are_capped_per_visit() -> None:
    ctx = context(shopper=shopper(), visit=_open_visit(staff_alerts=1))
    decision = decide(entered(n=1), ctx, NOW)
    assert _of(decision.events, StaffAlertEvent) == []
    assert decision.visit_open is None


def test_walking_into_a_zone_with_a_viewed_item_guides_once_per_product() -> None:
    ctx = context(shopper=shopper(), visit=_open_visit())
    first = decide(moved("women"), ctx, NOW)
    [guidance] = _of(first.events, GuidanceEvent)
    assert guidance.moment == "zone"
    assert [(c.product_id, c.rack, c.count) for c in guidance.cards] == [("prod-a", "r3", 3)]
    # The card delivered is ``guided`` (analytics' denominator), then ``located``.
    assert [i.kind for i in first.interactions] == ["guided", "located"]

    # Back out and in again: no second proximity guidance for A.
    again = decide(moved("women", frm="men", n=1), replace(ctx, visit=first.visits[0]), NOW)
    assert _of(again.events, GuidanceEvent) == []


def test_walking_into_a_zone_without_viewed_items_is_quiet() -> None:
    ctx = context(shopper=shopper(), visit=_open_visit())
    assert _of(decide(moved("back"), ctx, NOW).events, GuidanceEvent) == []


def _present(consents: Consents = ALL, zone: str = "fit-1", pid: str = "p-1") -> Presence:
    return Presence(
        visit=_open_visit(zone=zone, profile_id=pid),
        shopper=shopper(consents, profile_id=pid),
    )


ITEM_A = ItemState(epc="3034257BF7194E4000001A85", product_id="prod-a", variant_id="var-a-m")


def test_item_in_the_fitting_room_is_tried_on_by_the_consenting_shopper_there() -> None:
    ctx = context(item=replace(ITEM_A, zone="women"), present=(_present(),))
    decision = decide(item_arrived("fit-1"), ctx, NOW)
    # Trying on a product viewed online also means it was found (funnel steps nest).
    located, interaction = decision.interactions
    assert (located.kind, located.product_id) == ("located", "prod-a")
    assert (interaction.kind, interaction.product_id, interaction.profile_id) == (
        "tried_on",
        "prod-a",
        "p-1",
    )
    assert decision.visits[0].tried_on == 1
    assert "prod-a" in decision.visits[0].proximity_done
    assert decision.item is not None and decision.item.zone == "fit-1" and not decision.item.sold
    assert [e.interaction for e in _of(decision.events, InteractionEvent)] == [
        "located",
        "tried_on",
    ]


def test_an_item_already_located_on_the_walk_is_not_located_again() -> None:
    present = _present()
    present = replace(present, visit=replace(present.visit, proximity_done=frozenset({"prod-a"})))
    ctx = context(item=replace(ITEM_A, zone="women"), present=(present,))
    decision = decide(item_arrived("fit-1"), ctx, NOW)
    assert [i.kind for i in decision.interactions] == ["tried_on"]


def test_tried_on_needs_journey_profile() -> None:
    present = _present(Consents(guidance=True, staff_recognition=True))
    decision = decide(item_arrived("fit-1"), context(item=ITEM_A, present=(present,)), NOW)
    assert decision.interactions == () and decision.events == ()
    assert decision.item is not None


def test_till_read_sells_the_item_and_attributes_bought() -> None:
    ctx = context(item=ITEM_A, present=(_present(zone="till-1"),))
    decision = decide(item_arrived("till-1"), ctx, NOW)
    assert decision.item is not None and decision.item.sold
    assert [i.kind for i in decision.interactions] == ["located", "bought"]
    interaction = decision.interactions[-1]
    assert interaction.kind == "bought" and interaction.epc == ITEM_A.epc
    assert decision.visits[0].bought == 1


def test_a_sold_item_is_never_linked_to_someone_without_consent() -> None:
    present = _present(Consents(guidance=True), zone="till-1")
    decision = decide(item_arrived("till-1"), context(item=ITEM_A, present=(present,)), NOW)
    assert decision.item is not None and decision.item.sold
    assert decision.interactions == () and decision.visits == ()


def test_two_candidates_attribute_only_to_the_one_who_viewed_it() -> None:
    viewer = _present(zone="till-1")
    other = Presence(
        visit=_open_visit(visit_id="v-2", zone="till-1", profile_id="p-2"),
        shopper=shopper(profile_id="p-2", views=()),
    )
    decision = decide(item_arrived("till-1"), context(item=ITEM_A, present=(viewer, other)), NOW)
    assert {i.profile_id for i in decision.interactions} == {"p-1"}
    both_viewed = (viewer, replace(other, shopper=shopper(profile_id="p-2")))
    decision = decide(item_arrived("till-1"), context(item=ITEM_A, present=both_viewed), NOW)
    assert decision.interactions == ()


def test_a_sold_item_read_again_is_not_bought_twice() -> None:
    ctx = context(item=replace(ITEM_A, sold=True), present=(_present(zone="till-1"),))
    decision = decide(item_arrived("till-1", n=1), ctx, NOW)
    assert decision.interactions == () and decision.item is not None and decision.item.sold


def test_unknown_zone_changes_nothing() -> None:
    decision = decide(item_arrived("nowhere"), context(item=ITEM_A), NOW)
    assert decision.item is None and decision.note == "unknown zone"


def test_departure_clears_the_place_unless_already_seen_elsewhere() -> None:
    fact = ItemDeparted(
        event_id=make_event_id("dep"),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=T0,
        epc=Epc(ITEM_A.epc),
        zone="women",
    )
    gone = decide(fact, context(item=replace(ITEM_A, zone="women")), NOW)
    assert gone.item is not None and gone.item.zone is None
    stale = decide(fact, context(item=replace(ITEM_A, zone="men")), NOW)
    assert stale.item is None


def test_exit_closes_the_visit_with_its_summary() -> None:
    visit = _open_visit(tried_on=2, bought=1)
    decision = decide(left(), context(shopper=shopper(), visit=visit), NOW)
    assert decision.visit_close is not None and decision.visit_close.visit_id == "v-1"
    [summary] = _of(decision.events, VisitClosedEvent)
    assert (summary.tried_on, summary.bought, summary.duration_s) == (2, 1, 1200.0)
    assert [i.kind for i in decision.interactions] == ["left"]


def test_reads_lost_decides_nothing() -> None:
    fact = ReadsLost(
        event_id=make_event_id("lost"),
        store=STORE,
        gateway=GATEWAY,
        occurred_at=T0,
        reader="r-1",
        reason="overflow",
    )
    assert decide(fact, context(), NOW).events == ()


WELCOME = OfferRule("welcome", "Welcome", "10% today", frozenset({"arrival"}), priority=1)
COATS = OfferRule(
    "coats",
    "Coats",
    "Try the new coats",
    frozenset({"arrival", "zone", "exit"}),
    priority=5,
    categories=frozenset({"coats"}),
)
GOLD = OfferRule(
    "gold", "Gold", "Lounge", frozenset({"arrival"}), priority=9, tiers=frozenset({"platinum"})
)


def test_next_best_action_picks_the_highest_priority_eligible_offer() -> None:
    ctx = context(shopper=shopper(), offers=(WELCOME, COATS, GOLD))
    [offer] = _of(decide(entered(), ctx, NOW).events, OfferEvent)
    assert offer.offer_id == "coats"  # gold: wrong tier


def test_offers_are_quiet_in_fitting_rooms_and_capped_per_visit() -> None:
    ctx = context(shopper=shopper(), offers=(COATS,), visit=_open_visit(zone="fit-1"))
    # Entering the fitting room: nothing.
    assert _of(decide(moved("fit-1", frm="women"), ctx, NOW).events, OfferEvent) == []
    # Leaving it: only rules for the fitting_room moment qualify.
    after = OfferRule("after", "Liked it?", "Save it", frozenset({"fitting_room"}))
    ctx = replace(ctx, offers=(COATS, after))
    [offer] = _of(decide(moved("men", frm="fit-1"), ctx, NOW).events, OfferEvent)
    assert offer.offer_id == "after"
    # The per-visit cap.
    capped = replace(ctx, visit=_open_visit(zone="women", offer_pushes=2))
    assert _of(decide(moved("men", frm="women"), capped, NOW).events, OfferEvent) == []


def test_offers_once_per_visit_and_per_profile_cap() -> None:
    ctx = context(
        shopper=shopper(), offers=(COATS,), visit=_open_visit(offers_sent=frozenset({"coats"}))
    )
    assert _of(decide(moved("men"), ctx, NOW).events, OfferEvent) == []
    capped = replace(COATS, max_per_profile=1)
    ctx = context(
        shopper=shopper(offer_history={"coats": 1}), offers=(capped,), visit=_open_visit()
    )
    assert _of(decide(moved("men"), ctx, NOW).events, OfferEvent) == []


def test_no_offer_without_guidance_consent() -> None:
    ctx = context(shopper=shopper(Consents(staff_recognition=True)), offers=(WELCOME,))
    assert _of(decide(entered(), ctx, NOW).events, OfferEvent) == []


def test_a_missed_entry_makes_the_first_zone_change_the_arrival() -> None:
    decision = decide(moved("women"), context(shopper=shopper()), NOW)
    assert decision.visit_open is not None
    assert _of(decision.events, GuidanceEvent)[0].moment == "arrival"


@given(
    consents=st.sampled_from(CONSENT_MATRIX),
    fact_no=st.integers(0, 5),
    zone=st.sampled_from(["entrance", "women", "men", "back", "fit-1", "till-1", "exit"]),
)
def test_decisions_are_deterministic_and_never_leak_the_device(
    consents: Consents, fact_no: int, zone: str
) -> None:
    ctx: Context = context(
        shopper=shopper(consents) if consents.any else None, footfall_hash="f" * 64
    )
    facts: list[Fact] = [entered(zone, n=fact_no), moved(zone, n=fact_no), left(n=fact_no)]
    for fact in facts:
        first, second = decide(fact, ctx, NOW), decide(fact, ctx, NOW)
        assert first == second
        assert TOKEN not in repr(first)
        if not consents.any:
            assert first.events == () and first.interactions == ()


def test_an_open_visit_past_its_time_is_closed_and_the_shopper_arrives_anew() -> None:
    old = _open_visit(started_at=T0 - timedelta(days=1), staff_alerts=1)
    decision = decide(entered(), context(shopper=shopper(), visit=old), NOW)
    assert decision.visit_close is not None and decision.visit_close.visit_id == "v-1"
    assert decision.visit_close.ended_at == old.started_at + timedelta(hours=12)
    assert decision.visit_open is not None and decision.visit_open.visit_id != "v-1"
    assert _of(decision.events, StaffAlertEvent)  # a new visit: a new arrival alert

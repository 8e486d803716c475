from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from vitrine.contracts.facts import (
    FACT_KINDS,
    ItemMoved,
    ShopperEntered,
    dump_fact,
    make_event_id,
    parse_fact,
)
from vitrine.contracts.ids import DeviceToken, Epc, GatewayId, StoreId, ZoneId

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_fact_round_trips_through_json_with_its_kind() -> None:
    fact = ItemMoved(
        event_id=make_event_id("gw", "3074257BF7194E4000001A85", NOW),
        store=StoreId("s1"),
        gateway=GatewayId("gw"),
        occurred_at=NOW,
        epc=Epc("3074257BF7194E4000001A85"),
        zone=ZoneId("fitting-1"),
        from_zone=ZoneId("floor-a"),
    )
    back = parse_fact(dump_fact(fact))
    assert back == fact
    assert isinstance(back, ItemMoved)


def test_facts_are_frozen() -> None:
    fact = ShopperEntered(
        event_id=make_event_id("x"),
        store=StoreId("s1"),
        gateway=GatewayId("gw"),
        occurred_at=NOW,
        device=DeviceToken("t"),
        device_kind="app",
        zone=ZoneId("entrance"),
    )
    with pytest.raises(ValidationError):
        fact.zone = ZoneId("other")  # type: ignore[misc]


def test_unknown_kind_and_naive_time_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_fact(b'{"kind":"teleported","event_id":"e","store":"s","gateway":"g"}')
    with pytest.raises(ValidationError):
        parse_fact(
            b'{"kind":"shopper_left","event_id":"e","store":"s","gateway":"g",'
            b'"occurred_at":"2026-11-24T10:00:00","device":"d","device_kind":"app"}'
        )


def test_event_id_is_stable_and_distinguishes_content() -> None:
    assert make_event_id("a", 1) == make_event_id("a", 1)
    assert make_event_id("a", 1) != make_event_id("a", 2)
    assert len(make_event_id("a")) == 32


def test_fact_kinds_list_every_model() -> None:
    assert len(set(FACT_KINDS)) == 8

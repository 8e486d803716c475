from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitrine.contracts.ids import StoreId
from vitrine.contracts.topics import (
    TopicError,
    deadletter_topic,
    fact_topic,
    facts_subscription,
    gateway_state_topic,
    health_topic,
    parse_topic,
    shopper_out_topic,
    staff_out_topic,
)

segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)


@given(store=segment, kind=segment)
def test_fact_topic_round_trips(store: str, kind: str) -> None:
    parsed = parse_topic(fact_topic(StoreId(store), kind))
    assert (parsed.store, parsed.channel, parsed.kind) == (store, "facts", kind)


@given(store=segment, shopper=segment, kind=segment)
def test_shopper_topic_round_trips(store: str, shopper: str, kind: str) -> None:
    parsed = parse_topic(shopper_out_topic(StoreId(store), shopper, kind))
    assert (parsed.store, parsed.channel, parsed.shopper, parsed.kind) == (
        store,
        "out_shopper",
        shopper,
        kind,
    )


def test_other_builders_round_trip() -> None:
    s = StoreId("paris-01")
    assert parse_topic(staff_out_topic(s, "staff_alert")).channel == "out_staff"
    assert parse_topic(gateway_state_topic(s, "gw1")).gateway_id == "gw1"
    health = parse_topic(health_topic(s, "reader", "fx9600-1"))
    assert (health.device_kind, health.device) == ("reader", "fx9600-1")
    assert parse_topic(deadletter_topic(s, "parse")).kind == "parse"


@pytest.mark.parametrize("bad", ["+", "#", "a/b", "", "x" * 200, "sp ace"])
def test_wildcards_and_separators_cannot_enter_a_topic(bad: str) -> None:
    with pytest.raises(ValueError):
        fact_topic(StoreId(bad), "item_arrived")
    with pytest.raises(ValueError):
        shopper_out_topic(StoreId("s1"), bad, "guidance")


@pytest.mark.parametrize(
    "topic",
    [
        "vitrine/v2/s/facts/x",
        "vitrine/v1/s",
        "vitrine/v1/s/facts",
        "vitrine/v1/s/unknown/x",
        "vitrine/v1/+/facts/x",
        "other/v1/s/facts/x",
    ],
)
def test_parse_rejects_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_subscriptions_use_single_level_wildcards() -> None:
    assert facts_subscription() == "vitrine/v1/+/facts/+"
    assert facts_subscription(StoreId("s1")) == "vitrine/v1/s1/facts/+"

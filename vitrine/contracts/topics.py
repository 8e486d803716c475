"""Every Vitrine MQTT topic is built and parsed here, and nowhere else.

Namespace (ARCHITECTURE.md, "Contracts")::

    vitrine/v1/{store}/facts/{kind}                   gateway → server, QoS 1
    vitrine/v1/{store}/out/shopper/{shopper}/{kind}   server → mobile_api
    vitrine/v1/{store}/out/staff/{kind}               server → staff clients
    vitrine/v1/{store}/gateway/{gateway}/state        retained online/offline + last will
    vitrine/v1/{store}/health/{device_kind}/{device}  retained reader/scanner health
    vitrine/v1/{store}/deadletter/{stage}             rejected input, reason + original bytes

Vendor topics (Zebra, Impinj, ESPresense) are configuration, not code: see
:mod:`vitrine.contracts.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitrine.contracts.ids import IdError, StoreId, topic_segment

__all__ = [
    "NAMESPACE",
    "Channel",
    "ParsedTopic",
    "TopicError",
    "deadletter_subscription",
    "deadletter_topic",
    "fact_topic",
    "facts_subscription",
    "gateway_state_topic",
    "health_topic",
    "parse_topic",
    "shopper_out_subscription",
    "shopper_out_topic",
    "staff_out_subscription",
    "staff_out_topic",
]

NAMESPACE = "vitrine/v1"
ANY: Literal["+"] = "+"

Channel = Literal["facts", "out_shopper", "out_staff", "gateway_state", "health", "deadletter"]


class TopicError(ValueError):
    """A topic outside the Vitrine namespace or with a malformed level."""


def _store(store: str) -> str:
    return ANY if store == ANY else topic_segment(store, "store")


def fact_topic(store: StoreId, kind: str) -> str:
    return f"{NAMESPACE}/{topic_segment(store, 'store')}/facts/{topic_segment(kind, 'kind')}"


def facts_subscription(store: StoreId | Literal["+"] = ANY) -> str:
    """All facts of one store, or of every store with the default ``+``."""
    return f"{NAMESPACE}/{_store(store)}/facts/+"


def shopper_out_topic(store: StoreId, shopper: str, kind: str) -> str:
    return (
        f"{NAMESPACE}/{topic_segment(store, 'store')}/out/shopper/"
        f"{topic_segment(shopper, 'shopper')}/{topic_segment(kind, 'kind')}"
    )


def shopper_out_subscription(store: StoreId | Literal["+"] = ANY) -> str:
    return f"{NAMESPACE}/{_store(store)}/out/shopper/+/+"


def staff_out_topic(store: StoreId, kind: str) -> str:
    return f"{NAMESPACE}/{topic_segment(store, 'store')}/out/staff/{topic_segment(kind, 'kind')}"


def staff_out_subscription(store: StoreId | Literal["+"] = ANY) -> str:
    return f"{NAMESPACE}/{_store(store)}/out/staff/+"


def gateway_state_topic(store: StoreId, gateway_id: str) -> str:
    return (
        f"{NAMESPACE}/{topic_segment(store, 'store')}/gateway/"
        f"{topic_segment(gateway_id, 'gateway')}/state"
    )


def health_topic(store: StoreId, device_kind: Literal["reader", "scanner"], device: str) -> str:
    return (
        f"{NAMESPACE}/{topic_segment(store, 'store')}/health/{device_kind}/"
        f"{topic_segment(device, 'device')}"
    )


def deadletter_topic(store: StoreId, stage: str) -> str:
    return f"{NAMESPACE}/{topic_segment(store, 'store')}/deadletter/{topic_segment(stage, 'stage')}"


def deadletter_subscription(store: StoreId | Literal["+"] = ANY) -> str:
    return f"{NAMESPACE}/{_store(store)}/deadletter/+"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A Vitrine topic taken apart. ``kind`` is the fact/event kind or stage."""

    store: StoreId
    channel: Channel
    kind: str | None = None
    shopper: str | None = None
    gateway_id: str | None = None
    device_kind: str | None = None
    device: str | None = None


def parse_topic(topic: str) -> ParsedTopic:
    """Inverse of the builders above; raises :class:`TopicError` on anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != NAMESPACE:
        raise TopicError(f"not a {NAMESPACE} topic: {topic!r}")
    try:
        store = StoreId(topic_segment(parts[2], "store"))
        rest = [topic_segment(p, "level") for p in parts[3:]]
    except IdError as exc:
        raise TopicError(f"{topic!r}: {exc}") from exc
    match rest:
        case ["facts", kind]:
            return ParsedTopic(store, "facts", kind=kind)
        case ["out", "shopper", shopper, kind]:
            return ParsedTopic(store, "out_shopper", kind=kind, shopper=shopper)
        case ["out", "staff", kind]:
            return ParsedTopic(store, "out_staff", kind=kind)
        case ["gateway", gateway_id, "state"]:
            return ParsedTopic(store, "gateway_state", gateway_id=gateway_id)
        case ["health", ("reader" | "scanner") as device_kind, device]:
            return ParsedTopic(store, "health", device_kind=device_kind, device=device)
        case ["deadletter", stage]:
            return ParsedTopic(store, "deadletter", kind=stage)
    raise TopicError(f"unknown Vitrine topic layout: {topic!r}")

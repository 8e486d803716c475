"""Which reader (and which adapter) an incoming vendor topic belongs to.

Vendor topics are configuration (Zebra fixes none, WIRE-FORMATS.md §1): each
``readers[]`` entry of the store layout names its data topic and, optionally,
its management-events topic; ESPresense nodes publish under
``<espresense_prefix>/devices/#`` and ``…/rooms/#``. Topic filters may hold MQTT
wildcards; matching uses paho's implementation of MQTT 5 §4.7.
"""

from __future__ import annotations

from dataclasses import dataclass

from paho.mqtt.client import topic_matches_sub

from vitrine.contracts.layout import StoreLayout

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    #: The subscription filter this route came from.
    filter: str
    #: Adapter format name (``gateway.adapters.parse``'s ``fmt``).
    format: str
    #: The configured reader id, or ``None`` for ESPresense (room from the topic).
    reader: str | None


class Router:
    """Topic → route, from the layout; the first configured match wins."""

    def __init__(self, layout: StoreLayout) -> None:
        routes: list[Route] = []
        for reader in layout.readers:
            routes.append(Route(reader.topic, reader.format, reader.id))
            if reader.management_topic:
                routes.append(Route(reader.management_topic, reader.format, reader.id))
        if layout.scanners:
            prefix = layout.espresense_prefix.rstrip("/")
            routes.append(Route(f"{prefix}/devices/#", "espresense", None))
            routes.append(Route(f"{prefix}/rooms/#", "espresense", None))
        self.routes: tuple[Route, ...] = tuple(routes)

    @property
    def subscriptions(self) -> list[str]:
        """Distinct filters to subscribe to, in layout order."""
        return list(dict.fromkeys(r.filter for r in self.routes))

    def route(self, topic: str) -> Route | None:
        for r in self.routes:
            if topic_matches_sub(r.filter, topic):
                return r
        return None

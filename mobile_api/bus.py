"""mobile_api on the bus: shopper events in, phone-side check-in facts out.

Every instance subscribes to ``out/shopper/+/+`` of every store (non-shared,
so a shopper connected to any instance gets guidance produced anywhere) and
hands each message to the :class:`~mobile_api.stream.Hub` on the event loop.
The outbox in the database is the authoritative history: this subscription is
only the fast path, so the client uses a clean session (no broker-side queue
to overflow, QUALITY.md fact 2) and a gap after a reconnect is filled from the
outbox by the connection's sequencer. It resubscribes on every CONNACK
(QUALITY.md fact 4).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from mobile_api.stream import Hub
from vitrine.contracts.facts import ShopperEntered, ShopperZoneChanged, dump_fact
from vitrine.contracts.topics import (
    TopicError,
    fact_topic,
    parse_topic,
    shopper_out_subscription,
)
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

__all__ = ["Bus", "BusUnavailableError"]

log = logging.getLogger(__name__)

#: Seconds to wait for the broker's PUBACK of a check-in fact before answering 503.
PUBLISH_TIMEOUT_S = 5.0


class BusUnavailableError(RuntimeError):
    """The broker did not acknowledge a publish in time."""


class Bus:
    def __init__(self, mqtt_url: str, hub: Hub, loop: asyncio.AbstractEventLoop) -> None:
        self._hub = hub
        self._loop = loop
        self._target = parse_mqtt_url(mqtt_url)
        self._client, self._props = make_client(
            f"mobile-api-{uuid.uuid4().hex[:12]}", self._target, session_expiry_s=0
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self.connected = threading.Event()
        self.subscribed = threading.Event()

    def start(self) -> None:
        self._client.connect_async(
            self._target.host,
            self._target.port,
            keepalive=30,
            clean_start=True,
            properties=self._props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self.connected.set()
        client.subscribe(shopper_out_subscription(), qos=1)
        self.subscribed.set()
        log.info("mqtt connected, subscribed to shopper topics")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # One bad message never stops the loop: log its reason (not the shopper) and go on.
        try:
            parsed = parse_topic(message.topic)
            if parsed.channel != "out_shopper" or parsed.shopper is None:
                return
            body = orjson.loads(message.payload)
            seq = body.get("seq") if isinstance(body, dict) else None
            if seq is not None and not isinstance(seq, int):
                raise ValueError("seq is not an integer")
        except (TopicError, ValueError) as exc:
            log.warning("dropped a malformed shopper event", extra={"reason": str(exc)})
            return
        self._loop.call_soon_threadsafe(
            self._hub.dispatch, parsed.shopper, seq, bytes(message.payload)
        )

    def publish_fact(self, fact: ShopperEntered | ShopperZoneChanged) -> None:
        """Publish a fact at QoS 1 and wait for the broker's PUBACK (blocking: run in a thread)."""
        info = self._client.publish(fact_topic(fact.store, fact.kind), dump_fact(fact), qos=1)
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise BusUnavailableError(str(exc)) from exc
        if not info.is_published():
            raise BusUnavailableError("the broker did not acknowledge the fact")

"""A store's live staff feed as Server-Sent Events, bridged from MQTT.

``GET /v1/web/stores/{store}/stream`` (staff token in ``Authorization``, never
in the query string — the dashboard reads it with ``fetch``, not
``EventSource``, which cannot send headers). Each connection subscribes to:

- ``staff_out_subscription(store)`` — staff alerts and tasks (``vitrine.contracts.events``);
- ``vitrine/v1/<store>/health/+/+`` — reader and scanner health (retained);
- ``deadletter_subscription(store)`` — counted, never forwarded (payloads are raw device bytes);
- ``vitrine/v1/<store>/gateway/+/state`` — gateway online/offline (retained).

The browser's ``Origin``, when sent, must be this server's own origin: the
dashboard is served from here, and a page elsewhere must not read the feed
with a token it stole. SSE frames follow the WHATWG HTML "server-sent events"
format: ``event: <name>`` / ``data: <json>`` / blank line.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import paho.mqtt.client as mqtt
from fastapi import Request

from server.errors import Forbidden
from vitrine.contracts.ids import StoreId
from vitrine.contracts.topics import NAMESPACE, deadletter_subscription, staff_out_subscription
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

__all__ = ["StreamMessage", "check_origin", "sse_frame", "staff_feed"]

log = logging.getLogger(__name__)

#: Per-connection queue bound: a dashboard that stops reading loses the oldest
#: health frames rather than growing the server's memory; 1000 is minutes of a
#: busy store's staff events.
QUEUE_SIZE = 1000
#: A comment line this often keeps proxies (and the browser) from timing out an
#: idle stream; 15 s is under every common proxy idle timeout (nginx: 60 s).
KEEPALIVE_S = 15.0
#: How long to wait for the broker's SUBACK before saying hello anyway (the
#: feed still works once it subscribes): a local broker answers in milliseconds.
SUBSCRIBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One frame for the dashboard: an SSE event name and its JSON data."""

    event: str
    data: dict[str, object]


def sse_frame(message: StreamMessage) -> bytes:
    """The WHATWG ``text/event-stream`` encoding of one event (JSON has no raw newlines)."""
    return b"event: " + message.event.encode() + b"\ndata: " + orjson.dumps(message.data) + b"\n\n"


def check_origin(request: Request) -> None:
    """Refuse a browser request from another origin (no ``Origin`` = not a cross-site fetch)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != own:
        raise Forbidden("origin not allowed")


def _classify(store: str, topic: str, payload: bytes) -> StreamMessage | None:
    parts = topic.split("/")
    prefix = f"{NAMESPACE}/{store}/"
    if not topic.startswith(prefix):
        return None
    rest = parts[3:]
    try:
        if rest[:2] == ["out", "staff"]:
            return StreamMessage("staff", orjson.loads(payload))
        if rest[0] == "health" and len(rest) == 3:
            body = orjson.loads(payload) if payload else {}
            return StreamMessage(
                "health", {"device_kind": rest[1], "device": rest[2], "health": body}
            )
        if rest[0] == "gateway" and len(rest) == 3:
            return StreamMessage("gateway", {"gateway": rest[1], "state": payload.decode()[:64]})
        if rest[0] == "deadletter":
            return StreamMessage("deadletter", {"stage": rest[1] if len(rest) > 1 else ""})
    except (orjson.JSONDecodeError, UnicodeDecodeError, IndexError):
        log.warning("undecodable message on the staff feed", extra={"topic": topic})
    return None


async def staff_feed(mqtt_url: str, store: str) -> AsyncIterator[StreamMessage]:
    """Messages for ``store`` until the consumer stops iterating (its connection closed)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[StreamMessage] = asyncio.Queue(QUEUE_SIZE)
    subscribed = asyncio.Event()

    def put(message: StreamMessage) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(message)

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(
            [
                (staff_out_subscription(StoreId(store)), 1),
                (f"{NAMESPACE}/{store}/health/+/+", 0),
                (deadletter_subscription(StoreId(store)), 0),
                (f"{NAMESPACE}/{store}/gateway/+/state", 0),
            ]
        )

    def on_subscribe(*_: object) -> None:
        loop.call_soon_threadsafe(subscribed.set)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        message = _classify(store, msg.topic, bytes(msg.payload))
        if message is not None:
            loop.call_soon_threadsafe(put, message)

    # A clean, short session: a dashboard that reconnects re-reads state over REST.
    client, props = make_client(f"vitrine-web-{uuid.uuid4().hex[:12]}", parse_mqtt_url(mqtt_url))
    props.SessionExpiryInterval = 0
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    target = parse_mqtt_url(mqtt_url)
    client.connect_async(target.host, target.port, clean_start=True, properties=props)
    client.loop_start()
    try:
        # "hello" only once subscribed: a dashboard showing "live" misses nothing after it.
        try:
            await asyncio.wait_for(subscribed.wait(), timeout=SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            log.warning("staff feed: broker did not confirm the subscription in time")
        yield StreamMessage("hello", {"store": store})
        while True:
            try:
                yield await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                yield StreamMessage("keepalive", {})
    finally:
        client.disconnect()
        client.loop_stop()

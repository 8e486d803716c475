"""Shared machinery: a WebSocket sink, a fact watcher, a queue-filling publisher.

Everything runs on loopback against a broker the bench started itself.
Times are ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process
on the machine), so a publisher's stamp and a receiver's stamp compare.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from websockets.sync.server import Server, ServerConnection, serve

from vitrine.runtime.broker import free_port
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

__all__ = ["Arrivals", "FactWatcher", "Publisher", "WsSink", "forget_session", "wait_for"]


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.01) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class Arrivals:
    """Receive times of messages, with an optional key → time map for probes."""

    count: int = 0
    first: float | None = None
    last: float | None = None
    probes: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, now: float, probe: int | None = None) -> None:
        with self.lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now
            if probe is not None:
                self.probes[probe] = now

    def reset(self) -> None:
        with self.lock:
            self.count, self.first, self.last = 0, None, None
            self.probes.clear()


class WsSink:
    """A WebSocket server that counts what the bare relay sends it."""

    def __init__(self, probe: Callable[[bytes], int | None]) -> None:
        self.port = free_port()
        self.arrivals = Arrivals()
        self._probe = probe
        self._server: Server = serve(self._handle, "127.0.0.1", self.port, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _handle(self, conn: ServerConnection) -> None:
        for message in conn:
            data = message if isinstance(message, bytes) else message.encode()
            self.arrivals.hit(time.monotonic(), self._probe(data))

    def close(self) -> None:
        self._server.shutdown()


class FactWatcher:
    """Subscribes to a store's facts (or any filter) and counts them as they arrive."""

    def __init__(
        self, mqtt_url: str, filters: Iterable[str], probe: Callable[[mqtt.MQTTMessage], int | None]
    ) -> None:
        self.arrivals = Arrivals()
        self.kinds: dict[str, int] = {}
        self._probe = probe
        self._subscribed = threading.Event()
        target = parse_mqtt_url(mqtt_url)
        self.client, props = make_client(f"bench-watch-{free_port()}", target)
        flist = list(filters)
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in flist])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(target.host, target.port, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("fact watcher never subscribed")

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.arrivals.hit(time.monotonic(), self._probe(msg))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A QoS 1 publisher that can wait for every PUBACK."""

    def __init__(self, mqtt_url: str, client_id: str) -> None:
        target = parse_mqtt_url(mqtt_url)
        # A deep paho queue: we fill the broker's queue for an offline session.
        self.client, props = make_client(client_id, target)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self._connected = threading.Event()
        self.client.on_connect = lambda *_: self._connected.set()
        self.client.connect(target.host, target.port, properties=props)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("publisher never connected")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos)

    def publish_all(self, items: Iterable[tuple[str, bytes]], timeout_s: float = 120) -> int:
        infos = [self.client.publish(t, p, qos=1) for t, p in items]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        return sum(1 for i in infos if i.is_published())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(mqtt_url: str, client_id: str) -> None:
    """Make the broker drop ``client_id``'s persistent session (and whatever it queued).

    A consumer the bench stopped keeps its subscriptions for an hour: later phases
    would otherwise queue copies of their traffic for it and replay old probes.
    """
    target = parse_mqtt_url(mqtt_url)
    client, props = make_client(client_id, target, session_expiry_s=0)
    done = threading.Event()
    client.on_connect = lambda *_: done.set()
    client.connect(target.host, target.port, clean_start=True, properties=props)
    client.loop_start()
    try:
        if not done.wait(10):
            raise TimeoutError(f"could not reconnect as {client_id} to drop its session")
    finally:
        client.disconnect()
        client.loop_stop()

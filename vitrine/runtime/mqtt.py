"""One way to make a paho-mqtt client, shared by every process.

MQTT v5, so that the broker honours our *receive maximum* (bounded intake:
at most that many unacknowledged QoS 1 messages in flight to us, MQTT 5
§3.1.2.11.3) and sessions survive reconnects (clean start off, session expiry).
Processes that consume QoS 1 use ``manual_ack=True`` and acknowledge only after
the message's effect is committed or handed on (QUALITY.md fact 1).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["MqttTarget", "make_client", "parse_mqtt_url"]


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user[:password]@]host[:port]`` or ``mqtts://…`` (TLS, default port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an mqtt:// or mqtts:// URL: {url!r}")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def _no_delay(client: mqtt.Client, userdata: object, sock: object) -> None:
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(
    client_id: str,
    target: MqttTarget,
    *,
    manual_ack: bool = False,
    receive_maximum: int = 1000,
    session_expiry_s: int = 3600,
) -> tuple[mqtt.Client, Properties]:
    """A configured client and the CONNECT properties to pass to ``connect``.

    ``receive_maximum``: how many QoS 1 messages may be in flight to us before
    the broker holds the rest in our session queue; it is our intake bound.
    ``session_expiry_s``: how long the broker keeps our subscriptions and queue
    while we are away (a restart, a crash), so nothing published meanwhile is lost.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    # Nagle's algorithm on *our* side holds a small PUBLISH until the broker ACKs
    # the previous segment (~40 ms of delayed ACK): a consumer that publishes and
    # then acks each input waited ~44 ms per message (38 msg/s, tests/fuzz). The
    # broker sets nodelay on its side (deploy/mosquitto.conf); paho does not.
    client.on_socket_open = _no_delay
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    return client, props

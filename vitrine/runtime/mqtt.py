"""One way to make a paho-mqtt client, shared by every process.

MQTT v5, so that the broker honours our *receive maximum* (bounded intake:
at most that many unacknowledged QoS 1 messages in flight to us, MQTT 5
§3.1.2.11.3) and sessions survive reconnects (clean start off, session expiry).
Processes that consume QoS 1 use ``manual_ack=True`` and acknowledge only after
the message's effect is committed or handed on (QUALITY.md fact 1).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["ConnectionAcks", "MqttTarget", "make_client", "parse_mqtt_url"]


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


class ConnectionAcks:
    """Acknowledge an inbound QoS 1/2 message only on the connection that delivered it.

    A message's packet id is only meaningful to the broker session that sent it.
    After a reconnect the broker may have restarted from an older snapshot
    (SIGKILL, ``autosave_interval``): a PUBACK for an id from the old connection
    then names a message it does not know, or another one, and Mosquitto 2.0.11
    (Debian 12's) miscounts its in-flight quota on such a PUBACK (fixed in 2.0.13,
    eclipse/mosquitto#2306): measured, the ingest then never received another
    fact (tests/reliability/test_broker_restart.py). So an ack for a message of
    an earlier connection is not sent: if the broker still holds that message it
    resends it on the new connection (MQTT 5 §4.4, DUP set), where the consumer,
    idempotent, finds it a duplicate and acks *that* copy; if the broker lost it,
    there is nothing to ack.

    Call :meth:`connected` from ``on_connect`` (a successful CONNACK),
    :meth:`disconnected` from ``on_disconnect``, stamp each message with
    :attr:`generation` in ``on_message`` (all on paho's network thread) and ack
    with :meth:`ack` from any thread.
    """

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._generation = 0
        self._live = False
        #: Acks not sent because their message came on an earlier connection.
        self.stale = 0

    @property
    def generation(self) -> int:
        """The current connection's number (stamp inbound messages with it)."""
        return self._generation

    def connected(self) -> None:
        with self._lock:
            self._generation += 1
            self._live = True

    def disconnected(self) -> None:
        with self._lock:
            self._live = False

    def ack(self, generation: int, mid: int, qos: int) -> bool:
        """Send the ack if the message came on this live connection; ``False`` if skipped."""
        if qos == 0:
            return True
        # Held while queueing the PUBACK: a reconnect cannot slip between the check
        # and the send (paho's ack only appends to its out queue: no lock taken
        # in the network thread is waited on here).
        with self._lock:
            if not self._live or generation != self._generation:
                self.stale += 1
                return False
            self._client.ack(mid, qos)
            return True

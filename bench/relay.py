"""The bare Python relay: paho → ``orjson.loads`` → WebSocket send, nothing else.

The floor below which no Python gateway can go (QUALITY.md, "Performance"): the
same MQTT settings as the gateway (MQTT 5, persistent session, QoS 1, receive
maximum 256) but no routing, no adapters, no pipeline and no facts. Run as its
own process by the bench: ``python -m bench.relay MQTT_URL WS_URL CLIENT_ID FILTER...``.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from websockets.sync.client import connect

from vitrine.runtime.mqtt import make_client, parse_mqtt_url

#: The gateway's default intake bound (``VITRINE_RECEIVE_MAXIMUM``), for a like-for-like floor.
RECEIVE_MAXIMUM = 256


def main(argv: list[str]) -> int:
    mqtt_url, ws_url, client_id, *filters = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # websockets' sync client: one connection, written only from paho's network thread.
    ws = connect(ws_url, compression=None, max_size=None).__enter__()
    target = parse_mqtt_url(mqtt_url)
    client, props = make_client(
        client_id, target, receive_maximum=RECEIVE_MAXIMUM, session_expiry_s=3600
    )

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        c.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
        print("subscribed", flush=True)

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        orjson.loads(msg.payload)
        ws.send(msg.payload)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(target.host, target.port, clean_start=False, properties=props)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

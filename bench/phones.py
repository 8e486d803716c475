"""App phones walking into stores, as ESPresense scanners report them (a process of its own).

``python -m bench.phones MQTT_URL PLAN_JSON OUT_JSON``: the bench writes the plan
(phones, their install secrets, stores, arrival offsets) and reads back, per phone,
the ``CLOCK_MONOTONIC`` time its *trigger* report was published and the token it
advertised (8 hex digits, as the gateway's ``shopper_entered`` fact carries it).

Each phone advertises the companion app's iBeacon (proximity UUID = the app's,
major/minor = its rotating token, ``vitrine.contracts.app_token``), heard by two
scanners of its store (WIRE-FORMATS §5, ESPresense v4 per-device reports on
``<prefix>/devices/<id>/<room>``). The walk is built so that one known message
makes the gateway decide ``shopper_entered`` (``gateway.pipeline.rules.ShopperRules``:
3 reports within 10 s, spread over at least 2 s):

- at its arrival offset: one report from each scanner (2 reports, not enough);
- ``TRIGGER_AFTER_S`` later: one report from the floor scanner — the trigger (3rd);
- from ``TRIGGER_AFTER_S + 1`` s on: one report per scanner per second (QUALITY.md:
  ~1 BLE report/s per phone per scanner) until the end.

Latency is measured from the trigger's publish to the phone's ``guidance`` push.
With ``--marker`` the trigger carries ``"bench_phone": <index>`` so the bare relay's
sink can recognise it (the relay does not validate payloads; the gateway would).
"""

from __future__ import annotations

import base64
import heapq
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from firmware_sim import formats
from firmware_sim.shell import MqttPublisher
from vitrine.contracts.app_token import AppBeacon, token_of

__all__ = ["FLOOR_ROOM", "TILL_ROOM", "TRIGGER_AFTER_S", "device_id", "main"]

#: 3 s between the first two reports and the trigger: ``enter_settle_s`` is 2 s, and
#: 1 s of margin keeps a gateway queue that delayed the first pair by up to 1 s from
#: pushing the decision onto a later report (which would shorten the measured latency).
TRIGGER_AFTER_S = 3.0
#: The scanner rooms every store's layout has (``bench.chain.store_layout``).
FLOOR_ROOM, TILL_ROOM = "room-floor", "room-till"
#: Near the floor scanner, far from the till's: the phone enters the floor zone.
FLOOR_RSSI, TILL_RSSI = -60.0, -80.0
#: QoS 1 like the readers in ``vitrine sim load --qos 1``: a lost trigger would be
#: the bench's loss, not the system's.
QOS = 1


def device_id(app_uuid: str, token: int) -> str:
    """``iBeacon:<uuid>-<major>-<minor>`` (decimal major/minor) advertising ``token``."""
    beacon = AppBeacon.for_token(app_uuid, token)
    return f"iBeacon:{beacon.uuid}-{beacon.major}-{beacon.minor}"


def _payload(dev: str, rssi: float, marker: int | None) -> bytes:
    doc: dict[str, Any] = formats.espresense_payload(
        device_id=dev,
        mac="4a0000000001",
        rssi_at_1m=-59,
        rssi=rssi,
        rssi_var=2.0,
        distance=1.0 if rssi > -70 else 8.0,
        var=0.1,
        close=False,
        interval_ms=500,
    )
    if marker is not None:
        doc["bench_phone"] = marker
    return orjson.dumps(doc)


def main(argv: list[str]) -> int:
    mqtt_url, plan_path, out_path = argv[:3]
    marker = "--marker" in argv[3:]
    plan = orjson.loads(Path(plan_path).read_bytes())
    start: float = plan["start"]  # CLOCK_MONOTONIC: every process on the machine shares it
    end = start + plan["seconds"]
    app_uuid: str = plan["app_uuid"]
    pub = MqttPublisher(mqtt_url, f"bench-phones-{time.monotonic_ns()}")
    pub.connect()
    phones: list[dict[str, Any]] = plan["phones"]
    devices: list[str] = []
    tokens: list[str] = []
    # (due, phone, step): step 0 = first pair, 1 = trigger, 2 = a steady pair.
    due: list[tuple[float, int, int]] = []
    for i, p in enumerate(phones):
        at = start + p["at"]
        # The token of the arrival's window, kept for the walk: a phone whose
        # token rotated between its reports would be a new device to the gateway.
        epoch_at = time.time() + (at - time.monotonic())
        token = token_of(base64.b64decode(p["secret"]), epoch_at)
        tokens.append(f"{token:08x}")
        devices.append(device_id(app_uuid, token))
        heapq.heappush(due, (at, i, 0))
    triggers: dict[int, float] = {}
    mids: list[int] = []
    sleeper = threading.Event()
    while due:
        t, i, step = due[0]
        if t >= end:
            break
        now = time.monotonic()
        if t > now:
            sleeper.wait(t - now)
            continue
        heapq.heappop(due)
        prefix = phones[i]["prefix"]
        dev = devices[i]
        floor_topic = formats.espresense_topic(prefix, dev, FLOOR_ROOM)
        if step == 1:
            payload = _payload(dev, FLOOR_RSSI, i if marker else None)
            triggers[i] = time.monotonic()
            mids.append(pub.publish(floor_topic, payload, QOS))
            heapq.heappush(due, (t + 1.0, i, 2))
            continue
        mids.append(pub.publish(floor_topic, _payload(dev, FLOOR_RSSI, None), QOS))
        till_topic = formats.espresense_topic(prefix, dev, TILL_ROOM)
        mids.append(pub.publish(till_topic, _payload(dev, TILL_RSSI, None), QOS))
        heapq.heappush(due, (t + (TRIGGER_AFTER_S if step == 0 else 1.0), i, 1 if step == 0 else 2))
    pub.drain(mids)
    acked = sum(1 for m in mids if m >= 0 and pub.acked(m))
    pub.close()
    out = {
        "triggers": {str(k): v for k, v in triggers.items()},
        "tokens": tokens,
        "messages": len(mids),
    }
    Path(out_path).write_bytes(orjson.dumps(out | {"acked": acked}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

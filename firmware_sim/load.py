"""Sustained load for benchmarks: many stores' readers and phones, at a target rate.

Each simulated second every reader offers ``reads_per_second`` Zebra INVENTORY
tag events (batched ``batch`` per message, WIRE-FORMATS §1) and every phone one
ESPresense report per scanner that hears it (QUALITY.md: ~1 BLE report/s per phone
per scanner). The report says what was actually offered against the target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from firmware_sim import formats
from firmware_sim.epc import sgtin96_hex
from firmware_sim.shell import MqttPublisher

__all__ = ["LoadReport", "run_load"]

#: Pacing slice: publish a tenth of a second's worth at a time, so batches
#: leave smoothly instead of in one burst per second.
SLICE_S = 0.1
#: Scanners that hear each phone: a phone is usually heard by 2 nodes.
SCANNERS_PER_PHONE = 2
#: Distinct tags per reader: a rack's worth, cycled through.
TAGS_PER_READER = 500


@dataclass(frozen=True, slots=True)
class LoadReport:
    duration_s: float
    target_reads_per_s: float
    offered_reads: int
    offered_ble: int
    messages: int
    acked: int

    @property
    def offered_reads_per_s(self) -> float:
        return self.offered_reads / self.duration_s if self.duration_s else 0.0

    @property
    def ratio(self) -> float:
        return (
            self.offered_reads_per_s / self.target_reads_per_s if self.target_reads_per_s else 1.0
        )


def run_load(
    *,
    mqtt_url: str,
    stores: int,
    readers: int,
    reads_per_second: float,
    phones: int,
    batch: int,
    duration_s: float,
    qos: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    pub = MqttPublisher(mqtt_url, f"vitrine-sim-load-{int(time.time())}")
    pub.connect()
    # Each store has its own tags (store 0 keeps serials 1000…): a tag that
    # several stores' gateways report would move between stores on every read
    # and turn a multi-store load into a storm of item facts no store has.
    epcs = [
        [sgtin96_hex("00614141000012", 1000 + s * TAGS_PER_READER + i, 7).lower()
         for i in range(TAGS_PER_READER)]
        for s in range(stores)
    ]  # fmt: skip
    streams = [(f"tevents/load-s{s}-r{r}", [0], s) for s in range(stores) for r in range(readers)]
    phone_topics = [
        formats.espresense_topic(
            "espresense", f"iBeacon:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-{s}-{p}", f"room-{k}"
        )
        for s in range(stores)
        for p in range(phones)
        for k in range(SCANNERS_PER_PHONE)
    ]
    ble_payload = orjson.dumps(
        formats.espresense_payload(
            device_id="iBeacon:load",
            mac="4a0000000001",
            rssi_at_1m=-59,
            rssi=-72.5,
            rssi_var=4.1,
            distance=3.03,
            var=0.2,
            close=False,
            interval_ms=500,
        )
    )
    owed = [0.0] * len(streams)
    ble_owed = 0.0
    offered = ble = messages = 0
    mids: list[int] = []
    stop = threading.Event()
    start = time.monotonic()
    k = 0
    last_progress = start
    while True:
        k += 1
        slice_end = start + k * SLICE_S
        if slice_end - start > duration_s + 1e-9:
            break
        ts = formats.zebra_timestamp(datetime.now(UTC))
        for i, (topic, counter, store) in enumerate(streams):
            owed[i] += reads_per_second * SLICE_S
            n = int(owed[i])
            owed[i] -= n
            events = []
            for _ in range(n):
                counter[0] += 1
                events.append(
                    {
                        "data": {
                            "antenna": 1,
                            "eventNum": counter[0],
                            "format": "epc",
                            "idHex": epcs[store][counter[0] % TAGS_PER_READER],
                            "peakRssi": -55,
                            "reads": 1,
                        },
                        "timestamp": ts,
                        "type": "INVENTORY",
                    }
                )
            offered += n
            if batch > 1:
                for j in range(0, len(events), batch):
                    mids.append(pub.publish(topic, orjson.dumps(events[j : j + batch]), qos))
                    messages += 1
            else:
                for ev in events:
                    mids.append(pub.publish(topic, orjson.dumps(ev), qos))
                    messages += 1
        ble_owed += len(phone_topics) * SLICE_S
        nb = int(ble_owed)
        ble_owed -= nb
        for j in range(nb):
            mids.append(pub.publish(phone_topics[(ble + j) % len(phone_topics)], ble_payload, qos))
        ble += nb
        messages += nb
        now = time.monotonic()
        if progress is not None and now - last_progress >= 2.0:
            last_progress = now
            elapsed = now - start
            progress(
                f"load {elapsed:5.1f}/{duration_s:.0f} s  {offered / elapsed:,.0f} reads/s "
                f"offered (target {reads_per_second * len(streams):,.0f})  {messages} msgs"
            )
        delay = slice_end - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    elapsed = time.monotonic() - start
    pub.drain(mids)
    acked = sum(1 for m in mids if m >= 0 and pub.acked(m))
    pub.close()
    return LoadReport(
        duration_s=elapsed,
        target_reads_per_s=reads_per_second * len(streams),
        offered_reads=offered,
        offered_ble=ble,
        messages=messages,
        acked=acked,
    )

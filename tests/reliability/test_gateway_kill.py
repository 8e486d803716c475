"""``kill -9`` of the gateway mid-stream, then a restart: no input the broker accepted is lost.

Ground truth is this test's publish log: Zebra IoT Connector batches
(WIRE-FORMATS.md §1, batching on → a JSON array of ``INVENTORY`` events) of one
new tag read on antennas 1 and 2 of a reader whose antennas both cover the sales
floor, each publish kept only once the broker PUBACKed it. Two reads on two
antennas in one message make exactly one ``item_arrived`` per tag whatever the
receive times, so the expected facts are the pure :class:`gateway.pipeline.Pipeline`
replaying the same inputs, and the checker joins them with the facts on the bus.

The gateway acknowledges an input only once a journaled checkpoint covers it and
publishes a fact only once journaled, so the copies a restart sends (the
journal's facts republished) must carry their first ``event_id``: what the
ingest, de-duplicating by id, stores is then exactly one arrival per tag.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.adapters import parse
from gateway.pipeline import Pipeline
from gateway.settings import GatewaySettings
from tests.reliability.checker import check
from tests.reliability.procs import Gateway, Tap, metric, wait_until
from tests.support.services import Broker
from vitrine.contracts.layout import StoreLayout

pytestmark = [pytest.mark.mqtt]

#: Enough that the kill lands mid-stream with hundreds of inputs in flight, small
#: enough to publish and drain in a few seconds on the shared 2-core machine.
N = 3000


def layout(store: str) -> dict[str, Any]:
    return {
        "store": {"id": store, "name": "Kill store"},
        "zones": [
            {
                "id": "floor",
                "name": "Floor",
                "type": "sales_floor",
                "area": {"x": 0, "y": 0, "w": 5, "h": 5},
            }
        ],
        "readers": [
            {
                "id": "fx9600",
                "format": "zebra",
                "topic": f"{store}/tevents/fx9600",
                "antennas": [
                    {"port": 1, "zone": "floor", "position": [1, 1]},
                    {"port": 2, "zone": "floor", "position": [4, 4]},
                ],
            }
        ],
        "scanners": [],
    }


def zebra_batch(i: int) -> bytes:
    """Tag ``i`` read on antennas 1 and 2: eventNum 2i+1 and 2i+2 (no gaps)."""
    epc = f"3074257bf7194e40{i:08x}"
    return orjson.dumps(
        [
            {
                "data": {
                    "eventNum": 2 * i + ant,
                    "format": "epc",
                    "idHex": epc,
                    "antenna": ant,
                    "peakRssi": -52,
                    "reads": 3,
                },
                "timestamp": "2024-09-05T01:07:01.785-0600",
                "type": "INVENTORY",
            }
            for ant in (1, 2)
        ]
    )


class Publisher(threading.Thread):
    """Publishes ``N`` inputs QoS 1; ``log`` keeps those the broker acknowledged."""

    def __init__(self, broker: Broker, topic: str, payloads: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.topic, self.payloads = topic, payloads
        self.log: list[dict[str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(50)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            infos = []
            for seq, payload in enumerate(self.payloads):
                infos.append((seq, self.client.publish(self.topic, payload, qos=1)))
                if seq % 200 == 199:
                    time.sleep(0.01)  # pace: a reader's stream, not one write
            for seq, info in infos:
                info.wait_for_publish(30)
                self.log.append({"seq": seq, "topic": self.topic, "acked": info.is_published()})
        except BaseException as exc:  # reported by the test
            self.error = exc

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def replay(store_layout: dict[str, Any], topic: str, payloads: list[bytes]) -> set[str]:
    """The pure pipeline's item arrivals for the same inputs (one per tag)."""
    pipeline = Pipeline(
        StoreLayout.model_validate(store_layout), "replay", salt_source=lambda _period: bytes(32)
    )
    t0 = datetime(2024, 9, 5, tzinfo=UTC)
    out: set[str] = set()
    for i, payload in enumerate(payloads):
        outputs = parse("zebra", payload, topic=topic, reader="fx9600")
        for fact in pipeline.feed_many(outputs, t0 + timedelta(milliseconds=i), reader="fx9600"):
            assert fact.kind == "item_arrived", fact
            out.add(f"{fact.epc}@{fact.zone}")
    return out


@dataclass(frozen=True)
class Run:
    expected: set[str]
    facts: list[dict[str, Any]]
    before: float
    unacked: float
    after: float
    skipped: float
    #: Inputs run 1's durable checkpoints covered: the most it can have acknowledged.
    covered: int = 0

    def arrivals(self) -> list[str]:
        return [f"{f['epc']}@{f['zone']}" for f in self.facts if f["kind"] == "item_arrived"]


@pytest.fixture(scope="module")
def killed_run(mosquitto: Broker, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Publish N inputs, kill -9 the gateway a third of the way, restart it, collect facts."""
    workdir = tmp_path_factory.mktemp("gw")
    store = f"kill-{uuid.uuid4().hex[:6]}"
    spec = layout(store)
    (workdir / "store.yaml").write_text(yaml.safe_dump(spec))
    topic = f"{store}/tevents/fx9600"
    payloads = [zebra_batch(i) for i in range(N)]
    expected = replay(spec, topic, payloads)
    assert len(expected) == N

    tap = Tap(mosquitto.host, mosquitto.port, [f"vitrine/v1/{store}/facts/+"])
    gw = Gateway(mosquitto.url, store, workdir)
    publisher = Publisher(mosquitto, topic, payloads)
    try:
        gw.start()
        publisher.start()
        wait_until(
            lambda: metric(gw.metrics(), "vitrine_gateway_messages_total") >= N // 3,
            "a third of the stream through the gateway",
        )
        before = metric(gw.metrics(), "vitrine_gateway_messages_total")
        unacked = metric(gw.metrics(), "vitrine_gateway_unacked_inputs")
        gw.kill()
        covered = covered_inputs(workdir / "state", gw.gateway_id)
        gw.start()
        publisher.join(60)
        assert publisher.error is None and not publisher.is_alive()
        assert all(entry["acked"] for entry in publisher.log) and len(publisher.log) == N

        def arrived() -> bool:
            return expected <= set(Run(expected, _facts(tap), 0, 0, 0, 0, 0).arrivals())

        wait_until(arrived, "every tag's arrival", timeout=45)
        text = gw.metrics()
        after = metric(text, "vitrine_gateway_messages_total")
        skipped = metric(text, "vitrine_gateway_redelivered_skipped_total")
        run = Run(expected, _facts(tap), before, unacked, after, skipped, covered)
    finally:
        publisher.close()
        gw.stop()
        tap.close()
    verdict = check(run.expected, run.arrivals())
    print(
        f"gateway kill -9: run 1 handled >= {before:.0f} ({unacked:.0f} unacknowledged just "
        f"before the kill; its checkpoints covered {covered}), run 2 handled {after:.0f} "
        f"(skipped {skipped:.0f} redelivered copies a checkpoint covered); {verdict.summary()}"
    )
    return run


def covered_inputs(state_dir: Path, gateway_id: str) -> int:
    """How many inputs the killed gateway's snapshot and journal say a checkpoint covered.

    The gateway acknowledges an input only once a durable checkpoint covers it,
    so this bounds what it acknowledged from above (exactly, not racing the
    acknowledgements as a metric read before the kill would: they now follow an
    input by about one fsync)."""
    snapshot = orjson.loads((state_dir / f"gateway-{gateway_id}.json").read_bytes())
    count = len(snapshot.get("redelivered", []))  # all of them: N < REDELIVERY_INPUTS
    for line in (state_dir / f"gateway-{gateway_id}.journal").read_bytes().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:  # a torn last line: never fsynced, never acknowledged
            continue
        if record.get("generation") == snapshot.get("generation"):
            count += len(record.get("covered", []))
    return count


def _facts(tap: Tap) -> list[dict[str, Any]]:
    return [json.loads(p) for _, p in tap.snapshot()]


def test_gateway_kill_9_mid_stream_loses_no_acknowledged_input(killed_run: Run) -> None:
    verdict = check(killed_run.expected, killed_run.arrivals())
    assert not verdict.lost and not verdict.unexpected, verdict.summary()
    # Run 2 took every input run 1 had not acknowledged, and run 1 acknowledged
    # only inputs its durable checkpoints covered.
    # (The metrics said so before the kill; one input may be counted and not yet in
    # the unacknowledged gauge when they are read.)
    assert killed_run.covered >= killed_run.before - killed_run.unacked - 1
    assert killed_run.after >= N - killed_run.covered
    kinds = {f["kind"] for f in killed_run.facts}
    assert kinds == {"item_arrived"}, "no input was lost, so no gap may be reported"


def test_gateway_kill_9_copies_repeat_their_event_id(killed_run: Run) -> None:
    verdict = check(killed_run.expected, killed_run.arrivals())
    copies = [f for f in killed_run.facts if f"{f['epc']}@{f['zone']}" in verdict.duplicated]
    ids = {f["event_id"] for f in copies}
    print(f"{len(copies)} facts for {len(verdict.duplicated)} tags carry {len(ids)} event_ids")
    assert len(ids) == len(verdict.duplicated)
    # What an ingest de-duplicating by event_id keeps: each tag's arrival exactly once.
    first: dict[str, str] = {}
    for fact in killed_run.facts:
        first.setdefault(fact["event_id"], f"{fact['epc']}@{fact['zone']}")
    deduplicated = check(killed_run.expected, list(first.values()))
    assert not deduplicated.lost and not deduplicated.duplicated, deduplicated.summary()


def test_gateway_kill_9_leaves_at_most_a_checkpoint_of_inputs_unacknowledged(
    killed_run: Run,
) -> None:
    # Finding 2 (docs/reliability.md): 1,055-1,572 unacknowledged before checkpoints.
    # Now a checkpoint covers at most ``checkpoint_inputs`` (500) handled inputs.
    assert killed_run.unacked <= GatewaySettings().checkpoint_inputs

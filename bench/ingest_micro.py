"""In-process ingest micro-measurement: Zebra parse, and parse + pipeline, no MQTT.

``vitrine bench --only ingest`` times the whole gateway process (paho, queue,
parse, pipeline, publish); this times only the Python work per message, on the
very payloads the drain queues (:func:`bench.drain.queued_messages`: INVENTORY
batches over 500 distinct SGTIN-96 tags), so a change to the adapters or the
pipeline can be measured without the broker's and the machine's noise::

    python -m bench.ingest_micro [--messages 4000] [--reads 50] [--repeat 5]

Each repeat builds a fresh :class:`~gateway.pipeline.Pipeline` (cold item state,
cold EPC cache) and feeds it the messages with a receive time 1 ms apart. The
rate is reads per second of this process's CPU time (``time.process_time``),
not of wall time: on the shared 2-core machine wall time mostly measures the
neighbours. The median of the repeats is printed, with the min and max beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.drain import queued_messages
from bench.workload import load_layout_file
from gateway.adapters import AdapterError, parse
from gateway.pipeline import Pipeline
from gateway.reads import AdapterOutput
from vitrine.contracts.layout import StoreLayout

__all__ = ["measure", "run"]

_READER = "load-s0-r0"
_START = datetime(2026, 1, 1, tzinfo=UTC)


def _salt(period: int) -> bytes:
    # Deterministic for the measurement only; the service draws 256 random bits.
    return hashlib.sha256(f"bench-salt-{period}".encode()).digest()


def _layout() -> StoreLayout:
    with TemporaryDirectory() as tmp:
        path = load_layout_file(Path(tmp) / "layout.json", readers=1)
        return StoreLayout.model_validate_json(path.read_bytes())


def measure(payloads: list[bytes], layout: StoreLayout, *, pipeline: bool) -> float:
    """CPU seconds to parse (and, with ``pipeline``, feed) every payload once."""
    pipe = Pipeline(layout, "bench", salt_source=_salt) if pipeline else None
    step = timedelta(milliseconds=1)
    start = time.process_time()
    for i, payload in enumerate(payloads):
        try:
            outputs: list[AdapterOutput] = parse("zebra", payload, reader=_READER)
        except AdapterError as exc:
            outputs = list(exc.partial)
        if pipe is not None:
            pipe.feed_many(outputs, _START + i * step, reader=_READER)
    return time.process_time() - start


def run(messages: int, reads: int, repeat: int, out: Callable[[str], None] = print) -> None:
    payloads = [p for _, p in queued_messages(messages, reads)]
    layout = _layout()
    total = messages * reads
    for label, with_pipeline in (("parse", False), ("parse+pipeline", True)):
        rates = sorted(
            total / measure(payloads, layout, pipeline=with_pipeline) for _ in range(repeat)
        )
        out(
            f"{label:>15}: {statistics.median(rates):>10,.0f} reads/CPU-s"
            f"  (min {rates[0]:,.0f}, max {rates[-1]:,.0f};"
            f" {repeat} × {messages} msgs × {reads} reads)"
        )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--messages", type=int, default=4000)
    args.add_argument("--reads", type=int, default=50)
    args.add_argument("--repeat", type=int, default=5)
    ns = args.parse_args()
    run(ns.messages, ns.reads, ns.repeat)


if __name__ == "__main__":
    main()

"""What the bench offers: a load layout and Zebra IoT Connector payloads.

The payloads are the Zebra IoT Connector's tag-data events (WIRE-FORMATS §1:
``{"data": {...}, "timestamp", "type": "INVENTORY"}``, one object per message,
or an array when the reader batches), as ``firmware_sim.load`` sends them.
Every read carries the reader's ``eventNum``: a deliberate jump makes the
gateway publish a ``reads_lost`` fact at once, which the bench uses as a
timing marker that crosses the whole pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from firmware_sim.epc import sgtin96_hex

__all__ = ["TAGS", "bench_layout", "load_layout_file", "marker_seq", "zebra_message"]

#: Distinct tags per reader: a rack's worth, as ``firmware_sim.load`` cycles.
TAGS = [sgtin96_hex("00614141000012", 1000 + i, 7).lower() for i in range(500)]
STORE = "bench-store"


def bench_layout(
    store: str,
    s: int,
    readers: int,
    *,
    espresense_prefix: str,
    scanners: list[dict[str, Any]],
    extra_readers: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """Store ``s`` as ``vitrine sim load`` offers it: readers on ``tevents/load-s<s>-r<i>``.

    A floor (every reader's antenna) and a till, so a tag moving there is a fact.
    """
    return {
        "store": {"id": store, "name": f"Bench store {s}"},
        "espresense_prefix": espresense_prefix,
        "zones": [
            {
                "id": "floor",
                "name": "Floor",
                "type": "sales_floor",
                "area": {"x": 0, "y": 0, "w": 10, "h": 10},
            },
            {
                "id": "till",
                "name": "Till",
                "type": "till",
                "area": {"x": 10, "y": 0, "w": 5, "h": 10},
            },
        ],
        "racks": [],
        "readers": [
            {
                "id": f"load-s{s}-r{i}",
                "format": "zebra",
                "topic": f"tevents/load-s{s}-r{i}",
                "antennas": [{"port": 1, "zone": "floor", "position": [5, 5]}],
            }
            for i in range(readers)
        ]
        + list(extra_readers),
        "scanners": scanners,
    }


def load_layout_file(path: Path, readers: int, store: str = STORE) -> Path:
    """Store 0 of ``vitrine sim load`` plus a ``probe`` reader on the till."""
    probe = {
        "id": "probe",
        "format": "zebra",
        "topic": "tevents/probe",
        "antennas": [{"port": 1, "zone": "till", "position": [12, 5]}],
    }
    layout = bench_layout(
        store,
        0,
        readers,
        espresense_prefix="espresense",
        scanners=[
            {"id": "room-0", "room": "room-0", "zone": "floor", "position": [2, 2]},
            {"id": "room-1", "room": "room-1", "zone": "till", "position": [12, 2]},
        ],
        extra_readers=(probe,),
    )
    path.write_bytes(orjson.dumps(layout))
    return path


def _event(seq: int, epc: str) -> dict[str, Any]:
    return {
        "data": {
            "antenna": 1,
            "eventNum": seq,
            "format": "epc",
            "idHex": epc,
            "peakRssi": -55,
            "reads": 1,
        },
        "timestamp": "2026-01-01T00:00:00.000+0000",
        "type": "INVENTORY",
    }


def zebra_message(first_seq: int, reads: int, tag_offset: int = 0) -> bytes:
    """One message: a single event (``reads == 1``) or a batch array of ``reads`` events."""
    events = [_event(first_seq + k, TAGS[(tag_offset + k) % len(TAGS)]) for k in range(reads)]
    return orjson.dumps(events[0] if reads == 1 else events)


def marker_seq(reason: str) -> int | None:
    """The sequence number after the gap, from a ``reads_lost`` fact's reason."""
    # "sequence gap: events A..B never arrived": the marker is B + 1.
    try:
        span = reason.split("events ", 1)[1].split(" ", 1)[0]
        return int(span.split("..")[1]) + 1
    except (IndexError, ValueError):
        return None

"""A small store for the pipeline tests: floor, fitting room, till, stockroom, exit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.pipeline import Pipeline
from vitrine.contracts.layout import StoreLayout

APP_UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _zone(zid: str, ztype: str, x: float) -> dict[str, Any]:
    return {"id": zid, "name": zid, "type": ztype, "area": {"x": x, "y": 0, "w": 5, "h": 5}}


LAYOUT: dict[str, Any] = {
    "store": {"id": "s1", "name": "Demo"},
    "zones": [
        _zone("entrance", "entrance", 0),
        _zone("floor", "sales_floor", 5),
        _zone("fitting", "fitting_room", 10),
        _zone("till", "till", 15),
        _zone("stock", "stockroom", 20),
        _zone("exit", "exit", 25),
    ],
    "racks": [{"id": "rack-a", "zone": "floor", "name": "A", "position": [6, 1]}],
    "readers": [
        {
            "id": "fx1",
            "format": "zebra",
            "topic": "tevents/fx1",
            "antennas": [
                {"port": 1, "zone": "floor", "rack": "rack-a", "position": [6, 1]},
                {"port": 2, "zone": "fitting", "position": [11, 1]},
                {"port": 3, "zone": "till", "position": [16, 1]},
                {"port": 4, "zone": "stock", "position": [21, 1]},
            ],
        },
        {
            "id": "simple1",
            "format": "zebra",
            "topic": "tevents/simple1",
            "antennas": [{"port": 1, "zone": "stock", "position": [22, 1]}],
        },
    ],
    "scanners": [
        {"id": "ble-ent", "room": "entrance", "zone": "entrance", "position": [1, 1]},
        {"id": "ble-floor", "room": "floor", "zone": "floor", "position": [6, 1]},
        {"id": "ble-fit", "room": "fitting", "zone": "fitting", "position": [11, 1]},
        {"id": "ble-exit", "room": "exit", "zone": "exit", "position": [26, 1]},
    ],
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_pipeline(**kwargs: Any) -> Pipeline:
    return Pipeline(
        StoreLayout.model_validate(LAYOUT),
        "gw1",
        salt_source=lambda period: f"salt-{period}".encode(),
        app_beacon_uuid=APP_UUID,
        **kwargs,
    )


@pytest.fixture
def pipeline() -> Pipeline:
    return make_pipeline()

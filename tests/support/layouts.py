"""Small store layouts shared by tests that run the real gateway."""

from __future__ import annotations

from typing import Any

__all__ = ["APP_UUID", "gateway_layout"]

#: The companion app's iBeacon UUID in these tests (WIRE-FORMATS.md §5 test vector).
APP_UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"


def gateway_layout(store: str) -> dict[str, Any]:
    """One Zebra, one Impinj reader and one ESPresense room (WIRE-FORMATS.md topics)."""

    def zone(zid: str, ztype: str, x: float) -> dict[str, Any]:
        return {"id": zid, "name": zid, "type": ztype, "area": {"x": x, "y": 0, "w": 5, "h": 5}}

    return {
        "store": {"id": store, "name": "Test store"},
        "zones": [zone("floor", "sales_floor", 0), zone("fitting", "fitting_room", 5)],
        "readers": [
            {
                "id": "fx9600",
                "format": "zebra",
                "topic": f"{store}/tevents/fx9600",
                "antennas": [{"port": 1, "zone": "floor", "position": [1, 1]}],
            },
            {
                "id": "r700",
                "format": "impinj",
                "topic": f"{store}/impinj/r700/events",
                "antennas": [{"port": 1, "zone": "fitting", "position": [6, 1]}],
            },
        ],
        "scanners": [{"id": "esp-floor", "room": "floor", "zone": "floor", "position": [2, 2]}],
        "espresense_prefix": f"espresense-{store}",
    }

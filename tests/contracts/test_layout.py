from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vitrine.contracts.layout import StoreLayout, ZoneType


def _layout(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "store": {"id": "s1", "name": "Demo"},
        "zones": [
            {
                "id": "floor",
                "name": "Floor",
                "type": "sales_floor",
                "area": {"x": 0, "y": 0, "w": 10, "h": 10},
            }
        ],
        "readers": [
            {
                "id": "r1",
                "format": "zebra",
                "topic": "tevents/r1",
                "antennas": [{"port": 1, "zone": "floor", "position": [1, 1]}],
            }
        ],
    }
    base.update(over)
    return base


def test_a_consistent_layout_validates() -> None:
    layout = StoreLayout.model_validate(_layout())
    assert layout.zone("floor").type is ZoneType.SALES_FLOOR


def test_dangling_references_are_reported_together() -> None:
    bad = _layout(
        readers=[
            {
                "id": "r1",
                "format": "zebra",
                "topic": "t",
                "antennas": [{"port": 1, "zone": "nowhere", "position": [0, 0]}],
            }
        ],
        scanners=[{"id": "b1", "room": "x", "zone": "void", "position": [0, 0]}],
    )
    with pytest.raises(ValidationError) as err:
        StoreLayout.model_validate(bad)
    assert "unknown zone nowhere" in str(err.value)
    assert "unknown zone void" in str(err.value)

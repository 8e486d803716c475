"""Routing vendor topics to readers, loading layout files, scrubbing MACs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from gateway.routing import Router
from gateway.service import scrub
from tests.gateway.pipeline.conftest import LAYOUT
from vitrine.contracts.layout import StoreLayout
from vitrine.runtime.layout_io import LayoutFileError, load_layout


def test_vendor_topics_route_to_their_configured_reader() -> None:
    data = {**LAYOUT, "readers": [{**LAYOUT["readers"][0], "topic": "/FX7500EECCA8/data/+"}]}
    router = Router(StoreLayout.model_validate(data))
    route = router.route("/FX7500EECCA8/data/tags")
    assert route is not None and (route.reader, route.format) == ("fx1", "zebra")
    esp = router.route("espresense/devices/apple:1006:10-12/floor")
    assert esp is not None and esp.format == "espresense" and esp.reader is None
    assert router.route("tevents/other") is None
    assert "espresense/devices/#" in router.subscriptions


def test_layout_files_load_from_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(LAYOUT))
    (tmp_path / "s.json").write_bytes(orjson.dumps(LAYOUT))
    assert load_layout(tmp_path / "s.yaml") == load_layout(tmp_path / "s.json")
    (tmp_path / "bad.yaml").write_text("store: [1, 2")
    with pytest.raises(LayoutFileError, match="not valid YAML"):
        load_layout(tmp_path / "bad.yaml")
    with pytest.raises(LayoutFileError, match="cannot read"):
        load_layout(tmp_path / "missing.yaml")


def test_scrub_removes_mac_addresses() -> None:
    assert scrub("bad rssi for aa:bb:cc:dd:ee:01 and AABBCCDDEE02") == (
        "bad rssi for <mac> and <mac>"
    )

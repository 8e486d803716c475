"""The simulator: determinism, vendor shapes (WIRE-FORMATS.md), EPCs, broker acks, load."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from epcpy.epc_schemes.sgtin import SGTIN

from firmware_sim.engine import Simulation
from firmware_sim.epc import sgtin96_hex
from firmware_sim.load import run_load
from firmware_sim.scenario import list_scenarios, load_scenario
from firmware_sim.shell import run_simulation
from firmware_sim.store import SampleFiles, load_bundle, load_layout
from tests.support.services import Broker
from vitrine.contracts.catalogue import is_valid_gtin14
from vitrine.contracts.layout import StoreLayout

ZEBRA_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
SHIPPED = {
    "quiet-morning",
    "busy-saturday",
    "viewed-online",
    "stockroom-size",
    "no-consent",
    "dead-antenna",
    "demo-saturday",
}


def _run(tmp: Path, name: str, seed: int, duration: float = 150.0) -> tuple[Path, Path]:
    sc = load_scenario(name).model_copy(update={"duration_s": duration})
    out, truth = tmp / f"{name}-{seed}.out", tmp / f"{name}-{seed}.truth"
    run_simulation(
        Simulation(sc.bundle(), sc, seed), speed=None, out=out, truth=truth, mqtt_url=None
    )
    return out, truth


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def dead_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out, truth = _run(tmp_path_factory.mktemp("sim"), "dead-antenna", 7, duration=260)
    return _lines(out), _lines(truth)


def test_same_seed_gives_byte_identical_out_and_other_seed_differs(tmp_path: Path) -> None:
    a, _ = _run(tmp_path, "busy-saturday", 3)
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b, _ = _run(b_dir, "busy-saturday", 3)
    c, _ = _run(b_dir, "busy-saturday", 4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_bytes()) > 10_000


def test_every_shipped_scenario_loads() -> None:
    assert set(list_scenarios()) >= SHIPPED
    for name in SHIPPED:
        load_scenario(name).bundle()


def test_sample_layout_validates_as_store_layout() -> None:
    layout = load_layout(SampleFiles().layout)
    assert isinstance(layout, StoreLayout)
    kinds = {z.type.value for z in layout.zones}
    assert kinds == {"entrance", "sales_floor", "stockroom", "fitting_room", "till", "exit"}
    formats = [r.format for r in layout.readers]
    assert formats.count("zebra") >= 2 and "impinj" in formats


def test_tds_vector_and_stock_epcs_decode_to_catalogue_gtins() -> None:
    # GS1 TDS Annex E.3 worked example (WIRE-FORMATS §4).
    assert sgtin96_hex("80614141123458", 6789, 7, filter_value=3) == "3074257BF7194E4000001A85"
    files = SampleFiles()
    bundle = load_bundle(files.layout, files.catalogue, files.stock)
    gtins = {v.gtin for _, v in bundle.catalogue.variants()}
    assert all(is_valid_gtin14(g) for g in gtins)
    for item in bundle.stock.items:
        decoded = SGTIN.from_hex(item.epc)
        assert decoded.gtin() == item.gtin and item.gtin in gtins
        assert decoded.epc_uri.endswith(f".{item.serial}")


def test_some_variants_are_only_in_the_stockroom() -> None:
    files = SampleFiles()
    bundle = load_bundle(files.layout, files.catalogue, files.stock)
    places: dict[str, set[str]] = {}
    for item in bundle.stock.items:
        places.setdefault(item.gtin, set()).add(item.rack)
    assert any(all(r.startswith("shelf-") for r in racks) for racks in places.values())


def test_zebra_payloads_carry_the_fields_of_their_mode(tmp_path: Path) -> None:
    out, _ = _run(tmp_path, "quiet-morning", 1, duration=30)
    modes = {
        "tevents/zebra-fx-1": "INVENTORY",
        "tevents/zebra-fx-2": "SIMPLE",
        "tevents/zebra-fx-3": "CONVEYOR",
    }
    expected = {
        "SIMPLE": {"eventNum", "format", "idHex"},
        "CONVEYOR": {"eventNum", "format", "idHex", "antenna"},
        "INVENTORY": {"eventNum", "format", "idHex", "antenna", "peakRssi", "reads"},
    }
    seen: set[str] = set()
    for rec in _lines(out):
        if rec["topic"] not in modes:
            continue
        doc = orjson.loads(rec["payload"])
        mode = modes[rec["topic"]]
        seen.add(mode)
        assert set(doc) == {"data", "timestamp", "type"} and doc["type"] == mode
        assert set(doc["data"]) == expected[mode]
        assert ZEBRA_TS.match(doc["timestamp"]) and doc["timestamp"].endswith("+0200")
        assert re.fullmatch(r"[0-9a-f]{24}", doc["data"]["idHex"])
        if mode == "INVENTORY":
            assert isinstance(doc["data"]["peakRssi"], int) and doc["data"]["reads"] >= 1
    assert seen == set(expected)


def test_batched_zebra_messages_are_arrays(tmp_path: Path) -> None:
    out, _ = _run(tmp_path, "busy-saturday", 1, duration=20)
    batches = [orjson.loads(r["payload"]) for r in _lines(out) if r["topic"].startswith("tevents/")]
    assert batches and all(isinstance(b, list) and b for b in batches)
    assert all(e["type"] == "INVENTORY" and "peakRssi" in e["data"] for b in batches for e in b)


def test_impinj_epc_is_base64url_of_the_item_and_units_are_vendor_units(
    dead_run: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    out, truth = dead_run
    epcs = {r["epc"] for r in truth if r["kind"] == "item"}
    tag_events = 0
    kinds = set()
    for rec in out:
        if not rec["topic"].startswith("impinj/"):
            continue
        doc = orjson.loads(rec["payload"])
        kinds.add(doc["eventType"])
        assert doc["timestamp"].endswith("Z")
        if "tagInventoryEvent" in doc:
            tag_events += 1
            ev = doc["tagInventoryEvent"]
            assert "epcHex" not in ev  # off by default (WIRE-FORMATS §2)
            epc_hex = base64.urlsafe_b64decode(ev["epc"] + "=" * (-len(ev["epc"]) % 4)).hex()
            assert epc_hex.upper() in epcs
            assert isinstance(ev["peakRssiCdbm"], int) and -9000 < ev["peakRssiCdbm"] < -1000
            assert ev["frequency"] in (865700, 866300, 866900, 867500)
    assert tag_events > 100
    assert {"tagInventory", "antennaDisconnected", "antennaConnected"} <= kinds


def test_espresense_topic_and_v4_fields(
    dead_run: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    out, _ = dead_run
    reports = [r for r in out if r["topic"].startswith("espresense/devices/")]
    assert reports
    for rec in reports:
        _, _, device_id, room = rec["topic"].split("/")
        doc = orjson.loads(rec["payload"])
        assert doc["id"] == device_id and room
        assert set(doc) == {
            "mac",
            "id",
            "rssi@1m",
            "rssi",
            "rxAdj",
            "rssiVar",
            "distance",
            "var",
            "close",
            "int",
        }
        assert isinstance(doc["rssi"], float)
        # ESPresense v4 distance: 10^((rssi@1m - rssi) / (10 * 2.7)).
        want = 10 ** ((doc["rssi@1m"] - doc["rssi"]) / 27)
        assert doc["distance"] == pytest.approx(want, abs=0.02, rel=0.01)
        if device_id.startswith("iBeacon:"):
            assert re.fullmatch(r"iBeacon:[0-9a-f-]{36}-\d{1,5}-\d{1,5}", device_id)


def test_reboot_restarts_event_num_and_dead_antenna_goes_silent(
    dead_run: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    out, truth = dead_run
    nums = [
        (r["t"], orjson.loads(r["payload"])["data"]["eventNum"])
        for r in out
        if r["topic"] == "tevents/zebra-fx-1"
    ]
    before = [n for t, n in nums if t < 200]
    after = [n for t, n in nums if t >= 230]
    assert not [n for t, n in nums if 200 <= t < 230]
    assert before and after and after[0] == 1 < before[-1]
    dead_port = [
        r
        for r in out
        if r["topic"] == "tevents/zebra-fx-2"
        and r["t"] >= 60
        and orjson.loads(r["payload"])["data"].get("antenna") == 2
    ]
    assert dead_port == []
    assert {r["fault"] for r in truth if r["kind"] == "fault"} == {"reboot", "dead_antenna"}


def test_web_events_in_the_three_formats(tmp_path: Path) -> None:
    out, truth = _run(tmp_path, "viewed-online", 2, duration=10)
    web = [r for r in _lines(out) if r["kind"] == "http"]
    sources = {r["source"] for r in web}
    assert sources == {"segment", "ga4", "shopify"}
    for r in web:
        doc = orjson.loads(r["payload"])
        if r["source"] == "segment":
            assert doc["type"] == "track" and doc["event"] == "Product Viewed"
            assert doc["properties"]["currency"] in ("EUR", "eur")
        elif r["source"] == "ga4":
            item = doc["events"][0]["params"]["items"][0]
            assert doc["events"][0]["name"] == "view_item" and isinstance(item["price"], str)
        else:
            variant = doc["data"]["productVariant"]
            assert doc["name"] == "product_viewed" and variant["id"].isdigit()
    viewed = {r["sku"] for r in _lines(truth) if r["kind"] == "online_view"}
    assert {"WDX03-GRE-M", "MJX06-GRE-S"} <= viewed


def test_stockroom_size_is_brought_then_picked_and_bought(tmp_path: Path) -> None:
    _, truth = _run(tmp_path, "stockroom-size", 1, duration=400)
    records = _lines(truth)
    gtin = next(r for r in records if r["kind"] == "shopper")["wanted_gtins"][0]
    hung = [r for r in records if r["kind"] == "item" and r["why"] == "staff_hang"]
    assert hung and hung[0]["gtin"] == gtin and hung[0]["rack"] == "rack-w1"
    acts = [(r["interaction"], r["gtin"]) for r in records if r["kind"] == "interaction"]
    assert ("picked", gtin) in acts and ("bought", gtin) in acts


@pytest.mark.mqtt
def test_publishing_through_a_real_broker_records_acks(mosquitto: Broker, tmp_path: Path) -> None:
    sc = load_scenario("viewed-online").model_copy(update={"duration_s": 40})
    truth = tmp_path / "truth.jsonl"
    report = run_simulation(
        Simulation(sc.bundle(), sc, 5), speed=None, out=None, truth=truth, mqtt_url=mosquitto.url
    )
    publishes = [r for r in _lines(truth) if r["kind"] == "publish"]
    assert len(publishes) == report.messages > 0
    assert all(r["acked"] is True and r["qos"] == 1 for r in publishes)


@pytest.mark.mqtt
def test_load_sustains_ten_readers_at_200_reads_per_second(mosquitto: Broker) -> None:
    report = run_load(
        mqtt_url=mosquitto.url,
        stores=1,
        readers=10,
        reads_per_second=200,
        phones=20,
        batch=50,
        duration_s=2.0,
    )
    assert report.target_reads_per_s == 2000
    assert report.ratio >= 0.95
    assert report.acked == report.messages

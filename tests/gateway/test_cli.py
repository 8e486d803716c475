"""``vitrine readers parse`` and ``vitrine epc decode``: stdout, stderr and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from gateway.cli import register

# The gateway's groups mounted on a bare root, as vitrine/cli.py mounts them: these
# tests stay about this package's commands, not the composition root.
app = typer.Typer()
register(app)
runner = CliRunner()

ZEBRA_INVENTORY = (
    '{"data":{"eventNum":7,"format":"epc","idHex":"3074257bf7194e4000001a85","antenna":2,'
    '"peakRssi":-62,"reads":3},"timestamp":"2024-09-05T01:07:01.785-0600","type":"INVENTORY"}'
)
ZEBRA_HEARTBEAT = (
    '{"component":"RG","data":{"radio_control":{}},"eventNum":372,'
    '"timestamp":"2024-09-05T01:07:01.785-0600","type":"heartbeat"}'
)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_readers_parse_ndjson_good_lines_around_a_bad_one(tmp_path: Path) -> None:
    capture = tmp_path / "zebra.ndjson"
    capture.write_text(f"{ZEBRA_INVENTORY}\n{{broken\n{ZEBRA_HEARTBEAT}\n{ZEBRA_INVENTORY}\n")
    result = runner.invoke(
        app, ["readers", "parse", "--format", "zebra", "--reader", "fx9600-1", str(capture)]
    )
    assert result.exit_code == 1
    out = [json.loads(line) for line in lines(result.stdout)]
    assert len(out) == 2
    assert out[0] | {} == {
        "kind": "rfid",
        "epc": "3074257BF7194E4000001A85",
        "antenna": 2,
        "rssi_dbm": -62.0,
        "timestamp": "2024-09-05T07:07:01.785000Z",
        "reader": "fx9600-1",
        "seen_count": 3,
        "sequence": 7,
        "scheme": "sgtin-96",
        "gtin": "80614141123458",
        "serial": "6789",
        "uri": "urn:epc:id:sgtin:0614141.812345.6789",
    }
    err = lines(result.stderr)
    assert err[0].startswith("rejected: payload is not valid JSON")
    assert err[1] == "skipped: heartbeat event from fx9600-1 carries no read"
    assert len(err) == 2


def test_readers_parse_stdin_array_auto_exit_0() -> None:
    result = runner.invoke(
        app, ["readers", "parse"], input=f"[{ZEBRA_INVENTORY},{ZEBRA_HEARTBEAT}]"
    )
    assert result.exit_code == 0, result.stderr
    (read,) = [json.loads(line) for line in lines(result.stdout)]
    assert (read["kind"], read["reader"], read["antenna"]) == ("rfid", None, 2)
    assert lines(result.stderr) == ["skipped: heartbeat event carries no read"]


def test_readers_parse_espresense_ble_with_topic() -> None:
    payload = '{"id":"iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-1-2","rssi@1m":-59,"rssi":-81.1,"distance":6.58}'  # noqa: E501
    result = runner.invoke(
        app,
        [
            "readers",
            "parse",
            "--topic",
            "espresense/devices/iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-1-2/till",
            "-",
        ],
        input=payload,
    )
    assert result.exit_code == 0
    (read,) = [json.loads(line) for line in lines(result.stdout)]
    assert read == {
        "kind": "ble",
        "device_id": "iBeacon:fda50693-a4e2-4fb1-afcf-c6eb07647825-1-2",
        "room": "till",
        "rssi_dbm": -81.1,
        "distance_m": 6.58,
        "ibeacon": {"uuid": "fda50693-a4e2-4fb1-afcf-c6eb07647825", "major": 1, "minor": 2},
        "timestamp": None,
        "rssi_at_1m": -59.0,
    }
    assert result.stderr == ""


def test_readers_parse_impinj_overflow_and_status_are_skipped() -> None:
    stream = (
        '{"timestamp":"2023-05-01T10:00:00Z","eventType":"overflow","overflowEvent":{"eventsPurged":12}}\r\n'
        "\r\n"
        '{"timestamp":"2023-05-01T10:00:01Z","tagInventoryEvent":{"epc":"ikUCJA==","peakRssiCdbm":-5750}}\r\n'
    )
    result = runner.invoke(
        app, ["readers", "parse", "--format", "impinj", "--reader", "r700"], input=stream
    )
    assert result.exit_code == 0
    (read,) = [json.loads(line) for line in lines(result.stdout)]
    assert (read["epc"], read["rssi_dbm"], read["timestamp"]) == (
        "8A450224",
        -57.5,
        "2023-05-01T10:00:01Z",
    )
    assert "scheme" not in read  # not an SGTIN: kept opaque
    assert lines(result.stderr) == [
        "skipped: overflow event from r700 (reader purged 12 events) carries no read"
    ]


def test_readers_parse_bad_format_is_a_usage_error() -> None:
    result = runner.invoke(app, ["readers", "parse", "--format", "rfidcorp"], input="{}")
    assert result.exit_code == 2


def test_epc_decode_prints_one_object_each_and_rejects_invalid() -> None:
    result = runner.invoke(
        app,
        ["epc", "decode", "3074257BF7194E4000001A85", "307C257BF7194E4000001A85", "e2801160600002"],
    )
    assert result.exit_code == 1
    first, second = [json.loads(line) for line in lines(result.stdout)]
    assert first == {
        "epc": "3074257BF7194E4000001A85", "scheme": "sgtin-96", "gtin": "80614141123458",
        "company_prefix": "0614141", "item_reference": "812345", "serial": "6789", "filter": 3,
        "partition": 5, "uri": "urn:epc:id:sgtin:0614141.812345.6789",
        "tag_uri": "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
    }  # fmt: skip
    assert (second["epc"], second["scheme"], second["gtin"]) == ("E2801160600002", "unknown", None)
    assert lines(result.stderr) == [
        "rejected: sgtin-96 EPC 307C257BF7194E4000001A85 has partition 7, which TDS leaves invalid"
    ]


def test_epc_decode_all_valid_exits_0() -> None:
    result = runner.invoke(
        app, ["epc", "decode", "3674257BF6B7A659B2C2BF1000000000000000000000000000"]
    )
    assert result.exit_code == 0
    (info,) = [json.loads(line) for line in lines(result.stdout)]
    assert info["tag_uri"] == "urn:epc:tag:sgtin-198:3.0614141.712345.32a%2Fb"

"""``vitrine`` sub-commands contributed by the gateway package.

* ``vitrine readers parse`` — run captured vendor payloads through the adapters and
  print one JSON object per normalised read (what an integrator checks first when
  pointing a reader at the broker).
* ``vitrine readers llrp-bridge`` — an LLRP reader's tag reports onto its vendor
  topic (:mod:`gateway.llrp_bridge`).
* ``vitrine epc decode`` — SGTIN-96/198 → GTIN-14 + serial (GS1 TDS).

Both print results on stdout, ``skipped: …`` / ``rejected: …`` on stderr, and exit
1 when anything was rejected.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from gateway.adapters import FORMATS, AdapterError, parse
from gateway.epc import EpcError, decode_epc, try_decode_epc
from gateway.reads import AdapterOutput, BleRead, DeviceEvent, RfidRead, Skipped
from gateway.timestamps import to_rfc3339

__all__ = ["register", "render_output"]

readers_app = typer.Typer(
    help="Inspect RFID reader and BLE scanner payloads.", no_args_is_help=True
)
epc_app = typer.Typer(help="GS1 EPC tools.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount the gateway's command groups on the root ``vitrine`` app."""
    app.add_typer(readers_app, name="readers")
    app.add_typer(epc_app, name="epc")
    _register_gateway_group(app)


def render_output(output: AdapterOutput) -> tuple[str, str]:
    """``("out", json)`` for a read, ``("err", "skipped: …")`` for anything without one."""
    if isinstance(output, RfidRead):
        body: dict[str, Any] = {
            "kind": "rfid",
            "epc": output.epc,
            "antenna": output.antenna,
            "rssi_dbm": output.rssi_dbm,
            "timestamp": _time(output),
            "reader": output.reader,
        }
        for key in ("seen_count", "frequency_mhz", "phase_deg", "tid", "sequence"):
            value = getattr(output, key)
            if value is not None:
                body[key] = value
        if output.clock_suspect:
            body["clock_suspect"] = True
        info = try_decode_epc(output.epc)
        if info is not None and info.scheme != "unknown":
            body.update(scheme=info.scheme, gtin=info.gtin, serial=info.serial, uri=info.uri)
        return "out", orjson.dumps(body).decode()
    if isinstance(output, BleRead):
        beacon = output.ibeacon
        body = {
            "kind": "ble",
            "device_id": output.device_id,
            "room": output.room,
            "rssi_dbm": output.rssi_dbm,
            "distance_m": output.distance_m,
            "ibeacon": None
            if beacon is None
            else {"uuid": beacon.uuid, "major": beacon.major, "minor": beacon.minor},
            "timestamp": _time(output),
        }
        if output.rssi_at_1m is not None:
            body["rssi_at_1m"] = output.rssi_at_1m
        if output.scanner is not None:
            body["scanner"] = output.scanner
        return "out", orjson.dumps(body).decode()
    if isinstance(output, DeviceEvent):
        return "err", f"skipped: {_describe_event(output)}"
    assert isinstance(output, Skipped)
    return "err", f"skipped: {output.reason}"


def _time(output: RfidRead | BleRead) -> str | None:
    return None if output.timestamp is None else to_rfc3339(output.timestamp)


def _describe_event(event: DeviceEvent) -> str:
    source = f" from {event.device}" if event.device else ""
    extra = ""
    if event.antenna is not None:
        extra = f" (antenna {event.antenna})"
    if event.event == "overflow":
        lost = "an unknown number of" if event.lost is None else str(event.lost)
        extra = f" (reader purged {lost} events)"
    if event.event == "status":
        message = event.detail.get("message", event.detail.get("status"))
        if message is not None:
            extra = f" {str(message)[:80]!r}"
    return f"{event.event} event{source}{extra} carries no read"


def _documents(data: bytes) -> list[bytes]:
    """One JSON document (object or array) as a whole, else one payload per non-blank line."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        return [data]
    lines = [line.strip() for line in data.splitlines()]
    return [line for line in lines if line]


@readers_app.command("parse")
def parse_command(
    source: Annotated[str, typer.Argument(help="Capture file, or - for stdin.")] = "-",
    fmt: Annotated[
        str,
        typer.Option("--format", help=f"Payload format: {'|'.join(FORMATS)}.", show_default=True),
    ] = "auto",
    topic: Annotated[
        str | None, typer.Option("--topic", help="MQTT topic it arrived on (ESPresense room).")
    ] = None,
    reader: Annotated[
        str | None, typer.Option("--reader", help="Reader/scanner id to attribute reads to.")
    ] = None,
) -> None:
    """Print one JSON object per normalised read; skipped/rejected input on stderr."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    data = sys.stdin.buffer.read() if source == "-" else _read_file(source)
    rejected = False
    documents = _documents(data)
    if not documents:
        typer.echo("skipped: empty input", err=True)
    for document in documents:
        try:
            outputs = parse(fmt, document, topic=topic, reader=reader)
        except AdapterError as exc:
            outputs = list(exc.partial)
            _emit(outputs)
            typer.echo(f"rejected: {exc.reason}", err=True)
            rejected = True
            continue
        _emit(outputs)
    if rejected:
        raise typer.Exit(1)


def _read_file(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}") from None


def _emit(outputs: list[AdapterOutput]) -> None:
    for output in outputs:
        stream, line = render_output(output)
        typer.echo(line, err=stream == "err")


@readers_app.command("llrp-bridge")
def llrp_bridge_command(
    host: Annotated[str, typer.Option("--host", help="The LLRP reader's address.")],
    topic: Annotated[
        str, typer.Option("--topic", help="The reader's vendor topic (readers[].topic).")
    ],
    port: Annotated[int, typer.Option("--port", help="LLRP TCP port.")] = 5084,
    reader: Annotated[
        str, typer.Option("--reader", help="Reader id (readers[].id), for logs.")
    ] = "llrp-reader",
    antennas: Annotated[
        str, typer.Option("--antennas", help="Comma-separated antenna ports; 0 = all.")
    ] = "0",
    mqtt_url: Annotated[
        str | None, typer.Option("--mqtt-url", help="Default: VITRINE_MQTT_URL.")
    ] = None,
) -> None:
    """Run an LLRP reader session (sllurp) and publish its tag reports on --topic, QoS 1."""
    from gateway.llrp_bridge import BridgeConfig, main
    from vitrine.runtime.settings import CommonSettings

    try:
        ports = tuple(int(a) for a in antennas.split(",") if a.strip())
    except ValueError:
        raise typer.BadParameter("comma-separated integers", param_hint="--antennas") from None
    if not ports or any(not 0 <= a <= 0xFFFF for a in ports):
        raise typer.BadParameter("ports 1…65535, or 0 for all", param_hint="--antennas")
    common = CommonSettings()
    config = BridgeConfig(
        host=host,
        port=port,
        topic=topic,
        reader=reader,
        antennas=ports,
        mqtt_url=mqtt_url or common.mqtt_url,
    )
    raise typer.Exit(main(config, log_level=common.log_level, log_format=common.log_format))


@epc_app.command("decode")
def decode_command(
    epcs: Annotated[list[str], typer.Argument(help="EPCs as hex, e.g. 3074257BF7194E4000001A85.")],
) -> None:
    """Decode EPCs: SGTIN-96/198 to GTIN-14 + serial; other schemes are reported as unknown."""
    rejected = False
    for raw in epcs:
        try:
            info = decode_epc(raw)
        except EpcError as exc:
            typer.echo(f"rejected: {exc}", err=True)
            rejected = True
            continue
        typer.echo(orjson.dumps(info.as_dict()).decode())
    if rejected:
        raise typer.Exit(1)


# ----------------------------------------------------------- vitrine gateway run
# (the service's command group; owned with gateway/service.py)


def _register_gateway_group(app: typer.Typer) -> None:
    """``vitrine gateway run``: the gateway process (vendor topics in, store facts out)."""
    gateway_app = typer.Typer(help="The store gateway process.", no_args_is_help=True)

    @gateway_app.command("run")
    def run_command(
        layout: Annotated[
            Path | None, typer.Option("--layout", help="Store layout file (YAML or JSON).")
        ] = None,
        layout_url: Annotated[
            str | None,
            typer.Option(
                "--layout-url",
                help="Or the server's /v1/stores/{store}/layout URL "
                "(token: VITRINE_GATEWAY_SERVER_TOKEN).",
            ),
        ] = None,
        gateway_id: Annotated[
            str | None, typer.Option("--gateway-id", help="This gateway's id (default gw1).")
        ] = None,
        state_dir: Annotated[
            Path | None,
            typer.Option("--state-dir", help="Directory of the pipeline state file."),
        ] = None,
    ) -> None:
        """Subscribe to the layout's vendor topics and publish store facts until SIGTERM.

        The layout is a file (--layout) or the server's copy (--layout-url), exactly one.
        """
        from gateway.service import main
        from gateway.settings import GatewaySettings

        overrides: dict[str, Any] = {}
        if layout is not None:
            overrides["layout"] = layout
        if layout_url is not None:
            overrides["layout_url"] = layout_url
        if gateway_id is not None:
            overrides["gateway_id"] = gateway_id
        if state_dir is not None:
            overrides["state_dir"] = state_dir
        raise typer.Exit(main(GatewaySettings(**overrides)))

    app.add_typer(gateway_app, name="gateway")

"""``vitrine sim …``: run a scenario, or offer sustained load (docs/simulator.md)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

__all__ = ["register"]

log = logging.getLogger(__name__)

sim_app = typer.Typer(
    help="Simulate a store's readers, scanners and shoppers.", no_args_is_help=True
)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@sim_app.command("run")
def run_command(
    scenario: str = typer.Option(..., "--scenario", help="A shipped scenario name or a YAML file."),
    speed: str = typer.Option("max", "--speed", help="Times real time, or 'max'."),
    seed: int = typer.Option(1, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Every emitted message, JSON lines."),
    truth: Path | None = typer.Option(None, "--truth", help="Ground truth, JSON lines."),
    no_broker: bool = typer.Option(False, "--no-broker", help="Do not publish to MQTT."),
    mqtt_url: str | None = typer.Option(None, "--mqtt-url", help="Default: VITRINE_MQTT_URL."),
    events_url: str | None = typer.Option(
        None, "--events-url", help="POST web events here, e.g. http://127.0.0.1:8000/v1/events."
    ),
    events_token: str | None = typer.Option(
        None,
        "--events-token",
        envvar="VITRINE_SIM_EVENTS_TOKEN",
        help="Bearer token for --events-url (`vitrine auth token --role ingest`).",
    ),
    server_url: str | None = typer.Option(
        None,
        "--server-url",
        help="Register app shoppers with this Vitrine server before they walk in "
        "(POST /v1/admin/installs); web events then default to its /v1/events.",
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="VITRINE_SIM_ADMIN_TOKEN",
        help="Bearer token for --server-url (`vitrine auth token --role admin`).",
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="Override the scenario's start: an ISO time, or 'now' (each round starts now "
        "and the app's tokens follow the wall clock at any --speed; for live runs).",
    ),
    duration: float | None = typer.Option(None, "--duration", help="Override (sim seconds)."),
    loop: bool = typer.Option(
        False, "--loop", help="Play the scenario again (next seed) until stopped; for demos."
    ),
) -> None:
    """Run a scenario: real time × --speed, deterministic for a --seed."""
    from firmware_sim.engine import Simulation
    from firmware_sim.scenario import ScenarioError, load_scenario
    from firmware_sim.shell import run_simulation
    from vitrine.runtime.ops import stop_event_on_signals
    from vitrine.runtime.settings import CommonSettings

    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario") from exc
    if duration is not None:
        sc = sc.model_copy(update={"duration_s": duration})
    if speed == "max":
        pace: float | None = None
    else:
        try:
            pace = float(speed)
        except ValueError:
            raise typer.BadParameter("a number or 'max'", param_hint="--speed") from None
        if pace <= 0:
            raise typer.BadParameter("must be > 0", param_hint="--speed")
    if start is not None and start != "now":
        try:
            at = datetime.fromisoformat(start)
        except ValueError:
            raise typer.BadParameter("an ISO time or 'now'", param_hint="--start") from None
        if at.tzinfo is None:
            raise typer.BadParameter("needs a UTC offset", param_hint="--start")
        sc = sc.model_copy(update={"start": at})
    url = None if no_broker else (mqtt_url or CommonSettings().mqtt_url)
    stop = stop_event_on_signals()
    while not stop.is_set():
        clock_rate = 1.0
        if start == "now":
            # Second 0 is now; the phones' tokens rotate on the wall clock, which is
            # what the gateway stamps facts with and the server resolves against.
            sc = sc.model_copy(update={"start": datetime.now(UTC).replace(microsecond=0)})
            clock_rate = 1.0 / pace if pace is not None else 1.0
        sim = Simulation(sc.bundle(), sc, seed, phone_clock_rate=clock_rate)
        report = run_simulation(
            sim,
            speed=pace,
            out=out,
            truth=truth,
            mqtt_url=url,
            events_url=events_url,
            events_token=events_token,
            server_url=server_url,
            admin_token=admin_token,
            progress=_progress,
            stop=stop,
        )
        acked = f"{report.acked} acked" if url else "no broker"
        _progress(
            f"done: {sc.name} seed {seed}: {report.sim_seconds:.0f} sim s in "
            f"{report.wall_seconds:.1f} s, {report.messages} MQTT messages ({acked}), "
            f"{report.http_events} web events ({report.http_failed} failed posts)"
            + (
                f", {report.registered} app shoppers registered ({report.register_failed} failed)"
                if server_url
                else ""
            )
        )
        if not loop:
            break
        # A new seed each round: new shoppers, same store; files keep the last round only.
        seed += 1


@sim_app.command("load")
def load_command(
    stores: int = typer.Option(1, "--stores", min=1),
    readers: int = typer.Option(10, "--readers", min=1),
    reads_per_second: float = typer.Option(200.0, "--reads-per-second", min=0),
    phones: int = typer.Option(0, "--phones", min=0),
    batch: int = typer.Option(50, "--batch", min=1, help="Reads per message (1 = no batching)."),
    duration: float = typer.Option(10.0, "--duration", min=0.1, help="Wall seconds."),
    qos: int = typer.Option(0, "--qos", min=0, max=2),
    mqtt_url: str | None = typer.Option(None, "--mqtt-url", help="Default: VITRINE_MQTT_URL."),
) -> None:
    """Offer sustained load; reports offered reads/s against the target."""
    from firmware_sim.load import run_load
    from vitrine.runtime.settings import CommonSettings

    report = run_load(
        mqtt_url=mqtt_url or CommonSettings().mqtt_url,
        stores=stores,
        readers=readers,
        reads_per_second=reads_per_second,
        phones=phones,
        batch=batch,
        duration_s=duration,
        qos=qos,
        progress=_progress,
    )
    typer.echo(
        f"offered {report.offered_reads_per_s:,.0f} reads/s of target "
        f"{report.target_reads_per_s:,.0f} ({report.ratio:.1%}) over {report.duration_s:.1f} s; "
        f"{report.offered_ble} BLE reports; {report.messages} messages, {report.acked} acked"
    )


@sim_app.command("llrp-reader")
def llrp_reader_command(
    port: int = typer.Option(5084, "--port", help="TCP port (0: any free one, printed)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    tags: list[str] = typer.Option(
        [], "--tag", help="EPCHEX:ANTENNA[:RSSI]; repeat. Default: --stock items."
    ),
    stock: int = typer.Option(
        12, "--stock", min=0, help="Without --tag: this many sample-store items, round robin."
    ),
    antennas: int = typer.Option(4, "--antennas", min=1, max=32),
    round_ms: float = typer.Option(100.0, "--round-ms", min=1.0, help="Inventory round period."),
    unset_clock: bool = typer.Option(
        False, "--unset-clock", help="Report January 2000 times, like a reader without NTP."
    ),
    seed: int = typer.Option(1, "--seed"),
) -> None:
    """Serve as an LLRP 1.0.1 reader on TCP until stopped (docs/simulator.md)."""
    import time

    from firmware_sim.llrp_reader import LlrpReaderSimulator, SimTag, parse_tag
    from firmware_sim.store import SampleFiles, load_stock
    from vitrine.runtime.ops import stop_event_on_signals

    try:
        field = [parse_tag(t) for t in tags]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tag") from None
    if not field:
        items = load_stock(SampleFiles().stock).items[:stock]
        field = [
            SimTag(item.epc, 1 + i % antennas, -45.0 - (i % 5) * 5) for i, item in enumerate(items)
        ]
    booted = time.monotonic()

    def unset() -> int:  # 2000-01-01T00:00Z plus the time since "boot", in µs
        return 946_684_800_000_000 + int((time.monotonic() - booted) * 1e6)

    stop = stop_event_on_signals()
    sim = LlrpReaderSimulator(
        field,
        host=host,
        port=port,
        antennas=antennas,
        round_s=round_ms / 1000,
        seed=seed,
        clock=unset if unset_clock else (lambda: time.time_ns() // 1000),
    )
    with sim:
        _progress(f"LLRP reader on {host}:{sim.port}: {len(field)} tags, {antennas} antennas")
        stop.wait()
    _progress(f"stopped: {sim.connections} connections, {sim.reports} reports")


def register(app: typer.Typer) -> None:
    """Mount ``vitrine sim`` on the root ``vitrine`` app."""
    app.add_typer(sim_app, name="sim")

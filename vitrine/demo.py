"""``vitrine demo`` and ``vitrine run``: every Vitrine process of one store, supervised.

``vitrine demo`` starts Mosquitto (from ``deploy/mosquitto.conf``), migrates an
SQLite database, imports the sample store, catalogue and stock, then runs the
server (HTTP API and pages), the ingest (engine + outbox), mobile_api, the
gateway and a simulator scenario on a loop. The simulator registers its app
shoppers with the server as the retailer's app backend would (install, token
secret, web ids, consents: ``POST /v1/admin/installs``) and posts their online
views, so the staff dashboard shows their arrivals on its own. The demo also
posts the online product views of one demo shopper (``demo-shopper``) so that a
phone signed in as them on ``/phone`` gets a living arrival. It prints the
pages' URLs and a live status line (processes up, device messages/s, facts/s,
shoppers in store). Ctrl-C stops everything cleanly, newest first.

``vitrine run --config store.yaml`` runs the same processes for a real store
(no simulator, no demo data): ``docs/running-a-store.md``.

Processes are started through the ``vitrine`` CLI rather than imported: the
demo runs exactly what a store runs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict

from vitrine.runtime.broker import free_port, start_local_broker, wait_for_port
from vitrine.runtime.mqtt import parse_mqtt_url
from vitrine.runtime.ops import stop_event_on_signals
from vitrine.runtime.supervise import ProcessGroup, vitrine_command

__all__ = [
    "DEMO_SHOPPER",
    "DEMO_VIEWS",
    "DemoPlan",
    "StoreConfig",
    "post_demo_views",
    "run_demo",
    "run_store",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LAYOUT = REPO / "firmware_sim" / "data" / "store.yaml"
SAMPLE_CATALOGUE = REPO / "firmware_sim" / "data" / "catalogue.json"
SAMPLE_STOCK = REPO / "firmware_sim" / "data" / "stock.json"
SAMPLE_STORE = "demo-rivoli"
#: The iBeacon proximity UUID the simulator's app shoppers advertise
#: (``firmware_sim.scenario.Scenario.app_uuid``); the gateway passes devices
#: with it through as the app's rotating token. A test keeps the two equal.
SIM_APP_UUID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#: The web user id the demo's phone signs in as (``/phone`` pre-fills it).
DEMO_SHOPPER = "demo-shopper"
#: SKUs of the sample catalogue the demo shopper viewed online: a shirt on the
#: women's floor (rack-w1) and a dress on rack-w2, both in size M.
DEMO_VIEWS = ("LSX00-SKY-M", "WDX03-GRE-M")
#: Staff and ingest tokens minted for a demo session: a working day.
TOKEN_HOURS = 12

_ONE_SHOT = frozenset({"migrate", "store-import", "catalogue-import", "stock-import"})


@dataclass
class DemoPlan:
    workdir: Path
    http_port: int = 8000
    mobile_port: int = 8100
    broker_port: int = 1883
    #: busy-saturday plus two consenting app shoppers in the first minute.
    scenario: str = "demo-saturday"
    speed: str = "1"
    #: Print the status line (off for tests reading stdout).
    status: bool = True


class StoreConfig(BaseModel):
    """``vitrine run --config``: one store's processes (docs/running-a-store.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The store layout (``vitrine.contracts.layout.StoreLayout``), imported at start.
    layout: Path
    #: Optional catalogue and stock files, imported at start (idempotent upserts).
    catalogue: Path | None = None
    stock: Path | None = None
    database_url: str = "sqlite:///var/vitrine.db"
    #: An existing broker; when absent a local Mosquitto is started on ``broker_port``.
    mqtt_url: str | None = None
    broker_port: int = 1883
    host: str = "127.0.0.1"
    http_port: int = 8000
    mobile_port: int = 8100
    #: The companion app's iBeacon proximity UUID (the gateway's ``APP_BEACON_UUID``).
    app_beacon_uuid: str | None = None
    #: Browser origins allowed on the phone WebSocket; default: this host's /phone.
    phone_origins: tuple[str, ...] = ()
    workdir: Path = Path("var/store")


@dataclass
class _Counters:
    device_msgs: int = 0
    facts: int = 0
    shoppers: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[int, int, int]:
        with self.lock:
            out = (self.device_msgs, self.facts, len(self.shoppers))
            self.device_msgs = self.facts = 0
        return out


def _watch_bus(mqtt_url: str, counters: _Counters) -> mqtt.Client:
    """Count what crosses the broker, for the status line (never logs payloads)."""

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe("#", qos=0)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with counters.lock:
            if msg.topic.startswith("vitrine/"):
                if "/facts/" in msg.topic:
                    counters.facts += 1
                    kind = msg.topic.rsplit("/", 1)[-1]
                    if kind in ("shopper_entered", "shopper_left"):
                        device = orjson.loads(msg.payload).get("device", "")
                        if kind == "shopper_entered":
                            counters.shoppers.add(device)
                        else:
                            counters.shoppers.discard(device)
            else:
                counters.device_msgs += 1

    target = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vitrine-status-{os.getpid()}")
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(target.host, target.port)
    client.loop_start()
    return client


def _port(preferred: int) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    import socket

    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        return free_port()


def _listening(port: int) -> bool:
    try:
        wait_for_port(port, timeout_s=0.2)
    except TimeoutError:
        return False
    return True


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _mint(env: Mapping[str, str], role: str, subject: str) -> str:
    """A bearer token from ``vitrine auth token`` (the same key as the server's)."""
    out = subprocess.run(
        vitrine_command(
            "auth", "token", "--role", role, "--subject", subject, "--hours", str(TOKEN_HOURS)
        ),
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def post_demo_views(
    server_url: str, ingest_token: str, user_id: str = DEMO_SHOPPER, days_ago: float = 1.0
) -> int:
    """POST the demo shopper's online product views as Segment ``Product Viewed`` tracks.

    Segment's e-commerce spec v2 (``Product Viewed``: ``product_id``, ``sku``,
    ``name``, ``variant``); ``messageId`` makes a re-run idempotent. Returns the
    number accepted.
    """
    at = datetime.now(UTC) - timedelta(days=days_ago)
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": user_id,
            "messageId": f"demo-view-{user_id}-{sku}",
            "timestamp": (at + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            "properties": {"sku": sku},
        }
        for i, sku in enumerate(DEMO_VIEWS)
    ]
    response = httpx.post(
        f"{server_url}/v1/events",
        json={"batch": batch},
        headers={"authorization": f"Bearer {ingest_token}"},
        timeout=10.0,
    )
    response.raise_for_status()
    accepted: int = response.json()["accepted"] + response.json().get("duplicate", 0)
    return accepted


@dataclass
class _Started:
    http: int
    mobile: int
    staff_token: str
    ingest_token: str
    admin_token: str = ""


def _start_store(
    group: ProcessGroup,
    *,
    layout: Path,
    catalogue: Path | None,
    stock: Path | None,
    host: str,
    http_port: int,
    mobile_port: int,
    workdir: Path,
    app_beacon_uuid: str | None,
    phone_origins: Sequence[str],
    mint_tokens: bool,
) -> _Started:
    """Migrate, import, then server, ingest, mobile_api and gateway, each waited for."""
    steps: list[tuple[str, list[str]]] = [("migrate", vitrine_command("db", "upgrade"))]
    steps.append(("store-import", vitrine_command("store", "import", str(layout))))
    if catalogue is not None:
        steps.append(("catalogue-import", vitrine_command("catalogue", "import", str(catalogue))))
    if stock is not None:
        steps.append(("stock-import", vitrine_command("catalogue", "import-stock", str(stock))))
    for name, argv in steps:
        child = group.start(name, argv)
        if child.process.wait() != 0:
            raise RuntimeError(f"{name} failed:\n{child.tail()}")
    http = _port(http_port)
    child = group.start(
        "server", vitrine_command("server", "run", "--host", host, "--port", str(http))
    )
    group.wait_until(child, lambda: _ready(http))
    # Each non-HTTP process serves /healthz on its own free ops port.
    child = group.start(
        "ingest", vitrine_command("server", "ingest"), env={"VITRINE_OPS_PORT": str(free_port())}
    )
    mobile = _port(mobile_port)
    origins = list(phone_origins) or [
        f"http://{h}:{mobile}" for h in dict.fromkeys((host, "127.0.0.1", "localhost"))
    ]
    child = group.start(
        "mobile_api",
        vitrine_command("mobile-api", "run", "--host", host, "--port", str(mobile)),
        env={"VITRINE_MOBILE_ALLOWED_ORIGINS": orjson.dumps(origins).decode()},
    )
    group.wait_until(child, lambda: _ready(mobile))
    gateway_env = {"VITRINE_OPS_PORT": str(free_port())}
    if app_beacon_uuid is not None:
        gateway_env["VITRINE_APP_BEACON_UUID"] = app_beacon_uuid
    group.start(
        "gateway",
        vitrine_command(
            "gateway", "run", "--layout", str(layout), "--state-dir", str(workdir / "gateway")
        ),
        env=gateway_env,
    )
    return _Started(
        http=http,
        mobile=mobile,
        # A real store's staff sign in with their own tokens: none is minted or printed.
        staff_token=_mint(group.env, "staff", "demo-staff") if mint_tokens else "",
        ingest_token=_mint(group.env, "ingest", "demo-web-events") if mint_tokens else "",
        # The simulator plays the retailer's app backend: it registers app installs.
        admin_token=_mint(group.env, "admin", "demo-app-backend") if mint_tokens else "",
    )


@contextmanager
def _broker(mqtt_url: str | None, workdir: Path, port: int) -> Iterator[str]:
    if mqtt_url is not None:
        yield mqtt_url
        return
    with start_local_broker(workdir / "mosquitto", _port(port)) as broker:
        yield broker.url


def _print_urls(started: _Started, host: str, store: str, extra: Sequence[str] = ()) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (only printed)
    server = f"http://{shown}:{started.http}"
    # The staff token rides in the URL *fragment*: browsers never send it to a
    # server, the page moves it to sessionStorage and removes it from the bar.
    fragment = f"#token={started.staff_token}" if started.staff_token else ""
    print(f"  staff dashboard   {server}/staff?store={store}{fragment}")
    print(f"  analytics         {server}/analytics?store={store}{fragment}")
    print(f"  shopper phone     http://{shown}:{started.mobile}/phone?store={store}")
    print(f"  API docs          {server}/docs")
    for line in extra:
        print(f"  {line}")


def run_demo(plan: DemoPlan) -> int:
    """Run the demo store until SIGINT/SIGTERM; returns the exit status."""
    stop = stop_event_on_signals()
    plan.workdir.mkdir(parents=True, exist_ok=True)
    with _broker(None, plan.workdir, plan.broker_port) as mqtt_url:
        db_url = f"sqlite:///{plan.workdir / 'vitrine.db'}"
        env = {
            "VITRINE_MQTT_URL": mqtt_url,
            "VITRINE_DATABASE_URL": db_url,
            "VITRINE_MODE": "local",
        }
        group = ProcessGroup(plan.workdir / "logs", env)
        try:
            started = _start_store(
                group,
                layout=SAMPLE_LAYOUT,
                catalogue=SAMPLE_CATALOGUE,
                stock=SAMPLE_STOCK,
                host="127.0.0.1",
                http_port=plan.http_port,
                mobile_port=plan.mobile_port,
                workdir=plan.workdir,
                app_beacon_uuid=SIM_APP_UUID,
                phone_origins=(),
                mint_tokens=True,
            )
            views = post_demo_views(f"http://127.0.0.1:{started.http}", started.ingest_token)
            # Tokens go by environment, not argv (a process list shows argv to every user).
            group.start(
                "simulator",
                vitrine_command(
                    "sim",
                    "run",
                    "--scenario",
                    plan.scenario,
                    "--speed",
                    plan.speed,
                    "--loop",
                    "--start",
                    "now",
                    "--server-url",
                    f"http://127.0.0.1:{started.http}",
                ),
                env={
                    "VITRINE_SIM_ADMIN_TOKEN": started.admin_token,
                    "VITRINE_SIM_EVENTS_TOKEN": started.ingest_token,
                },
            )
            print(f"Vitrine demo: broker {mqtt_url}, database {db_url}")
            _print_urls(
                started,
                "127.0.0.1",
                SAMPLE_STORE,
                (
                    f"demo shopper      sign in on the phone as '{DEMO_SHOPPER}' "
                    f"({views} online views)",
                    f"logs              {group.log_dir}",
                ),
            )
            print("Ctrl-C stops everything.", flush=True)
            _status_loop(group, mqtt_url, stop, plan.status)
        except (RuntimeError, TimeoutError, httpx.HTTPError, subprocess.CalledProcessError) as e:
            print(f"demo: {e}", file=sys.stderr)
            return 1
        finally:
            codes = group.stop()
            print(f"\ndemo stopped: {codes}", flush=True)
    return 0


def load_store_config(path: Path) -> StoreConfig:
    """Read ``store.yaml``; relative paths are relative to the file."""
    raw = yaml.safe_load(path.read_text()) or {}
    config = StoreConfig.model_validate(raw)
    base = path.resolve().parent

    def rel(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else base / p)

    return config.model_copy(
        update={
            "layout": rel(config.layout),
            "catalogue": rel(config.catalogue),
            "stock": rel(config.stock),
            "workdir": rel(config.workdir),
        }
    )


def run_store(config: StoreConfig) -> int:
    """``vitrine run``: the store's processes until SIGINT/SIGTERM."""
    stop = stop_event_on_signals()
    config.workdir.mkdir(parents=True, exist_ok=True)
    with _broker(config.mqtt_url, config.workdir, config.broker_port) as mqtt_url:
        env = {"VITRINE_MQTT_URL": mqtt_url, "VITRINE_DATABASE_URL": config.database_url}
        group = ProcessGroup(config.workdir / "logs", env)
        try:
            layout = yaml.safe_load(config.layout.read_text())
            store = str(layout["store"]["id"])
            started = _start_store(
                group,
                layout=config.layout,
                catalogue=config.catalogue,
                stock=config.stock,
                host=config.host,
                http_port=config.http_port,
                mobile_port=config.mobile_port,
                workdir=config.workdir,
                app_beacon_uuid=config.app_beacon_uuid,
                phone_origins=config.phone_origins,
                mint_tokens=False,
            )
            print(f"Vitrine store {store}: broker {mqtt_url}")
            _print_urls(started, config.host, store, (f"logs              {group.log_dir}",))
            print("Ctrl-C stops everything.", flush=True)
            _status_loop(group, mqtt_url, stop, True)
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as e:
            print(f"run: {e}", file=sys.stderr)
            return 1
        finally:
            codes = group.stop()
            print(f"\nstopped: {codes}", flush=True)
    return 0


def _status_loop(group: ProcessGroup, mqtt_url: str, stop: threading.Event, show: bool) -> None:
    counters = _Counters()
    watcher = _watch_bus(mqtt_url, counters)
    try:
        last = time.monotonic()
        #: Every 2 s: fast enough to look live, slow enough for a stable rate.
        while not stop.wait(2.0):
            now = time.monotonic()
            msgs, facts, shoppers = counters.take()
            running = [c for c in group.children if c.name not in _ONE_SHOT]
            up = sum(c.alive() for c in running)
            dead = [c.name for c in running if not c.alive()]
            span = now - last
            last = now
            line = (
                f"\rprocesses {up}/{len(running)} up | reads/s {msgs / span:7.1f} | "
                f"facts/s {facts / span:6.1f} | shoppers in store {shoppers:3d}"
            )
            if dead:
                line += f" | DOWN: {', '.join(dead)}"
            if show:
                sys.stdout.write(line)
                sys.stdout.flush()
    finally:
        watcher.loop_stop()
        watcher.disconnect()

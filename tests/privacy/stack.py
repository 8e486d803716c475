"""A whole store running for the privacy proofs: every process, its DEBUG logs, a tap on ``#``.

Real Mosquitto, a PostgreSQL database of its own, and the real processes as a
store runs them (``vitrine gateway run``, ``vitrine server ingest``,
``vitrine server run``, ``vitrine mobile-api run``), each logging JSON at
DEBUG into its own file. A paho tap subscribed to ``#`` records every message
any process (or device) publishes. Devices speak their vendors' formats
(WIRE-FORMATS.md §1 Zebra IoT Connector INVENTORY events, §5 ESPresense v4
device reports); shoppers go through the real APIs (``POST /v1/events``,
``POST /v1/installs``, ``POST /v1/auth/login``, consents).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import sqlalchemy as sa
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server import migrate
from server.auth.tokens import Principal, issue_token
from server.db import make_engine
from server.models import Item, Product, Variant
from server.stores.service import import_layout, parse_layout
from tests.reliability.procs import Tap, wait_until
from tests.support.layouts import APP_UUID
from tests.support.services import Broker, free_port
from vitrine.contracts.app_token import token_of
from vitrine.runtime.supervise import Child, ProcessGroup, vitrine_command

__all__ = [
    "APP_UUID",
    "Phone",
    "Shopper",
    "Stack",
    "database_rows",
    "expand",
    "layout",
    "start_stack",
]

#: Not a placeholder (the processes run in local mode anyway): keys the footfall
#: hash and the staff/admin tokens.
SECRET_KEY = "privacy-proof-secret-key-0123456789"
MOBILE_SECRET = "privacy-proof-mobile-secret-0123456789"
IDENTITY_SECRET = "privacy-proof-identity-secret-0123456789"
#: Seconds a process has to answer /readyz (four Python processes start on 2 cores).
READY_S = 45.0

#: The product every shopper viewed online, in size M, on the floor of both stores.
SKU_M = "PRV-SHIRT-M"


def layout(store: str) -> dict[str, Any]:
    """Entrance, floor, two tills, exit; one Zebra reader, four ESPresense rooms."""

    def zone(zid: str, ztype: str, x: float) -> dict[str, Any]:
        return {"id": zid, "name": zid, "type": ztype, "area": {"x": x, "y": 0, "w": 5, "h": 5}}

    return {
        "store": {"id": store, "name": f"Privacy {store}"},
        "zones": [
            zone("entrance", "entrance", 0),
            zone("floor", "sales_floor", 5),
            zone("till-1", "till", 10),
            zone("till-2", "till", 15),
            zone("exit", "exit", 20),
        ],
        "racks": [{"id": "r1", "zone": "floor", "name": "Shirts", "position": [6, 1]}],
        "readers": [
            {
                "id": "fx-1",
                "format": "zebra",
                "topic": f"{store}/tevents/fx-1",
                "antennas": [
                    {"port": 1, "zone": "floor", "rack": "r1", "position": [6, 1]},
                    {"port": 2, "zone": "till-1", "position": [11, 1]},
                    {"port": 3, "zone": "till-2", "position": [16, 1]},
                    {"port": 4, "zone": "exit", "position": [21, 1]},
                ],
            }
        ],
        "scanners": [
            {"id": "esp-entrance", "room": "entrance", "zone": "entrance", "position": [1, 1]},
            {"id": "esp-floor", "room": "floor", "zone": "floor", "position": [6, 2]},
            {"id": "esp-till1", "room": "till1", "zone": "till-1", "position": [11, 2]},
            {"id": "esp-till2", "room": "till2", "zone": "till-2", "position": [16, 2]},
        ],
        "espresense_prefix": f"espresense-{store}",
    }


def espresense_report(device_id: str, mac: str | None, rssi: float | None) -> bytes:
    """An ESPresense v4 device report (WIRE-FORMATS.md §5); ``rssi=None`` is a garbled one."""
    body: dict[str, Any] = {"id": device_id, "name": "", "rssi@1m": -59, "rxAdj": 0, "int": 500}
    if mac is not None:
        body["mac"] = mac
    if rssi is not None:
        body |= {"rssi": rssi, "rssiVar": 1.0, "var": 0.1, "close": rssi > -60}
    return orjson.dumps(body)


def zebra_read(event_num: int, epc: str, antenna: int, rssi: int = -50) -> bytes:
    """A Zebra IoT Connector INVENTORY event (WIRE-FORMATS.md §1), ``+hhmm`` offset."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
    data = {
        "eventNum": event_num,
        "format": "epc",
        "idHex": epc,
        "antenna": antenna,
        "peakRssi": rssi,
        "reads": 2,
    }
    return orjson.dumps({"data": data, "timestamp": stamp, "type": "INVENTORY"})


@dataclass
class Shopper:
    """A companion-app user: web identity, install, bearer tokens (all test-made)."""

    name: str
    web_id: str
    email: str
    install_id: str = ""
    secret: bytes = b""
    secret_b64: str = ""
    access: str = ""
    refresh: str = ""
    profile_id: str = ""

    def token(self, at: float | None = None) -> str:
        return f"{token_of(self.secret, time.time() if at is None else at):08x}"

    def tokens_around(self, start: float, seconds: float) -> set[str]:
        """Every rotating token the phone may have advertised in ``[start, start+seconds]``."""
        return {self.token(t) for t in (start - 900, start, start + seconds, start + 900)}

    def beacon_id(self) -> str:
        token = int(self.token(), 16)
        return f"iBeacon:{APP_UUID}-{token >> 16}-{token & 0xFFFF}"

    def secrets(self) -> list[str]:
        """What must never reach a log line or the bus."""
        return [
            self.web_id,
            self.email,
            self.install_id,
            self.secret_b64,
            self.secret.hex(),
            self.access,
            self.refresh,
        ]


@dataclass
class Phone:
    """A plain phone (no app): ESPresense sees its (random, rotating) MAC."""

    mac: str

    def forms(self) -> list[str]:
        """The MAC as any process might spell it."""
        bare = self.mac.replace(":", "")
        return [self.mac.lower(), self.mac.upper(), bare.lower(), bare.upper()]


@dataclass
class Stack:
    store: str
    store_b: str
    db_url: str
    engine: Engine
    broker: Broker
    group: ProcessGroup
    tap: Tap
    server_url: str
    mobile_url: str
    children: dict[str, Child] = field(default_factory=dict)
    #: Everyone enrolled and every bearer token issued: what no log may hold.
    shoppers: list[Shopper] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    publisher: mqtt.Client | None = None
    product_id: str = ""
    variant_m: str = ""
    _event_num: int = 0

    # ------------------------------------------------------------------ auth
    def admin(self) -> dict[str, str]:
        return self._bearer("admin")

    def ingest_token(self) -> dict[str, str]:
        return self._bearer("ingest")

    def _bearer(self, role: str) -> dict[str, str]:
        token = issue_token(
            SECRET_KEY.encode(),
            Principal(subject=f"privacy-{role}", role=role),  # type: ignore[arg-type]
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        self.issued.append(token)
        return {"Authorization": f"Bearer {token}"}

    # --------------------------------------------------------------- shoppers
    def enrol(self, name: str, consents: dict[str, bool]) -> Shopper:
        """Viewed online (``POST /v1/events``, with e-mail); app install, login, consents."""
        tag = uuid.uuid4().hex[:10]
        shopper = Shopper(name, web_id=f"web-{name}-{tag}", email=f"{name}.{tag}@example.org")
        self.shoppers.append(shopper)
        view = {
            "type": "product_viewed",
            "event_id": f"view-{tag}",
            "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "shopper": {"user_id": shopper.web_id, "email": shopper.email},
            "products": [{"sku": SKU_M}],
        }
        r = httpx.post(
            f"{self.server_url}/v1/events", json=view, headers=self.ingest_token(), timeout=10
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        r = httpx.post(f"{self.mobile_url}/v1/installs", timeout=10)
        assert r.status_code == 201, r.text
        created = r.json()
        shopper.install_id, shopper.secret_b64 = created["install_id"], created["secret"]
        shopper.secret = base64.b64decode(shopper.secret_b64)
        r = httpx.post(
            f"{self.mobile_url}/v1/auth/login",
            json={
                "install_id": shopper.install_id,
                "install_secret": shopper.secret_b64,
                "identity": identity_assertion(shopper.web_id),
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        shopper.access, shopper.refresh = r.json()["access_token"], r.json()["refresh_token"]
        me = httpx.get(f"{self.mobile_url}/v1/me", headers=self.me(shopper), timeout=10)
        shopper.profile_id = me.json()["id"]
        for purpose, granted in consents.items():
            self.app_consent(shopper, purpose, granted)
        return shopper

    def me(self, shopper: Shopper) -> dict[str, str]:
        return {"Authorization": f"Bearer {shopper.access}"}

    def app_consent(self, shopper: Shopper, purpose: str, granted: bool) -> None:
        """The shopper answers in the app (``PUT /v1/me/consents/{purpose}``)."""
        r = httpx.put(
            f"{self.mobile_url}/v1/me/consents/{purpose}",
            json={"granted": granted},
            headers=self.me(shopper),
            timeout=10,
        )
        assert r.status_code == 200, r.text

    def sighting(self, shopper: Shopper, store: str, zone: str) -> str | None:
        r = httpx.post(
            f"{self.mobile_url}/v1/me/sightings",
            json={"store": store, "zone": zone, "rssi_dbm": -55},
            headers=self.me(shopper),
            timeout=10,
        )
        assert r.status_code == 202, r.text
        published: str | None = r.json()["published"]
        return published

    # ---------------------------------------------------------------- devices
    def publish(self, topic: str, payload: bytes) -> None:
        assert self.publisher is not None
        self.publisher.publish(topic, payload, qos=1).wait_for_publish(10)

    def ble(self, device_id: str, room: str, rssi: float | None, mac: str | None = None) -> None:
        topic = f"espresense-{self.store}/devices/{device_id}/{room}"
        self.publish(topic, espresense_report(device_id, mac, rssi))

    def rfid(self, epc: str, antenna: int, rssi: int = -50) -> None:
        self._event_num += 1
        self.publish(f"{self.store}/tevents/fx-1", zebra_read(self._event_num, epc, antenna, rssi))

    # --------------------------------------------------------------- database
    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def logs(self) -> dict[str, str]:
        return {
            name: child.log_path.read_text(errors="replace")
            for name, child in self.children.items()
        }


def identity_assertion(web_user: str) -> str:
    """The online store's sign-in assertion (docs/mobile-api.md, "Sign-in")."""
    from mobile_api.tokens import TokenSigner

    return TokenSigner(IDENTITY_SECRET.encode(), time.time).issue("identity", web_user, 600)


_B64_FIELD = re.compile(rb'"payload_b64"\s*:\s*"([A-Za-z0-9+/=]*)"')


def expand(blob: bytes) -> str:
    """``blob`` as text, plus the decoded bytes of every ``payload_b64`` it carries."""
    parts = [blob.decode("utf-8", "replace")]
    for match in _B64_FIELD.finditer(blob):
        try:
            parts.append(base64.b64decode(match.group(1)).decode("utf-8", "replace"))
        except ValueError:
            continue
    return "\n".join(parts)


def database_rows(engine: Engine) -> Iterator[tuple[str, str]]:
    """(table, text of the row) for every row of every table, ``payload_b64`` decoded."""
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.select(sa.text("*")).select_from(sa.table(name))):
                cells: list[str] = []
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        cells.append(expand(bytes(value)))
                    elif isinstance(value, dict | list):
                        cells.append(expand(json.dumps(value, default=str).encode()))
                    elif value is not None:
                        cells.append(expand(str(value).encode()))
                yield name, "\x1f".join(cells)


def _seed(engine: Engine, stores: list[str]) -> tuple[str, str]:
    """The layouts, one product (shirt, M and L), three M shirts on each store's floor."""
    with Session(engine) as s:
        for store in stores:
            import_layout(s, parse_layout(yaml.safe_dump(layout(store)).encode()))
        product = Product(name="Linen shirt", category="shirts")
        s.add(product)
        s.flush()
        m = Variant(product_id=product.id, sku=SKU_M, size="M", price=Decimal("49.90"))
        big = Variant(product_id=product.id, sku="PRV-SHIRT-L", size="L")
        s.add_all([m, big])
        s.flush()
        seen = datetime.now(UTC) - timedelta(minutes=1)
        for store in stores:
            for _ in range(3):
                s.add(
                    Item(
                        epc=f"E2801100{secrets.token_hex(8).upper()}",
                        variant_id=m.id,
                        store_id=store,
                        zone_id="floor",
                        rack_id="r1",
                        last_seen_at=seen,
                    )
                )
        s.commit()
        return product.id, m.id


def add_items(stack: Stack, n: int) -> list[str]:
    """``n`` shirts in M on the gateway store's floor: what shoppers will buy."""
    epcs = [f"E2801100{secrets.token_hex(8).upper()}" for _ in range(n)]
    with Session(stack.engine) as s:
        for epc in epcs:
            s.add(
                Item(
                    epc=epc,
                    variant_id=stack.variant_m,
                    store_id=stack.store,
                    zone_id="floor",
                    rack_id="r1",
                    last_seen_at=datetime.now(UTC),
                )
            )
        s.commit()
    return epcs


def _ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def start_stack(broker: Broker, db_url: str, workdir: Path) -> Stack:
    """Migrate, seed, start the four processes at DEBUG and the tap; ready to drive."""
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    store = f"pv{uuid.uuid4().hex[:6]}"
    store_b = f"{store}-b"
    product_id, variant_m = _seed(engine, [store, store_b])
    layout_file = workdir / "store.yaml"
    layout_file.write_text(yaml.safe_dump(layout(store)))
    env = {
        "VITRINE_DATABASE_URL": db_url,
        "VITRINE_MQTT_URL": broker.url,
        "VITRINE_SECRET_KEY": SECRET_KEY,
        "VITRINE_MOBILE_SECRET_KEY": MOBILE_SECRET,
        "VITRINE_MOBILE_IDENTITY_SECRET": IDENTITY_SECRET,
        "VITRINE_APP_BEACON_UUID": APP_UUID,
        "VITRINE_LOG_LEVEL": "DEBUG",
        "VITRINE_LOG_FORMAT": "json",
    }
    tap = Tap(broker.host, broker.port, ["#"])
    group = ProcessGroup(workdir / "logs", env)
    ports = {name: free_port() for name in ("gateway", "ingest", "server", "mobile", "mops")}
    http_port, mobile_port = free_port(), free_port()
    children = {
        "ingest": group.start(
            "ingest",
            vitrine_command("server", "ingest"),
            {
                "VITRINE_OPS_PORT": str(ports["ingest"]),
                "VITRINE_INGEST_CLIENT_ID": f"privacy-{store}",
            },
        ),
        "gateway": group.start(
            "gateway",
            vitrine_command(
                "gateway",
                "run",
                "--layout",
                str(layout_file),
                "--gateway-id",
                "gwp",
                "--state-dir",
                str(workdir / "gw"),
            ),
            {"VITRINE_OPS_PORT": str(ports["gateway"])},
        ),
        "server": group.start(
            "server",
            vitrine_command("server", "run", "--port", str(http_port)),
            {"VITRINE_OPS_PORT": str(ports["server"])},
        ),
        "mobile_api": group.start(
            "mobile_api",
            vitrine_command("mobile-api", "run", "--port", str(mobile_port)),
            {"VITRINE_OPS_PORT": str(ports["mops"])},
        ),
    }
    stack = Stack(
        store=store,
        store_b=store_b,
        db_url=db_url,
        engine=engine,
        broker=broker,
        group=group,
        tap=tap,
        server_url=f"http://127.0.0.1:{http_port}",
        mobile_url=f"http://127.0.0.1:{mobile_port}",
        children=children,
        product_id=product_id,
        variant_m=variant_m,
    )
    try:
        for name, port in (("ingest", ports["ingest"]), ("gateway", ports["gateway"])):
            group.wait_until(children[name], _ready(port), timeout_s=READY_S)
        group.wait_until(children["server"], _ready(http_port), timeout_s=READY_S)
        group.wait_until(children["mobile_api"], _ready(mobile_port), timeout_s=READY_S)
        publisher = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"devices-{store}", protocol=mqtt.MQTTv5
        )
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        stack.publisher = publisher
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: Stack) -> dict[str, int | None]:
    """Stop the processes (SIGTERM, so their last lines are logged); idempotent."""
    codes = stack.group.stop()
    if stack.publisher is not None:
        stack.publisher.disconnect()
        stack.publisher.loop_stop()
        stack.publisher = None
    return codes


__all__ += ["add_items", "identity_assertion", "stop_stack", "wait_until"]

"""The gateway's layout from the server (``--layout-url``): fetch, cache, refresh, hot swap.

The server is the real app (migrated SQLite, the real import service) on a real
uvicorn socket; the gateway is ``vitrine gateway run`` as a subprocess on a real
Mosquitto. Nothing is mocked: "the server is down" is a port nobody listens on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from typer.testing import CliRunner

from gateway.layout_source import (
    FETCHES,
    LayoutCache,
    LayoutClient,
    LayoutRefusedError,
    ServerLayout,
    backoff_s,
    redact,
)
from server import migrate
from server.app import create_app
from server.auth.tokens import Principal, issue_token
from server.db import make_engine, session_factory
from server.settings import ServerSettings
from server.stores.service import import_layout
from tests.gateway.test_service import SGTIN_HEX, Listener, zebra
from tests.reliability.procs import wait_until
from tests.server.stores.test_layout_route import in_served_order
from tests.support.layouts import APP_UUID, gateway_layout
from tests.support.services import Broker, free_port, wait_for_port
from vitrine.contracts.facts import ItemArrived, parse_fact
from vitrine.contracts.layout import StoreLayout

SECRET = "layout-source-test-secret"
OTHER_SGTIN = "3074257bf7194e4000001a86"  # the same GTIN, serial 6790
THIRD_SGTIN = "3074257bf7194e4000001a87"  # serial 6791


class LayoutServer:
    """The server app on a migrated SQLite file; ``serve(port)`` puts it on a real socket."""

    def __init__(self, tmp: Path) -> None:
        url = f"sqlite:///{tmp / 'vitrine.db'}"
        migrate.upgrade(url)
        self.engine = make_engine(url)
        self.app = create_app(
            ServerSettings(database_url=url, secret_key=SECRET), engine=self.engine
        )
        self._running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(self, port: int | None = None) -> int:
        port = port or free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for_port(port)
        self._running.append((server, thread))
        return port

    def stop(self) -> None:
        for server, thread in self._running:
            server.should_exit = True
            thread.join(10)
        self._running.clear()

    def put(self, layout: dict[str, Any]) -> None:
        with session_factory(self.engine) as session:
            import_layout(session, StoreLayout.model_validate(layout))


def token(store: str | None, role: str = "gateway") -> str:
    return issue_token(
        SECRET.encode(),
        Principal(subject="gw-test", role=role, store=store),  # type: ignore[arg-type]
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def moved(store: str) -> dict[str, Any]:
    """The test layout with the Zebra's antenna 1 re-mapped from the floor to the fitting room."""
    layout = gateway_layout(store)
    layout["readers"][0]["antennas"][0]["zone"] = "fitting"
    return layout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LayoutServer]:
    srv = LayoutServer(tmp_path_factory.mktemp("layout-server"))
    try:
        yield srv
    finally:
        srv.stop()
        srv.engine.dispose()


@pytest.fixture(scope="module")
def port(server: LayoutServer) -> int:
    return server.serve()


@pytest.fixture
def store() -> str:
    return f"st{uuid.uuid4().hex[:8]}"


def url(port: int, store: str) -> str:
    return f"http://127.0.0.1:{port}/v1/stores/{store}/layout"


def source(port: int, store: str, state: Path, tok: str | None = None) -> ServerLayout:
    return ServerLayout.for_gateway(
        url(port, store), tok or token(store), state, "gw1", refresh_s=0.2
    )


# ------------------------------------------------------------------ the client side


def test_first_fetch_caches_and_refresh_sees_only_changes(
    server: LayoutServer, port: int, store: str, tmp_path: Path
) -> None:
    server.put(gateway_layout(store))
    src = source(port, store, tmp_path)
    try:
        first = src.first(threading.Event())
        assert first == in_served_order(StoreLayout.model_validate(gateway_layout(store)))
        assert src.loaded.is_set() and src.etag
        cached = orjson.loads((tmp_path / "layout-gw1.json").read_bytes())
        assert cached["url"] == url(port, store) and cached["etag"] == src.etag
        assert "gw-test" not in str(cached) and "Bearer" not in str(cached)

        unchanged = FETCHES.labels("unchanged")._value.get()
        assert src.refresh() is None  # 304
        assert FETCHES.labels("unchanged")._value.get() == unchanged + 1

        server.put(moved(store))
        new = src.refresh()
        assert new is not None and new.readers[0].antennas[0].zone == "fitting"
        assert src.refresh() is None
        again = orjson.loads((tmp_path / "layout-gw1.json").read_bytes())
        assert again["layout"]["readers"][0]["antennas"][0]["zone"] == "fitting"
    finally:
        src.close()


def test_the_server_refusing_is_a_clear_error_not_a_retry(
    server: LayoutServer, port: int, store: str, tmp_path: Path
) -> None:
    server.put(gateway_layout(store))
    cases = {
        token("another-store"): "403",
        token(None, role="staff"): "403",
        "v1.forged.token": "401",
    }
    for tok, status in cases.items():
        client = LayoutClient(url(port, store), tok)
        with pytest.raises(LayoutRefusedError, match=status) as caught:
            client.fetch()
        assert tok not in str(caught.value)
        client.close()
    missing = LayoutClient(url(port, "no-such-store"), token("no-such-store"))
    with pytest.raises(LayoutRefusedError, match="404"):
        missing.fetch()
    missing.close()
    # Refused at start even with a cache: a wrong token or store is not an outage.
    src = source(port, store, tmp_path, tok=token("another-store"))
    LayoutCache(tmp_path / "layout-gw1.json", url(port, store)).save(
        StoreLayout.model_validate(gateway_layout(store)), None
    )
    with pytest.raises(LayoutRefusedError):
        src.first(threading.Event())
    src.close()


def test_server_down_at_start_uses_the_cache_of_that_url_only(store: str, tmp_path: Path) -> None:
    down = free_port()  # nothing listens there
    layout = StoreLayout.model_validate(gateway_layout(store))
    LayoutCache(tmp_path / "layout-gw1.json", url(down, store)).save(layout, '"t1"')
    src = source(down, store, tmp_path)
    try:
        assert src.first(threading.Event()) == layout
        assert src.etag == '"t1"' and src.loaded.is_set()
        assert src.refresh() is None  # still down: keeps what it has
    finally:
        src.close()
    # A cache written for another URL (another store) is never used.
    other = source(down, "another-store", tmp_path)
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        assert other.first(stop) is None and not other.loaded.is_set()
    finally:
        timer.cancel()
        other.close()


def test_server_down_without_cache_waits_not_ready_then_loads(
    server: LayoutServer, store: str, tmp_path: Path
) -> None:
    server.put(gateway_layout(store))
    later = free_port()
    src = source(later, store, tmp_path)
    got: list[StoreLayout | None] = []
    stop = threading.Event()
    waiting = threading.Thread(target=lambda: got.append(src.first(stop)))
    before = FETCHES.labels("unavailable")._value.get()
    waiting.start()
    try:
        wait_until(lambda: FETCHES.labels("unavailable")._value.get() > before, "a failed try")
        assert waiting.is_alive() and not src.loaded.is_set()
        server.serve(later)
        waiting.join(backoff_s(2) + 5)
        assert got and got[0] is not None and got[0].store.id == store
        assert src.loaded.is_set()
    finally:
        stop.set()
        waiting.join(5)
        src.close()


def test_backoff_doubles_to_a_cap_and_urls_are_logged_without_credentials() -> None:
    assert [backoff_s(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_s(10_000) == 30
    assert redact("https://gw:pw@server.example/v1/stores/s1/layout?token=x") == (
        "https://server.example/v1/stores/s1/layout"
    )


# -------------------------------------------------------- the real gateway process


def _gateway(
    mqtt_url: str, layout_url: str, state: Path, tok: str, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    ops = free_port()
    env = {
        **os.environ,
        "VITRINE_MQTT_URL": mqtt_url,
        "VITRINE_APP_BEACON_UUID": APP_UUID,
        "VITRINE_OPS_PORT": str(ops),
        "VITRINE_GATEWAY_SERVER_TOKEN": tok,
        "VITRINE_LAYOUT_REFRESH_S": "0.3",
        "VITRINE_LOG_LEVEL": "INFO",
    }
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "vitrine", "gateway", "run"),
                *("--layout-url", layout_url, "--gateway-id", "gwl", "--state-dir", str(state)),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return proc, ops


def _ops(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status), r.read().decode()
    except OSError as exc:
        code = getattr(exc, "code", None)
        body = exc.read().decode() if hasattr(exc, "read") else ""
        return (int(code) if code else 0), body


def _arrivals(listener: Listener) -> dict[str, ItemArrived]:
    out: dict[str, ItemArrived] = {}
    for topic, payload, _ in list(listener.messages):
        if topic.endswith("/facts/item_arrived"):
            fact = parse_fact(payload)
            assert isinstance(fact, ItemArrived)
            out[fact.epc] = fact
    return out


def _two_reads(
    listener: Listener, store: str, first_event: int, epc: str, reader: str = "fx9600"
) -> None:
    topic = f"{store}/tevents/{reader}"
    listener.publish(topic, zebra(first_event, epc))
    # Pacing, not waiting: reads of one tag count once per 0.5 s (ItemRules.dedupe_s).
    threading.Event().wait(0.6)
    listener.publish(topic, zebra(first_event + 1, epc))


@pytest.mark.mqtt
def test_gateway_waits_for_the_server_then_follows_its_layout_changes(
    mosquitto: Broker, server: LayoutServer, store: str, tmp_path: Path
) -> None:
    server.put(gateway_layout(store))
    log = tmp_path / "gateway.log"
    tok = token(store)
    later = free_port()  # the server is down when the gateway starts, and has no cache
    proc, ops = _gateway(mosquitto.url, url(later, store), tmp_path / "state", tok, log)
    listener = Listener(mosquitto, store)
    try:
        wait_until(lambda: _ops(ops, "/readyz")[0] == 503, "the ops port answering", timeout=20)
        assert orjson.loads(_ops(ops, "/readyz")[1])["failing"] == ["layout", "mqtt"]
        wait_until(lambda: "no cached layout" in log.read_text(errors="replace"), "a failed try")
        assert proc.poll() is None  # alive, waiting, not ready
        server.serve(later)
        wait_until(lambda: _ops(ops, "/readyz")[0] == 200, "gateway ready", timeout=20)
        _two_reads(listener, store, 1, SGTIN_HEX)
        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived"))
        assert _arrivals(listener)["3074257BF7194E4000001A85"].zone == "floor"

        changed = moved(store)  # the Zebra's antenna 1 now covers the fitting room…
        changed["readers"].append(  # … and a new reader on a new topic covers the floor
            {
                "id": "fxnew",
                "format": "zebra",
                "topic": f"{store}/tevents/fxnew",
                "antennas": [{"port": 1, "zone": "floor", "position": [2, 1]}],
            }
        )
        server.put(changed)
        wait_until(
            lambda: "layout applied" in log.read_text(errors="replace"), "the new layout applied"
        )
        _two_reads(listener, store, 3, OTHER_SGTIN)
        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived") and b"1A86" in m[1])
        assert _arrivals(listener)["3074257BF7194E4000001A86"].zone == "fitting"
        _two_reads(listener, store, 1, THIRD_SGTIN, reader="fxnew")  # subscribed live
        listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived") and b"1A87" in m[1])
        assert _arrivals(listener)["3074257BF7194E4000001A87"].zone == "floor"
        # Same process, same pipeline: the first item was not forgotten or re-announced.
        assert sum(1 for m in listener.messages if m[0].endswith("/facts/item_arrived")) == 3

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text(errors="replace")
    assert tok not in text and tok.split(".")[2] not in text


@pytest.mark.mqtt
def test_gateway_starts_on_its_cache_when_the_server_is_down(
    mosquitto: Broker, store: str, tmp_path: Path
) -> None:
    down = free_port()
    layout_url = url(down, store)
    state = tmp_path / "state"
    # What an earlier run against that server left behind.
    LayoutCache(state / "layout-gwl.json", layout_url).save(
        StoreLayout.model_validate(moved(store)), '"before"'
    )
    proc, ops = _gateway(mosquitto.url, layout_url, state, token(store), tmp_path / "gateway.log")
    listener = Listener(mosquitto, store)
    try:
        wait_until(lambda: _ops(ops, "/readyz")[0] == 200, "gateway ready on its cache")
        _two_reads(listener, store, 1, SGTIN_HEX)
        (arrived,) = listener.wait_for(lambda m: m[0].endswith("/facts/item_arrived"))
        fact = parse_fact(arrived[1])
        assert isinstance(fact, ItemArrived) and fact.zone == "fitting"  # the cached mapping
    finally:
        listener.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """``main`` configures the root logger for a process; put pytest's handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_gateway_needs_exactly_one_layout_source(
    tmp_path: Path, root_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from vitrine.cli import app

    for var in ("VITRINE_LAYOUT", "VITRINE_LAYOUT_URL"):
        monkeypatch.delenv(var, raising=False)
    run = ["gateway", "run", "--state-dir", str(tmp_path)]
    both = [*run, "--layout", str(tmp_path / "x.yaml"), "--layout-url", "http://127.0.0.1:9/x"]
    for args in (both, run):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "exactly one" in result.output + capsys.readouterr().err


# ------------------------------------------------------- the pure hook, in process


def test_pipeline_replace_layout_keeps_state_and_uses_the_new_mapping() -> None:
    from gateway.pipeline import Pipeline
    from gateway.reads import RfidRead
    from vitrine.contracts.ids import Epc

    before = StoreLayout.model_validate(gateway_layout("s1"))
    pipeline = Pipeline(before, "gw1", salt_source=lambda period: b"\0" * 32)
    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def read(epc: str, reader: str, at: float) -> list[Any]:
        out = RfidRead(epc=Epc(epc), antenna=1, rssi_dbm=-50.0, timestamp=None, reader=reader)
        return pipeline.feed(out, t0 + timedelta(seconds=at), reader=reader)

    first = [*read(SGTIN_HEX.upper(), "r700", 0), *read(SGTIN_HEX.upper(), "r700", 1)]
    assert [(f.kind, f.zone) for f in first] == [("item_arrived", "fitting")]
    pipeline.replace_layout(StoreLayout.model_validate(moved("s1")))
    # The Impinj (unchanged) item stays put: more reads of it make no new fact.
    assert read(SGTIN_HEX.upper(), "r700", 2) == []
    second = [*read(OTHER_SGTIN.upper(), "fx9600", 3), *read(OTHER_SGTIN.upper(), "fx9600", 4)]
    assert [(f.kind, f.zone) for f in second] == [("item_arrived", "fitting")]  # was "floor"
    assert pipeline.items.zone_of(Epc(SGTIN_HEX.upper())) == "fitting"
    with pytest.raises(ValueError, match="store"):
        pipeline.replace_layout(StoreLayout.model_validate(gateway_layout("s2")))

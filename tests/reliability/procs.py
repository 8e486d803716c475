"""Real processes for fault and fuzz tests: the gateway as a store runs it, a paho bus tap."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.support.layouts import APP_UUID, gateway_layout
from tests.support.services import free_port

__all__ = [
    "APP_UUID",
    "Gateway",
    "PgCluster",
    "Tap",
    "gateway_layout",
    "http_status",
    "metric",
    "wait_until",
]


def wait_until(pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``pred`` until true or fail with ``what`` (no bare sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Gateway:
    """``vitrine gateway run`` as a subprocess; ``start`` again after a kill to restart it."""

    mqtt_url: str
    store: str
    workdir: Path
    gateway_id: str = "gwf"
    proc: subprocess.Popen[bytes] | None = None
    ops_port: int = 0
    extra_env: dict[str, str] | None = None

    def start(self) -> None:
        layout = self.workdir / "store.yaml"
        if not layout.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            layout.write_text(yaml.safe_dump(gateway_layout(self.store)))
        self.ops_port = free_port()
        env = {
            **os.environ,
            "VITRINE_MQTT_URL": self.mqtt_url,
            "VITRINE_APP_BEACON_UUID": APP_UUID,
            "VITRINE_OPS_PORT": str(self.ops_port),
            "VITRINE_LOG_LEVEL": "WARNING",
            **(self.extra_env or {}),
        }
        log = (self.workdir / "gateway.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vitrine",
                "gateway",
                "run",
                "--layout",
                str(layout),
                "--gateway-id",
                self.gateway_id,
                "--state-dir",
                str(self.workdir / "state"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        wait_until(self.ready, "gateway /readyz", timeout=30)

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}{path}", timeout=2) as r:
                return int(r.status), r.read().decode()
        except OSError as exc:
            code = getattr(exc, "code", None)
            return (int(code) if code else 0), ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"gateway exited with {self.proc.returncode}: {self.log()[-2000:]}"
            )
        return self._get("/readyz")[0] == 200

    def metrics(self) -> str:
        return self._get("/metrics")[1]

    def log(self) -> str:
        path = self.workdir / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


class Tap:
    """A bus subscriber recording (topic, payload); MQTT 5, QoS 1, optional persistent session."""

    def __init__(
        self, host: str, port: int, filters: list[str], *, client_id: str | None = None
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self._filters = filters
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"tap-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, "tap SUBACK", timeout=10)

    def _on_connect(self, client: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in self._filters])

    def _on_message(self, client: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def count(self, pred: Callable[[str, bytes], bool] | None = None) -> int:
        with self.lock:
            return sum(1 for t, p in self.messages if pred is None or pred(t, p))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def http_status(port: int, path: str = "/readyz") -> int:
    """The status of ``GET http://127.0.0.1:{port}{path}``; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status)
    except OSError as exc:
        code = getattr(exc, "code", None)
        return int(code) if code else 0


#: PostgreSQL 15 as Debian installs it (``postgresql-15``); the suite's shared
#: cluster runs the same binaries.
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PgCluster:
    """A throwaway PostgreSQL cluster in a temp dir, on a free loopback port.

    Built with ``initdb`` and driven with ``pg_ctl`` as the ``postgres`` user
    (PostgreSQL refuses to run as root), so a test can stop and start *its own*
    database — never the shared cluster on 5432 that other tests use. Trust
    authentication on 127.0.0.1 only; ``fsync=off`` because only processes
    crash here, never the machine (the OS page cache survives an immediate stop).
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vitrine-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    @staticmethod
    def available() -> str | None:
        """Why a cluster cannot be made here (``None`` when it can)."""
        if not (PG_BIN / "pg_ctl").exists():
            return f"{PG_BIN}/pg_ctl not installed"
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            return "needs root and runuser to run PostgreSQL as the postgres user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user"
        return None

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{tool} {args} failed: {done.stderr.decode(errors='replace')}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start and wait until it accepts connections (``pg_ctl -w``)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """``fast``: roll back sessions and shut down cleanly; ``immediate``: quit
        without a checkpoint, like a crash (crash recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

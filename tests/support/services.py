"""Real services for tests: Mosquitto from ``deploy/mosquitto.conf``, PostgreSQL.

Missing services fail the run when ``CI`` is set (``scripts/test`` sets it) and
skip with the reason otherwise — never silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "REPO",
    "Broker",
    "free_port",
    "mosquitto_binary",
    "require_service",
    "start_mosquitto",
    "wait_for_port",
]

REPO = Path(__file__).resolve().parents[2]


def require_service(what: str, why: str) -> None:
    """Fail in CI, skip locally: a missing service is never a silent pass."""
    message = f"{what} unavailable: {why}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI requires it; run scripts/setup --postgres)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s}s"
                ) from None
            time.sleep(0.02)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass
class Broker:
    host: str
    port: int
    config: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def broker_config(port: int, workdir: Path, source: Path | None = None) -> Path:
    """The project's config with only the listener and file locations replaced."""
    source = source or REPO / "deploy" / "mosquitto.conf"
    lines = []
    for line in source.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        lines.append(line)
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextmanager
def start_mosquitto(workdir: Path, port: int | None = None) -> Iterator[Broker]:
    binary = mosquitto_binary()
    if binary is None:
        require_service("Mosquitto", "no `mosquitto` binary on PATH or in /usr/sbin")
        raise AssertionError("unreachable")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = broker_config(port, workdir)
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield Broker("127.0.0.1", port, conf, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

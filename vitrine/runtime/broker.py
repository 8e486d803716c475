"""A local Mosquitto started from the project's own ``deploy/mosquitto.conf``.

Used by ``vitrine demo``, ``vitrine bench`` and the tests, so that all three run
the broker configuration a store runs — only the listener (loopback, chosen
port) and the file locations are replaced.
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

__all__ = [
    "DEFAULT_CONFIG",
    "BrokerNotFoundError",
    "LocalBroker",
    "free_port",
    "local_broker_config",
    "mosquitto_binary",
    "start_local_broker",
    "wait_for_port",
]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"


class BrokerNotFoundError(RuntimeError):
    """No ``mosquitto`` executable: install it (``apt-get install mosquitto``)."""


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    # Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


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


def local_broker_config(port: int, workdir: Path, source: Path = DEFAULT_CONFIG) -> Path:
    """Write ``source`` to ``workdir``, listening on 127.0.0.1:``port``, persisting there."""
    lines = []
    for line in source.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        lines.append(line)
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to the `mosquitto` user, which cannot
        # write a workdir under root's 0700 directories (pytest's, a root demo's):
        # every autosave and the save at SIGTERM then failed ("Permission
        # denied"), so a restart lost every session. This broker listens on
        # loopback for local runs and tests; it keeps the starting user.
        lines.append("user root")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@dataclass
class LocalBroker:
    host: str
    port: int
    config: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextmanager
def start_local_broker(
    workdir: Path, port: int | None = None, source: Path = DEFAULT_CONFIG
) -> Iterator[LocalBroker]:
    """Run a broker until the block exits (SIGTERM, so it saves its state).

    ``source`` is the configuration to localise: the default, or a secured one
    written by ``vitrine broker credentials`` (its auth lines are kept).
    """
    binary = mosquitto_binary()
    if binary is None:
        raise BrokerNotFoundError("no `mosquitto` on PATH or in /usr/sbin (apt-get install it)")
    port = port or free_port()
    conf = local_broker_config(port, workdir, source)
    with (workdir / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port)
            yield LocalBroker("127.0.0.1", port, conf, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

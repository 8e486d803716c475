"""Start Vitrine processes as children, watch them, stop them by pid.

``vitrine demo``, ``vitrine bench`` and the end-to-end tests run the real
processes (``vitrine server run``, ``vitrine gateway run`` …) rather than
importing them, so what they exercise is what a store runs. Each child gets
its own process group, its output in a log file, and is stopped with SIGTERM
(clean shutdown) then SIGKILL after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["Child", "ProcessGroup", "vitrine_command"]

log = logging.getLogger(__name__)


def vitrine_command(*args: str) -> list[str]:
    """``vitrine ARGS`` run with this interpreter, so a venv need not be on PATH."""
    return [sys.executable, "-m", "vitrine", *args]


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class ProcessGroup:
    """Children started in order and stopped in reverse order."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        out = log_path.open("ab")
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**self.env, **(env or {})},
            start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it cleanly
        )
        child = Child(name, list(argv), process, log_path, out)
        self.children.append(child)
        log.info("started %s", name, extra={"pid": process.pid})
        return child

    def wait_until(self, child: Child, ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Poll ``ready`` until true; raise with the child's log tail if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} exited ({child.process.returncode}):\n{child.tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} not ready after {timeout_s}s:\n{child.tail()}")
            time.sleep(0.1)

    def stop(self, grace_s: float = 10.0) -> dict[str, int | None]:
        """SIGTERM every child (newest first), SIGKILL what outlives the grace period."""
        codes: dict[str, int | None] = {}
        for child in reversed(self.children):
            if child.alive():
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("killing %s after %.0fs", child.name, grace_s)
                os.killpg(child.pid, signal.SIGKILL)
                child.process.wait()
            codes[child.name] = child.process.returncode
            child._log.close()
        self.children.clear()
        return codes

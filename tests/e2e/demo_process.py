"""Run the real ``vitrine demo`` as a child process and read the URLs it prints.

Shared by ``test_demo.py`` and ``test_pages.py``: what they exercise is exactly
what the README's first command runs.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port
from vitrine.runtime.broker import mosquitto_binary

#: Bringing the demo up migrates, imports ~400 items and starts five processes
#: on 2 shared cores: usually ~10 s, 60 s leaves room for a loaded CI machine.
START_TIMEOUT_S = 60.0

_URL = re.compile(r"^\s+(staff dashboard|analytics|shopper phone|API docs)\s+(\S+)$")


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    urls: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def server(self) -> str:
        return self.urls["API docs"].removesuffix("/docs")

    @property
    def staff_token(self) -> str:
        return self.urls["staff dashboard"].split("#token=", 1)[1]

    def read_until(self, predicate: re.Pattern[str], timeout_s: float) -> str:
        """The next stdout line matching ``predicate`` (raises on timeout or exit)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {predicate.pattern!r} in:\n" + "\n".join(self.lines[-30:]))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("demo exited:\n" + "\n".join(self.lines[-30:]))
            if predicate.search(line):
                return line


def _pump(stream: object, demo: RunningDemo) -> None:
    assert hasattr(stream, "readline")
    for raw in iter(stream.readline, ""):
        for line in raw.replace("\r", "\n").splitlines():
            demo.lines.append(line)
            demo._queue.put(line)
    demo._queue.put(None)


@contextmanager
def running_demo(workdir: Path, *extra: str) -> Iterator[RunningDemo]:
    """``vitrine demo`` on free ports until the block exits (then SIGINT, like Ctrl-C)."""
    if mosquitto_binary() is None:
        from tests.support.services import require_service

        require_service("Mosquitto", "not installed (apt-get install mosquitto)")
    argv = [
        sys.executable,
        "-m",
        "vitrine",
        "demo",
        "--workdir",
        str(workdir),
        "--http-port",
        str(free_port()),
        "--mobile-port",
        str(free_port()),
        "--broker-port",
        str(free_port()),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    demo = RunningDemo(process, {})
    pump = threading.Thread(target=_pump, args=(process.stdout, demo), daemon=True)
    pump.start()
    try:
        while "API docs" not in demo.urls:
            match = _URL.match(demo.read_until(_URL, START_TIMEOUT_S))
            assert match is not None
            demo.urls[match.group(1)] = match.group(2)
        yield demo
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        pump.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

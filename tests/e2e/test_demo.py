"""The README's first command: ``vitrine demo`` brings a living store up and Ctrl-C stops it.

Runs the real command (Mosquitto, SQLite, server, ingest, mobile_api, gateway,
simulator) on free ports and checks what a person at the terminal sees: the
pages' URLs, a status line with every process up and facts flowing, pages that
answer, and a clean stop on SIGINT (exit 0, every child stopped by SIGTERM
with status 0).
"""

from __future__ import annotations

import ast
import re
import signal
from pathlib import Path

import httpx
import pytest

from firmware_sim.scenario import Scenario
from tests.e2e.demo_process import running_demo
from vitrine.demo import SIM_APP_UUID

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]

_STATUS = re.compile(
    r"processes (\d+)/(\d+) up \| reads/s +([\d.]+) \| facts/s +([\d.]+)"
    r" \| shoppers in store +(\d+)"
)


def test_the_demo_app_uuid_is_the_simulators() -> None:
    assert Scenario.model_fields["app_uuid"].default == SIM_APP_UUID


def test_demo_comes_up_live_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with running_demo(tmp_path / "demo", "--speed", "10") as demo:
        assert set(demo.urls) == {"staff dashboard", "analytics", "shopper phone", "API docs"}
        # Live: every long-running process up, device messages and facts flowing.
        deadline_lines = 0
        while True:
            line = demo.read_until(_STATUS, timeout_s=30)
            match = _STATUS.search(line)
            assert match is not None
            up, total, reads, facts, shoppers = match.groups()
            assert "DOWN" not in line, line
            # Simulated shoppers walk in on their own (no one touches the phone page).
            if up == total == "5" and float(reads) > 0 and float(facts) > 0 and int(shoppers):
                break
            deadline_lines += 1
            assert deadline_lines < 15, f"no live data after 30 s: {line}"
        for url in (demo.urls["staff dashboard"], demo.urls["shopper phone"]):
            page = httpx.get(url.split("#", 1)[0], timeout=10)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
        assert "#token=" in demo.urls["staff dashboard"]
        assert "?token" not in demo.urls["staff dashboard"]

        demo.process.send_signal(signal.SIGINT)
        stopped = demo.read_until(re.compile(r"demo stopped: "), timeout_s=30)
        assert demo.process.wait(timeout=30) == 0
    codes = ast.literal_eval(stopped.split("demo stopped: ", 1)[1])
    assert set(codes) >= {"server", "ingest", "mobile_api", "gateway", "simulator"}
    # Every child stopped cleanly: nothing killed after the grace period (-9), none
    # died of the SIGTERM uvicorn re-raises after its shutdown (-15).
    assert all(code == 0 for code in codes.values()), codes

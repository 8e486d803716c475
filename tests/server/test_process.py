"""The real ``vitrine`` command: migrations and the server process, on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

import server.models
from server import migrate
from server.db import make_engine
from tests.support.services import free_port, wait_for_port

VITRINE = str(Path(sys.executable).with_name("vitrine"))
#: uvicorn's graceful shutdown is bounded at 5 s (server.app.serve); the rest is slack.
STOP_TIMEOUT_S = 10


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VITRINE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _wait_until_listening(proc: subprocess.Popen[str], port: int, timeout_s: float = 30) -> None:
    """Poll with a deadline; a process that died says why instead of timing out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            raise AssertionError(f"server exited with {proc.returncode}: {stderr[-2000:]}")
        try:
            wait_for_port(port, timeout_s=0.2)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def test_db_upgrade_via_the_cli(fresh_db_url: str, tmp_path: Path) -> None:
    env = _env(VITRINE_DATABASE_URL=fresh_db_url)
    upgraded = _run(["db", "upgrade"], env, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    (head,) = migrate.heads()
    assert upgraded.stdout.strip() == f"database at {head}"
    engine = make_engine(fresh_db_url)
    try:
        assert set(server.models.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert _run(["db", "current"], env, tmp_path).stdout.strip() == head


def test_default_database_is_a_sqlite_file_under_var(tmp_path: Path) -> None:
    """No VITRINE_DATABASE_URL: ``var/vitrine.db`` under the working directory."""
    result = _run(["db", "upgrade"], _env(), tmp_path)
    assert result.returncode == 0, result.stderr
    database = tmp_path / "var" / "vitrine.db"
    assert migrate.current(f"sqlite:///{database}") == migrate.heads()

    down = _run(["db", "downgrade", "base"], _env(), tmp_path)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "database at base"
    assert migrate.current(f"sqlite:///{database}") == ()


def test_server_process_serves_ops_and_stops_cleanly_on_sigterm(
    fresh_db_url: str, tmp_path: Path
) -> None:
    migrate.upgrade(fresh_db_url)
    port = free_port()
    env = _env(VITRINE_DATABASE_URL=fresh_db_url, VITRINE_HTTP_PORT=str(port))
    with subprocess.Popen(
        [VITRINE, "server", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _wait_until_listening(proc, port)
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/healthz").status_code == 200
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 200, ready.text
            metrics = httpx.get(f"{base}/metrics")
            assert metrics.status_code == 200
            assert "python_info" in metrics.text

            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            _, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < STOP_TIMEOUT_S
    # Structured logs: every line is a JSON object; the lifespan ran to its end.
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = [line["msg"] for line in lines]
    assert "server started" in messages
    assert "server stopped" in messages
    # The database URL (it may carry a password) is never logged.
    assert fresh_db_url not in stderr

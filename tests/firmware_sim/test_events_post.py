"""Web events reach an HTTP endpoint as the vendors' own payloads, with the bearer token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from firmware_sim.engine import Simulation
from firmware_sim.scenario import load_scenario
from firmware_sim.shell import run_simulation


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.requests: list[tuple[str | None, bytes]] = []
        self.status = 200
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.headers.get("Authorization"), body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run(tmp_path: Path, url: str, token: str | None) -> tuple[int, int, list[bytes]]:
    sc = load_scenario("viewed-online").model_copy(update={"duration_s": 60.0})
    out = tmp_path / "out.jsonl"
    report = run_simulation(
        Simulation(sc.bundle(), sc, 3),
        speed=None,
        out=out,
        truth=None,
        mqtt_url=None,
        events_url=url,
        events_token=token,
    )
    emitted = [
        orjson.loads(line)
        for line in out.read_bytes().splitlines()
        if orjson.loads(line).get("kind") == "http"
    ]
    # --out keeps each payload as the device/tracker sent it, as a JSON string.
    return report.http_events, report.http_failed, [e["payload"].encode() for e in emitted]


def test_events_are_posted_raw_with_the_bearer_token(tmp_path: Path, receiver: _Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/events"
    sent, failed, emitted = _run(tmp_path, url, "tok-123")
    assert sent > 0 and failed == 0
    assert len(receiver.requests) == sent
    assert {auth for auth, _ in receiver.requests} == {"Bearer tok-123"}
    # Each body is a vendor payload (Segment/GA4/Shopify), not a Vitrine envelope.
    bodies = [orjson.loads(body) for _, body in receiver.requests]
    assert all("source" not in body or "event" not in body for body in bodies)
    assert [body for _, body in receiver.requests] == emitted


def test_a_failing_endpoint_is_counted_and_the_run_goes_on(
    tmp_path: Path, receiver: _Receiver
) -> None:
    receiver.status = 503
    url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/events"
    sent, failed, _ = _run(tmp_path, url, None)
    assert sent > 0 and failed == sent
    assert {auth for auth, _ in receiver.requests} == {None}

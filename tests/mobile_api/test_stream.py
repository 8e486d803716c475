"""The shopper WebSocket against a running app, a real Mosquitto and a real database."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from mobile_api.ws import CLOSE_AUTH, CLOSE_FORBIDDEN, CLOSE_QUERY_STRING, CLOSE_RATE, CLOSE_SLOW
from tests.mobile_api.conftest import ORIGIN, Emitter, FakeClock, RunningApp, sign_in

pytestmark = pytest.mark.mqtt

#: Generous per-message deadline: a loaded 2-core CI machine, never a sleep.
RECV_TIMEOUT_S = 10.0


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    message: dict[str, Any] = orjson.loads(frame)
    return message


async def open_stream(
    url: str, token: str, last_seq: int | None = None, **auth: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(url, origin=Origin(ORIGIN))
    await ws.send(
        orjson.dumps({"type": "auth", "token": token, "last_seq": last_seq, **auth}).decode()
    )
    return ws, await recv(ws)


async def events(ws: ClientConnection, n: int) -> list[int]:
    seqs = []
    for _ in range(n):
        message = await recv(ws)
        assert message["type"] == "event", message
        assert message["event"]["seq"] in (None, message["seq"])
        seqs.append(message["seq"])
    return seqs


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    return info.value.rcvd.code if info.value.rcvd else None


# The case is a real 30 s drop (a phone in a lift, a tunnel); 0.5 s keeps
# the quick variant for fast local runs.
@pytest.mark.parametrize("drop_s", [0.5, pytest.param(30.0, marks=pytest.mark.slow, id="30s-drop")])
async def test_resume_after_a_drop_delivers_every_missed_message_once_in_order(
    start_app: Callable[..., RunningApp], emitter: Emitter, drop_s: float
) -> None:
    app = start_app()
    phone = sign_in(app.http)
    ws, hello = await open_stream(app.ws, phone.access)
    assert hello == {"type": "ready", "seq": 0}
    await asyncio.to_thread(emitter.emit, phone.profile_id, 3)
    assert await events(ws, 3) == [1, 2, 3]
    await ws.close()

    # Offline for drop_s: messages keep coming, spread over the drop.
    for _ in range(5):
        await asyncio.to_thread(emitter.emit, phone.profile_id, 1)
        await asyncio.sleep(drop_s / 5)  # the drop's duration, not a wait for an outcome

    # Reconnect while more are being published: the replay/live boundary must not
    # lose or repeat any of them.
    live = threading.Thread(target=emitter.emit, args=(phone.profile_id, 20))
    live.start()
    ws, hello = await open_stream(app.ws, phone.access, last_seq=3)
    assert hello["type"] == "ready"
    live.join()
    received = await events(ws, 25)
    assert received == list(range(4, 29))
    # Nothing extra: the next message after a sentinel is the sentinel itself.
    await asyncio.to_thread(emitter.emit, phone.profile_id, 1)
    assert await events(ws, 1) == [29]
    await ws.close()


async def test_resume_past_retention_yields_reset_then_live_delivery(
    start_app: Callable[..., RunningApp], emitter: Emitter
) -> None:
    clock = FakeClock()
    app = start_app(clock=clock, mobile_resume_retention_s=3600, mobile_access_ttl_s=86400)
    phone = sign_in(app.http)
    ws, _ = await open_stream(app.ws, phone.access)
    await asyncio.to_thread(emitter.emit, phone.profile_id, 1)
    assert await events(ws, 1) == [1]
    await ws.close()
    await asyncio.to_thread(emitter.emit, phone.profile_id, 2)

    clock.now += timedelta(hours=2)  # the phone stayed away longer than retention
    ws, hello = await open_stream(app.ws, phone.access, last_seq=1)
    assert hello == {"type": "reset", "seq": 3}
    await asyncio.to_thread(emitter.emit, phone.profile_id, 1)
    assert await events(ws, 1) == [4]
    await ws.close()

    # Within retention the same phone resumes normally.
    ws, hello = await open_stream(app.ws, phone.access, last_seq=4)
    assert hello == {"type": "ready", "seq": 4}
    await ws.close()


async def test_a_foreign_origin_is_refused_before_the_handshake_completes(
    start_app: Callable[..., RunningApp],
) -> None:
    app = start_app()
    with pytest.raises(InvalidStatus) as info:
        await connect(app.ws, origin=Origin("https://evil.example"))
    assert info.value.response.status_code == 403
    # A native app sends no Origin at all: allowed.
    phone = sign_in(app.http)
    async with connect(app.ws) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": phone.access}).decode())
        assert (await recv(ws))["type"] == "ready"


async def test_a_token_in_the_query_string_is_refused_and_never_logged(
    start_app: Callable[..., RunningApp], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = start_app()
    phone = sign_in(app.http)
    ws = await connect(f"{app.ws}?token={phone.access}", origin=Origin(ORIGIN))
    assert await closed_with(ws) == CLOSE_QUERY_STRING
    # The server's records (the test's own websockets client logs its request line).
    server_side = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    # Positive control: the server's refusal was captured. (uvicorn's own
    # '"WebSocket /v1/me/stream" [accepted]' line is not a reliable control: in
    # a process where other uvicorn servers ran first it was missing from caplog.)
    assert any(r.name == "mobile_api.ws" and "query string" in r.getMessage() for r in server_side)
    assert not any(phone.access in r.getMessage() for r in server_side), [
        r.name for r in server_side if phone.access in r.getMessage()
    ]


async def test_an_oversize_frame_is_refused(start_app: Callable[..., RunningApp]) -> None:
    app = start_app(mobile_ws_max_frame_bytes=4096)
    phone = sign_in(app.http)
    ws, _ = await open_stream(app.ws, phone.access)
    await ws.send("x" * 8192)
    assert await closed_with(ws) == 1009  # RFC 6455 §7.4.1: message too big


async def test_a_wrong_shopper_or_a_bad_token_is_refused(
    start_app: Callable[..., RunningApp],
) -> None:
    app = start_app()
    alice, bob = sign_in(app.http), sign_in(app.http)
    ws = await connect(app.ws, origin=Origin(ORIGIN))
    await ws.send(
        orjson.dumps({"type": "auth", "token": alice.access, "shopper": bob.profile_id}).decode()
    )
    assert await closed_with(ws) == CLOSE_FORBIDDEN
    ws = await connect(app.ws, origin=Origin(ORIGIN))
    await ws.send(orjson.dumps({"type": "auth", "token": alice.access[:-2] + "xx"}).decode())
    assert await closed_with(ws) == CLOSE_AUTH
    ws = await connect(app.ws, origin=Origin(ORIGIN))
    await ws.send(orjson.dumps({"type": "auth", "token": alice.refresh}).decode())
    assert await closed_with(ws) == CLOSE_AUTH
    # The token may ride in Sec-WebSocket-Protocol instead of the first frame.
    async with connect(
        app.ws,
        origin=Origin(ORIGIN),
        subprotocols=[Subprotocol("vitrine.v1"), Subprotocol(f"bearer.{alice.access}")],
    ) as ws2:
        assert ws2.subprotocol == "vitrine.v1"
        await ws2.send('{"type":"auth"}')
        assert (await recv(ws2))["type"] == "ready"


async def test_a_flooding_client_is_closed(start_app: Callable[..., RunningApp]) -> None:
    app = start_app(mobile_ws_rate_per_s=5.0)
    phone = sign_in(app.http)
    ws, _ = await open_stream(app.ws, phone.access)
    for _ in range(40):
        try:
            await ws.send('{"type":"ping"}')
        except ConnectionClosed:
            break
    assert await closed_with(ws) == CLOSE_RATE


async def test_a_stuck_phone_is_dropped_without_delaying_others_and_resumes(
    start_app: Callable[..., RunningApp], emitter: Emitter
) -> None:
    app = start_app(mobile_ws_queue_size=4)
    slow, other = sign_in(app.http), sign_in(app.http)
    ws_slow, _ = await open_stream(app.ws, slow.access)
    ws_other, _ = await open_stream(app.ws, other.access)
    seqs = await asyncio.to_thread(emitter.emit, slow.profile_id, 30, publish=False)
    payload = b'{"kind":"guidance"}'
    hub = app.app.state.hub

    def burst() -> None:  # one loop callback: the slow sender cannot drain in between
        for seq in seqs:
            hub.dispatch(slow.profile_id, seq, payload)

    app.app.state.loop.call_soon_threadsafe(burst)
    assert await closed_with(ws_slow) == CLOSE_SLOW
    await asyncio.to_thread(emitter.emit, other.profile_id, 1)
    assert await events(ws_other, 1) == [1]
    ws_slow, hello = await open_stream(app.ws, slow.access, last_seq=0)
    assert hello["type"] == "ready"
    assert await events(ws_slow, 30) == list(range(1, 31))
    await ws_slow.close()
    await ws_other.close()


async def test_two_instances_behind_one_broker_deliver_to_shoppers_on_either(
    start_app: Callable[..., RunningApp], emitter: Emitter
) -> None:
    one, two = start_app(), start_app()
    alice, bob = sign_in(one.http), sign_in(two.http)
    ws_a, _ = await open_stream(one.ws, alice.access)
    ws_b, _ = await open_stream(two.ws, bob.access)
    await asyncio.to_thread(emitter.emit, alice.profile_id, 2)
    await asyncio.to_thread(emitter.emit, bob.profile_id, 3)
    assert await events(ws_a, 2) == [1, 2]
    assert await events(ws_b, 3) == [1, 2, 3]
    # Alice moves to the other instance and resumes there.
    await ws_a.close()
    await asyncio.to_thread(emitter.emit, alice.profile_id, 1)
    ws_a, _ = await open_stream(two.ws, alice.access, last_seq=2)
    await asyncio.to_thread(emitter.emit, alice.profile_id, 1)
    assert await events(ws_a, 2) == [3, 4]
    await ws_a.close()
    await ws_b.close()

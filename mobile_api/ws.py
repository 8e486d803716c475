"""``/v1/me/stream``: the shopper's WebSocket.

Handshake rules (QUALITY.md fact 6 — the defaults are open):

- ``Origin``, when present (browsers always send it, RFC 6455 §4.1), must be in
  ``mobile_allowed_origins``; otherwise the handshake is refused (HTTP 403)
  before anything is accepted.
- Any query string is refused (close ``4400``): tokens travel in the first
  frame or in ``Sec-WebSocket-Protocol`` (``vitrine.v1, bearer.<token>``),
  never in a URL that proxies and access logs keep.
- The first frame is ``{"type":"auth","token":…,"last_seq":N,"shopper":…}``
  (``token`` optional when the subprotocol carried it, ``shopper`` optional and
  refused with ``4403`` if it is not the token's). No auth in time → ``4401``.

Then the server sends ``{"type":"ready"|"reset","seq":N}`` and events as
``{"type":"event","seq":N,"event":{…}}``. Frames above the size limit are
closed by uvicorn with 1009; more than the rate limit → ``4429``; a phone too
slow to drain its queue → ``4408`` (reconnect and resume).
Heartbeats are WebSocket pings sent by uvicorn (``ws_ping_interval``); a phone
that misses its pong is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from sqlalchemy.engine import Engine
from starlette.websockets import WebSocketDisconnect, WebSocketState

from mobile_api import repository as repo
from mobile_api.settings import MobileApiSettings
from mobile_api.stream import Connection, Hub, Sequencer, plan_resume
from mobile_api.tokens import TokenError, TokenSigner
from server.db import session_factory

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_FORBIDDEN",
    "CLOSE_QUERY_STRING",
    "CLOSE_RATE",
    "CLOSE_SLOW",
    "SUBPROTOCOL",
    "router",
]

log = logging.getLogger(__name__)

SUBPROTOCOL = "vitrine.v1"
CLOSE_QUERY_STRING = 4400
CLOSE_AUTH = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW = 4408
CLOSE_RATE = 4429

router = APIRouter()


class _ClosedError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TokenBucket:
    """``rate`` frames per second with a burst of ``2 × rate``; clock injected."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._capacity = max(1.0, 2 * rate)
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _event_frame(seq: int, payload: bytes) -> str:
    return f'{{"type":"event","seq":{seq:d},"event":{payload.decode()}}}'


@router.websocket("/v1/me/stream")
async def shopper_stream(ws: WebSocket) -> None:
    settings: MobileApiSettings = ws.app.state.settings
    origin = ws.headers.get("origin")
    if origin is not None and origin not in settings.mobile_allowed_origins:
        log.info("websocket refused: origin not allowed")
        await ws.close(code=1008)  # before accept: uvicorn answers HTTP 403
        return
    protocols: list[str] = list(ws.scope.get("subprotocols", []))
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in protocols else None)
    if ws.scope.get("query_string"):
        log.info("websocket refused: query string")
        await ws.close(CLOSE_QUERY_STRING, "credentials in the query string are refused")
        return
    bucket = TokenBucket(settings.mobile_ws_rate_per_s, time.monotonic)
    try:
        await _serve(ws, settings, protocols, bucket)
    except _ClosedError as closed:
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close(closed.code, closed.reason)
    except WebSocketDisconnect:
        pass


async def _receive(ws: WebSocket, bucket: TokenBucket) -> Any:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if not bucket.take():
        raise _ClosedError(CLOSE_RATE, "rate limit exceeded")
    data = message.get("text") or message.get("bytes")
    try:
        return orjson.loads(data) if data is not None else None
    except orjson.JSONDecodeError as exc:
        raise _ClosedError(1007, "frames are JSON") from exc


async def _serve(
    ws: WebSocket, settings: MobileApiSettings, protocols: list[str], bucket: TokenBucket
) -> None:
    signer: TokenSigner = ws.app.state.signer
    hub: Hub = ws.app.state.hub
    engine: Engine = ws.app.state.engine
    clock: Callable[[], datetime] = ws.app.state.clock

    try:
        async with asyncio.timeout(settings.mobile_ws_auth_timeout_s):
            hello = await _receive(ws, bucket)
    except TimeoutError as exc:
        raise _ClosedError(CLOSE_AUTH, "authenticate in the first frame") from exc
    if not isinstance(hello, dict) or hello.get("type") != "auth":
        raise _ClosedError(CLOSE_AUTH, "the first frame must be {type: auth}")
    token = hello.get("token") or next(
        (p.removeprefix("bearer.") for p in protocols if p.startswith("bearer.")), None
    )
    last_seq = hello.get("last_seq")
    if not isinstance(token, str) or (last_seq is not None and not isinstance(last_seq, int)):
        raise _ClosedError(CLOSE_AUTH, "a token is required")
    try:
        claims = signer.verify(token, "access")
    except TokenError as exc:
        raise _ClosedError(CLOSE_AUTH, str(exc)) from exc
    shopper = claims.sub
    if hello.get("shopper") not in (None, shopper):
        log.info("websocket refused: another shopper's stream")
        raise _ClosedError(CLOSE_FORBIDDEN, "not your stream")

    connection = Connection.make(shopper, settings.mobile_ws_queue_size)
    hub.register(connection)  # first, so nothing published during the replay is missed
    try:
        stream = repo.shopper_stream(shopper)
        cutoff = clock() - timedelta(seconds=settings.mobile_resume_retention_s)

        def window() -> tuple[repo.StreamWindow, list[tuple[int, bytes]]]:
            with session_factory(engine) as session:
                win = repo.stream_window(session, stream, cutoff)
                after = last_seq if last_seq is not None else win.last
                return win, repo.stream_rows(session, stream, after, win.last)

        win, rows = await asyncio.to_thread(window)
        decision = plan_resume(last_seq, win.last, win.first_retained)
        sequencer = Sequencer(decision.start)
        if decision.kind == "reset":
            await ws.send_text(f'{{"type":"reset","seq":{decision.start:d}}}')
        else:
            await ws.send_text(f'{{"type":"ready","seq":{decision.start:d}}}')
            for seq, payload in rows:
                await ws.send_text(_event_frame(seq, payload))
                sequencer.last = seq
        await _pump(ws, connection, sequencer, engine, stream, bucket, settings, clock)
    finally:
        hub.unregister(connection)


async def _pump(
    ws: WebSocket,
    connection: Connection,
    sequencer: Sequencer,
    engine: Engine,
    stream: str,
    bucket: TokenBucket,
    settings: MobileApiSettings,
    clock: Callable[[], datetime],
) -> None:
    async def send_loop() -> None:
        while True:
            seq, payload = await connection.queue.get()
            action = sequencer.classify(seq)
            if action == "skip":
                continue
            if action == "fill":
                upto = None if seq is None else seq - 1

                def backfill(
                    after: int = sequencer.last, upto: int | None = upto
                ) -> list[tuple[int, bytes]]:
                    with session_factory(engine) as session:
                        return repo.stream_rows(session, stream, after, upto)

                for row_seq, row_payload in await asyncio.to_thread(backfill):
                    if row_seq != sequencer.last + 1:
                        break
                    await ws.send_text(_event_frame(row_seq, row_payload))
                    sequencer.last = row_seq
                if seq is None or seq <= sequencer.last:
                    continue
                if seq != sequencer.last + 1:
                    # The outbox no longer holds the gap (purged): say so, never skip silently.
                    await ws.send_text(f'{{"type":"reset","seq":{seq - 1:d}}}')
            assert seq is not None
            await ws.send_text(_event_frame(seq, payload))
            sequencer.last = seq

    async def receive_loop() -> None:
        while True:
            frame = await _receive(ws, bucket)
            if isinstance(frame, dict) and frame.get("type") == "ping":
                await ws.send_text('{"type":"pong"}')

    async def watch_drop() -> None:
        await connection.dropped.wait()
        log.info("websocket dropped: slow consumer")
        raise _ClosedError(CLOSE_SLOW, "too slow: reconnect and resume from your last seq")

    tasks = [
        asyncio.create_task(send_loop()),
        asyncio.create_task(receive_loop()),
        asyncio.create_task(watch_drop()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # re-raise _ClosedError / WebSocketDisconnect

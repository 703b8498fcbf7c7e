"""A join that reaches a worker which does not serve its room is relayed, frame for frame, to the
worker that does (its private port): the client keeps the one WebSocket it opened, whichever
worker the kernel gave it (SO_REUSEPORT) or whichever machine its link reached.  Only signalling
goes through the relay; media goes straight to the owner's UDP port, which the owner's ICE
candidates name.  Close codes pass through both ways (4410 room ended reaches the client as
4410); an owner that drops (kill -9) closes the client with 1012, and the client reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import aiohttp
from aiohttp import WSMsgType, web

from signaling.cluster.node import RELAY_HEADER

log = logging.getLogger("urok.cluster")

SERVICE_RESTART = 1012  # the worker behind the relay went away: reconnect
TRY_AGAIN = 1013  # the room's worker cannot be reached now: reconnect (the client backs off)
CONNECT_TIMEOUT_S = 2.0
_RESERVED = {1004, 1005, 1006, 1015}  # codes a close frame may not carry


def _code(code: int | None) -> int:
    return SERVICE_RESTART if code is None or code in _RESERVED or code < 1000 else code


class _Socket(Protocol):
    """What the relay uses of both ends (the server's and the client's WebSocket)."""

    @property
    def closed(self) -> bool: ...

    async def receive(self) -> aiohttp.WSMessage: ...

    async def send_str(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


async def _pump(src: _Socket, dst: _Socket, unclosed: int) -> None:
    """Messages from ``src`` to ``dst`` until ``src`` ends; then ``dst`` is closed with the code
    ``src`` closed with (``unclosed``: ``src`` ended without a close frame)."""
    code: int | None = None
    reason = ""
    while True:
        msg = await src.receive()
        if msg.type is WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        else:
            if msg.type is WSMsgType.CLOSE:
                code, reason = msg.data, str(msg.extra or "")
            break
    if not dst.closed:
        await dst.close(code=unclosed if code is None else _code(code), message=reason.encode()[:120])


async def relay(request: web.Request, ws: web.WebSocketResponse, target: str, http: aiohttp.ClientSession,
                *, hops: int, path: str) -> web.WebSocketResponse:
    """Pipe ``ws`` (prepared) to ``target``'s WebSocket at ``path`` with the same query."""
    url = target.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path
    if request.query_string:
        url += "?" + request.query_string
    try:
        # a bounded handshake: a hung owner (stopped, its machine gone) accepts TCP and never
        # answers; the client is told to try again, and by then the owner's lease has expired
        upstream = await asyncio.wait_for(
            http.ws_connect(url, headers={RELAY_HEADER: str(hops + 1)}, autoping=True, max_msg_size=0,
                            timeout=aiohttp.ClientWSTimeout(ws_close=5.0)), CONNECT_TIMEOUT_S)
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        log.warning("relay to %s failed: %s", target, e)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json({"event": "error", "error": {
                "code": "try_again", "message": "the lesson's server is not reachable now; try again"}})
        await ws.close(code=TRY_AGAIN, message=b"the lesson's server is not reachable now; try again")
        return ws

    tasks = [asyncio.create_task(_pump(upstream, ws, SERVICE_RESTART), name="relay-down"),  # the owner -> the client
             asyncio.create_task(_pump(ws, upstream, 1000), name="relay-up")]  # the client -> the owner
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t.exception() is not None and not isinstance(t.exception(), ConnectionError | RuntimeError):
                log.warning("relay: %r", t.exception())
        # the other direction gets a moment to pass the close on, then stops
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5.0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not upstream.closed:
            await upstream.close()
        if not ws.closed:
            await ws.close(code=SERVICE_RESTART)
    return ws

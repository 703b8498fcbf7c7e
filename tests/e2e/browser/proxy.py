"""A TCP relay between a browser page and the test server, for the reconnect tests.

The page loads the client and opens its WebSocket through the relay (127.0.0.1 only; the media goes
straight to the server's UDP port, as the server's ICE candidates say). The test counts the page's
WebSocket attempts at the relay, on the wire, whatever the client thinks it does, and changes the
relay's mode:

- ``pass``: relay both ways;
- ``refuse``: hang up on every new connection before the server sees it (the page's WebSocket fails
  like one to a server that is down or restarting);
- ``flap``: relay, but cut every WebSocket 0.3 s after the server's first frame (the ``welcome``): a
  connection that drops right after each join, like a peer connection that fails ICE every time.

``cut()`` drops every open connection (the page's socket closes with 1006).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["pass", "refuse", "flap"]
FLAP_AFTER_S = 0.3


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode: Mode = "pass"
        self.ws_attempts: list[float] = []  # loop time of each WebSocket request (GET /v1/rtc)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @classmethod
    async def start(cls, target_port: int) -> TcpProxy:
        proxy = cls(target_port)
        proxy._server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def attempts_since(self, t0: float) -> int:
        return sum(1 for t in self.ws_attempts if t >= t0)

    def cut(self) -> None:
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for task in list(self._tasks):
            task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            self._open.discard(writer)
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(65536)
        if not first:
            return
        is_ws = first.startswith(b"GET /v1/rtc")
        if is_ws:
            self.ws_attempts.append(asyncio.get_running_loop().time())
        if self.mode == "refuse":
            return  # hang up before the server sees the request
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open.update((writer, up_writer))
        flap = is_ws and self.mode == "flap"
        try:
            up_writer.write(first)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer, flap=flap))
        finally:
            self._open.discard(up_writer)
            up_writer.transport.abort()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, flap: bool = False) -> None:
        head = b""  # the HTTP response head, until its end is seen (flap: the frames come after it)
        in_frames = False
        while True:
            data = await src.read(65536)
            if not data:
                dst.transport.abort()
                return
            dst.write(data)
            await dst.drain()
            if flap and not in_frames:
                head += data
                end = head.find(b"\r\n\r\n")
                if end >= 0 and len(head) > end + 4:  # the first frame is through: cut soon after
                    in_frames = True
                    asyncio.get_running_loop().call_later(FLAP_AFTER_S, dst.transport.abort)

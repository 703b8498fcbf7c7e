"""One participant's WebSocket connection: a reader that dispatches requests, a writer that drains
an outbound queue (so a broadcast to 2000 sockets never waits on one slow client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from signaling.dispatcher import DispatchTable
from signaling.errors import ApiError, Forbidden, InvalidMessage, RateLimited, UnknownType
from signaling.rooms import Participant, ParticipantState, RoomError
from signaling.ws.close_codes import CloseCode
from signaling.ws.rate_limiter import TokenBucket

if TYPE_CHECKING:
    from signaling.metrics import Metrics
    from signaling.settings import Settings
    from signaling.ws.live_room import LiveRoom

log = logging.getLogger("urok.session")

OUTBOUND_LIMIT = 2000  # queued frames before a client counts as too slow
TOO_SLOW_GRACE_S = 5.0  # a too-slow client has this long to take its 4408 close frame, then it is cut off
_ENDED = object()


def error_payload(err: ApiError | RoomError) -> dict[str, str]:
    return {"code": err.code, "message": err.message}


def _valid_request_id(req_id: Any) -> bool:
    """None (no response wanted), an integer (not a bool) or a string of at most 64 characters."""
    if isinstance(req_id, str):
        return len(req_id) <= 64
    return req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool))


class Session:
    """A connected participant.  Created by the WebSocket handler, owned by its LiveRoom."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        room: LiveRoom,
        participant: Participant,
        settings: Settings,
        metrics: Metrics,
        table: DispatchTable,
    ) -> None:
        self.ws = ws
        self.room = room
        self.participant = participant
        self.settings = settings
        self.metrics = metrics
        self.table = table
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._bucket = TokenBucket(settings.ws_rate_per_s, settings.ws_rate_burst)
        self._refused_in_row = 0
        self._writer: asyncio.Task[None] | None = None
        self.closing = False
        self._close_after_reply: tuple[int, str] | None = None
        self.log = logging.LoggerAdapter(
            log, {"room_id": room.room_id, "participant_id": participant.participant_id}
        )
        self.extensions: dict[str, Any] = {}  # features keep per-session state here (media, ...)

    @property
    def participant_id(self) -> str:
        return self.participant.participant_id

    @property
    def joined(self) -> bool:
        return self.participant.state is ParticipantState.JOINED

    # --- outbound ----------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.participant_id}")

    def send_text(self, text: str) -> None:
        """Queue one frame; never blocks.  A client that stops reading is closed."""
        if self.closing:
            return
        if self._out.qsize() >= OUTBOUND_LIMIT:
            self._too_slow()
            return
        self._out.put_nowait(text)

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def send_event(self, event: str, **fields: Any) -> None:
        self.send({"event": event, **fields})

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._out.get()
                if item is _ENDED:
                    return
                if isinstance(item, tuple):
                    code, reason = item
                    await self.ws.close(code=code, message=reason.encode()[:120])
                    return
                assert isinstance(item, str)
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):  # also a socket _cut_off
            return
        except Exception:  # a broken socket must not take the room down
            self.log.exception("writer failed")

    def close_soon(self, code: int, reason: str) -> None:
        """Send what is queued, then close with code and reason.  Idempotent."""
        if self.closing:
            return
        self.closing = True
        self._out.put_nowait((int(code), reason))

    def _too_slow(self) -> None:
        """The client stopped reading: close with 4408.  Its backlog is dropped (a reconnect's welcome
        brings it up to date) so that the close frame is next after what the kernel already holds.  The
        writer is stuck on the full socket and aiohttp's close() waits on the same buffer, so a client
        that does not take even that within TOO_SLOW_GRACE_S is cut off: otherwise it kept its seat and
        its buffers until the heartbeat noticed (up to 30 s, close 1006)."""
        self.log.warning("client too slow to receive events (%d frames queued): closing with %d",
                         self._out.qsize(), int(CloseCode.TOO_SLOW))
        while not self._out.empty():
            self._out.get_nowait()
        self.close_soon(CloseCode.TOO_SLOW, "client too slow to receive events")
        asyncio.get_running_loop().call_later(TOO_SLOW_GRACE_S, self._cut_off)

    def _cut_off(self) -> None:
        if self._writer is None or self._writer.done():
            return  # the close frame went out
        sock = self.ws.get_extra_info("socket")
        if sock is None:
            return
        self.log.warning("too-slow client did not take its close frame within %.0f s: connection reset",
                         TOO_SLOW_GRACE_S)
        with contextlib.suppress(OSError):
            # reset rather than wait for the peer to read the buffered data; the pending write then
            # fails, which ends the writer, the reader and so the session
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)

    def close_after_reply(self, code: int, reason: str) -> None:
        """Close once the response to the request being handled is queued (e.g. `leave`)."""
        self._close_after_reply = (int(code), reason)

    async def stop_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._out.put_nowait(_ENDED)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._writer, 5.0)

    # --- inbound -----------------------------------------------------------------------------
    async def read_loop(self) -> None:
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                await self.handle_frame(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._error_event(InvalidMessage("binary frames are not part of the protocol"))
            else:  # CLOSE, ERROR (too big, protocol), CLOSED
                break
            if self.closing:
                break

    def _error_event(self, err: ApiError | RoomError) -> None:
        self.metrics.errors.labels(code=err.code).inc()
        self.send_event("error", error=error_payload(err))

    async def handle_frame(self, data: str) -> None:
        try:
            # msgspec, not json.loads: it refuses lone surrogate escapes ("\ud800"), which json.loads
            # accepts and which then fail UTF-8 encoding in every writer that relays them (a chat message
            # closed the whole room's sockets), and NaN/Infinity, which browsers' JSON.parse refuses
            frame = msgspec.json.decode(data)
        except (ValueError, RecursionError):
            self.metrics.ws_messages.labels(type="<malformed>").inc()
            self._handled("<malformed>", InvalidMessage.code)
            self._error_event(InvalidMessage("frame is not valid JSON"))
            return
        if not isinstance(frame, dict):
            self.metrics.ws_messages.labels(type="<malformed>").inc()
            self._handled("<malformed>", InvalidMessage.code)
            self._error_event(InvalidMessage("frame must be a JSON object"))
            return
        req_id = frame.get("id")
        if not _valid_request_id(req_id):
            self.metrics.ws_messages.labels(type="<malformed>").inc()
            self._handled("<malformed>", InvalidMessage.code)
            self._error_event(InvalidMessage("field 'id' must be an integer or a short string"))
            return
        if not self._bucket.take():
            self._refused_in_row += 1
            self.metrics.ws_messages.labels(type="<rate_limited>").inc()
            self._handled("<rate_limited>", RateLimited.code)
            self._reply_error(req_id, RateLimited("too many requests; slow down"))
            if self._refused_in_row >= self.settings.ws_rate_abuse_limit:
                self.close_soon(CloseCode.RATE_LIMITED, "too many requests")
            return
        self._refused_in_row = 0
        label = "<malformed>"  # until the type names a route (a label per route: bounded)
        try:
            route = self.table.route(frame.get("type"))
            type_ = label = frame["type"]
            self.metrics.ws_messages.labels(type=type_).inc()
            if route.joined_only and not self.joined:
                raise Forbidden("you are in the waiting room; wait until a host admits you")
            if route.action is not None:
                self.room.room.require(self.participant, route.action)
            if route.precheck is not None:
                await route.precheck(self)
            request = self.table.parse(route, frame)
            reply = await route.handler(self, request)
        except UnknownType as err:
            self.metrics.ws_messages.labels(type="<unknown>").inc()
            self._handled("<unknown>", err.code)
            self._reply_error(req_id, err)
            return
        except (ApiError, RoomError) as err:
            self._handled(label, err.code)
            self._reply_error(req_id, err)
            return
        except Exception:
            self.log.exception("handler for %r failed", frame.get("type"))
            internal = ApiError("internal error; the request was not completed")
            self._handled(label, internal.code)
            self._reply_error(req_id, internal)
            return
        self._handled(label, "ok")
        if req_id is not None:
            self.send({"id": req_id, "ok": True, **(reply or {})})
        if self._close_after_reply is not None:
            self.close_soon(*self._close_after_reply)

    def _handled(self, type_: str, outcome: str) -> None:
        self.metrics.ws_handled.labels(type=type_, outcome=outcome).inc()

    def _reply_error(self, req_id: Any, err: ApiError | RoomError) -> None:
        if req_id is None:
            self._error_event(err)
            return
        self.metrics.errors.labels(code=err.code).inc()
        self.send({"id": req_id, "ok": False, "error": error_payload(err)})

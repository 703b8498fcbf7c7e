"""The edge's side of a room spanning workers: a router of its own, fed by a pipe from the room's
owner, and the subscriber connections of the participants the owner placed here.

The owner keeps the room (roster, chat, permissions, who receives what, the publishers'
connections); an edge only carries out its requests (edge_messages.py), one at a time in the
order sent, and tells it when a subscriber connection fails.  mediasoup's shape: the application
(here the owner) drives several workers' routers joined by pipeToRouter.  When the owner's socket
goes, the room's router here closes with everything in it (the clients reconnect through the
owner, whose relay to them closed too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from sfu import Consumer, PipeTransport, Router, SfuError, WebRtcTransport, Worker
from sfu.errors import ClosedError, InvalidStateError
from signaling.auth import TokenError, TokenService
from signaling.cluster.edge_messages import (
    HEARTBEAT_S,
    MAX_FRAME,
    Answer,
    Candidate,
    Connect,
    ConsumerOp,
    EdgeMessageError,
    EdgeRequest,
    Join,
    Leave,
    Offer,
    Open,
    Pipe,
    Unpipe,
    parse_request,
)

log = logging.getLogger("urok.cluster")


class EdgeRoom:
    """One room's share of this worker, driven by the owner's requests."""

    def __init__(self, router: Router, listen_ip: str, emit: Callable[[dict[str, Any]], None]) -> None:
        self.router = router
        self._listen_ip = listen_ip
        self._emit = emit
        self.pipe: PipeTransport | None = None
        self.subs: dict[str, WebRtcTransport] = {}
        self.consumers: dict[tuple[str, str], Consumer] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Open: self._open, Connect: self._connect, Pipe: self._pipe, Unpipe: self._unpipe,
            Join: self._join, Leave: self._leave, Offer: self._offer, Answer: self._answer,
            Candidate: self._candidate, ConsumerOp: self._consumer_op,
        }
        self._consumer_ops: dict[str, Callable[[ConsumerOp], None]] = {
            "consume": self._consume, "stop": self._stop, "pause": lambda r: self._consumer(r).pause(),
            "resume": lambda r: self._consumer(r).resume(),
            "quality": lambda r: self._consumer(r).set_quality(r.quality),
            "replace": lambda r: self._consumer(r).replace_producer(self._producer(r.source_id)),
        }

    async def handle(self, request: EdgeRequest) -> dict[str, Any]:
        """Carry one request out; its answer's fields.  Raises SfuError / EdgeMessageError."""
        result = self._handlers[type(request)](request)
        if asyncio.iscoroutine(result):
            result = await result
        return result if isinstance(result, dict) else {}

    # --- the pipe ----------------------------------------------------------------------------
    def _open(self, r: Open) -> dict[str, Any]:
        if self.pipe is not None:
            raise InvalidStateError("the pipe is open already")
        self.pipe = self.router.create_pipe_transport(self._listen_ip, srtp=r.srtp)
        srtp = self.pipe.srtp_parameters
        return {"address": list(self.pipe.local_address), "srtp": None if srtp is None else srtp.to_dict()}

    def _connect(self, r: Connect) -> None:
        self._the_pipe().connect(r.address[0], r.address[1], r.srtp)

    def _pipe(self, r: Pipe) -> None:
        self._the_pipe().produce(r.description)

    def _unpipe(self, r: Unpipe) -> None:
        producer = self.router.get_producer(r.producer_id)
        if producer is not None:
            producer.close()  # its consumers here close with it

    def _the_pipe(self) -> PipeTransport:
        if self.pipe is None:
            raise InvalidStateError("open the pipe first")
        return self.pipe

    # --- subscribers -------------------------------------------------------------------------
    def _join(self, r: Join) -> None:
        if r.sub in self.subs:
            raise InvalidStateError(f"subscriber {r.sub!r} exists")
        transport = self.router.create_transport(f"{r.sub}:sub:{uuid.uuid4().hex[:6]}")
        transport.on_state_change = lambda state: self._emit({"event": "state", "sub": r.sub, "state": state})
        self.subs[r.sub] = transport

    def _leave(self, r: Leave) -> None:
        transport = self.subs.pop(r.sub, None)
        if transport is not None:
            for key in [k for k in self.consumers if k[0] == r.sub]:
                del self.consumers[key]
            transport.close()

    def _sub(self, sub: str) -> WebRtcTransport:
        transport = self.subs.get(sub)
        if transport is None:
            raise ClosedError(f"no subscriber {sub!r} here")
        return transport

    async def _offer(self, r: Offer) -> dict[str, Any]:
        return {"sdp": await self._sub(r.sub).create_offer()}

    async def _answer(self, r: Answer) -> None:
        await self._sub(r.sub).accept_answer(r.sdp)

    async def _candidate(self, r: Candidate) -> None:
        await self._sub(r.sub).add_remote_candidate(r.candidate)

    # --- consumers ---------------------------------------------------------------------------
    def _consumer_op(self, r: ConsumerOp) -> None:
        self._consumer_ops[r.op](r)

    def _producer(self, producer_id: str) -> Any:
        producer = self.router.get_producer(producer_id)
        if producer is None:
            raise ClosedError(f"producer {producer_id!r} is not piped here")
        return producer

    def _consume(self, r: ConsumerOp) -> None:
        key = (r.sub, r.producer_id)
        if key in self.consumers and not self.consumers[key].closed:
            return
        consumer = self._sub(r.sub).consume(self._producer(r.producer_id))
        self.consumers[key] = consumer

        def forget() -> None:
            if self.consumers.get(key) is consumer:
                del self.consumers[key]

        consumer.on_close = forget

    def _stop(self, r: ConsumerOp) -> None:
        consumer = self.consumers.pop((r.sub, r.producer_id), None)
        if consumer is not None:
            consumer.close()

    def _consumer(self, r: ConsumerOp) -> Consumer:
        consumer = self.consumers.get((r.sub, r.producer_id))
        if consumer is None:
            raise ClosedError(f"{r.sub!r} does not receive {r.producer_id!r} here")
        return consumer

    def close(self) -> None:
        self.subs.clear()
        self.consumers.clear()
        self.router.close()  # transports, the pipe and its producers close with it


class EdgeService:
    """Every worker's edge endpoint (EDGE_PATH): rooms owned elsewhere that place subscribers here."""

    def __init__(self, worker: Worker, tokens: TokenService, listen_ip: str) -> None:
        self._worker = worker
        self._tokens = tokens
        self._listen_ip = listen_ip
        self.rooms: set[EdgeRoom] = set()

    @property
    def subscribers(self) -> int:
        """Participants receiving from this worker for rooms owned elsewhere (its load report)."""
        return sum(len(room.subs) for room in self.rooms)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        try:
            grant = self._tokens.verify_admin(auth.removeprefix("Bearer ").strip())
        except TokenError as e:
            raise web.HTTPUnauthorized(text=f"edge: {e}") from None
        if not grant.subject.startswith("cluster"):
            raise web.HTTPForbidden(text="edge: a cluster token is needed")
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        out: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write(ws, out), name="edge-writer")
        room: EdgeRoom | None = None
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                rid = -1
                try:
                    rid, req = parse_request(json.loads(msg.data))
                    if room is None:
                        if not isinstance(req, Open):
                            raise EdgeMessageError("the first request is open")
                        room = EdgeRoom(self._worker.create_router(f"edge:{req.room_id}:{uuid.uuid4().hex[:8]}"),
                                        self._listen_ip, out.put_nowait)
                        self.rooms.add(room)
                    result = await room.handle(req)
                    out.put_nowait({"re": rid, "ok": True, **result})
                except (EdgeMessageError, SfuError, ValueError) as e:
                    code = getattr(e, "code", "invalid_message")
                    out.put_nowait({"re": rid, "error": {"code": code, "message": str(e)}})
        finally:
            if room is not None:
                self.rooms.discard(room)
                room.close()
            out.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 2.0)
            writer.cancel()
        return ws

    @staticmethod
    async def _write(ws: web.WebSocketResponse, out: asyncio.Queue[dict[str, Any] | None]) -> None:
        while (frame := await out.get()) is not None:
            if ws.closed:
                return
            await ws.send_str(json.dumps(frame))

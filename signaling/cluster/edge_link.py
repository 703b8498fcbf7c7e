"""The owner's side of a room spanning workers: one EdgeLink per (room, edge worker) — a
WebSocket to the edge's EDGE_PATH and a pipe from the room's router to the edge's — and the
remote twins of a subscriber connection and its consumers (RemoteSubscriber, RemoteConsumer:
signaling/media/subscriber_connection.py's interface), which the room uses as if they were local.

A track reaches an edge once, whatever number of its participants receive it there
(``ensure_piped``: a PipeConsumer here, its producer there, with the same id); keyframe requests,
NACKs and each edge consumer's own simulcast layer choice cross the pipe (sfu/pipe_transport.py).
Requests keep their order on the socket; only those whose answer the room needs (an offer, an
answer, a candidate) are awaited, the rest are answered too and a failure is logged.  A socket that
goes (the edge died) fails every subscriber connection on it: the room tears their media down and
tells the clients (media_failed), which reconnect and are placed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from sfu import PipeConsumer, PipeTransport, Producer, Router, SfuError, errors
from signaling.cluster.edge_messages import EDGE_PATH, HEARTBEAT_S, MAX_FRAME
from signaling.media.subscriber_connection import ConsumerHandle

log = logging.getLogger("urok.cluster")

# An edge carries its requests out one at a time: in a join storm an offer waits behind hundreds of
# others (each 5-25 ms of aiortc), as it would behind the room's negotiation turn on the owner
REQUEST_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 3.0


def _sfu_errors() -> dict[str, type[SfuError]]:
    found: dict[str, type[SfuError]] = {}
    todo: list[type[SfuError]] = [SfuError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


class EdgeError(SfuError):
    """The edge cannot be reached or did not answer in time."""

    code = "edge_unavailable"


class EdgeLink:
    """One room's pipe and control socket to one edge worker.  Made by :meth:`open`."""

    def __init__(self, router: Router, worker_id: str, ws: aiohttp.ClientWebSocketResponse, pipe: PipeTransport,
                 on_closed: Callable[[EdgeLink], None]) -> None:
        self.router = router
        self.worker_id = worker_id
        self._ws = ws
        self.pipe = pipe
        self._on_closed = on_closed
        self._ids = itertools.count(2)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.piped: dict[str, PipeConsumer] = {}
        self.subscribers: dict[str, RemoteSubscriber] = {}
        self.closed = False
        self._closing: asyncio.Future[bool] | None = None
        self._errors = _sfu_errors()
        self._reader = asyncio.create_task(self._read(), name=f"edge-link-{worker_id}")

    @classmethod
    async def open(cls, router: Router, worker_id: str, url: str, http: aiohttp.ClientSession, token: str,
                   listen_ip: str, *, srtp: bool, on_closed: Callable[[EdgeLink], None]) -> EdgeLink:
        """Connect to the edge at ``url`` (its private base), open the room there and join the
        pipe's ends.  Raises EdgeError."""
        ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + EDGE_PATH
        pipe: PipeTransport | None = None
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            ws = await asyncio.wait_for(http.ws_connect(
                ws_url, headers={"Authorization": f"Bearer {token}"}, max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT_S),
                CONNECT_TIMEOUT_S)
            await ws.send_str(json.dumps({"id": 1, "op": "open", "room_id": router.id, "srtp": srtp}))
            reply = await asyncio.wait_for(ws.receive_json(), CONNECT_TIMEOUT_S)
            if not reply.get("ok"):
                raise EdgeError(f"the edge refused the room: {reply.get('error')}")
            pipe = router.create_pipe_transport(listen_ip, srtp=srtp)
            address = reply["address"]
            pipe.connect(str(address[0]), int(address[1]), reply.get("srtp"))
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError, TypeError) as e:
            if pipe is not None:
                pipe.close()
            if ws is not None:
                await ws.close()
            raise EdgeError(f"edge {worker_id}: {type(e).__name__}: {e}") from None
        except BaseException:
            if pipe is not None:
                pipe.close()
            if ws is not None:
                await ws.close()
            raise
        link = cls(router, worker_id, ws, pipe, on_closed)
        keys = pipe.srtp_parameters
        link.send("connect", address=list(pipe.local_address), srtp=None if keys is None else keys.to_dict())
        return link

    # --- requests ----------------------------------------------------------------------------
    def send(self, op: str, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        """Send one request (in order); its answer's future (a failure is logged if unawaited)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_exception(EdgeError("the edge is gone"))
            fut.exception()  # retrieved: nobody may await it
            return fut
        rid = next(self._ids)
        self._waiting[rid] = fut
        fut.add_done_callback(lambda f: None if f.cancelled() or f.exception() is None else
                              log.debug("edge %s: %s failed: %s", self.worker_id, op, f.exception()))
        try:
            # queued by aiohttp's writer in call order; the task only waits for the transport
            task = asyncio.ensure_future(self._ws.send_str(json.dumps({"id": rid, "op": op, **fields})))
            task.add_done_callback(self._sent)
        except Exception as e:  # a closing socket: the reader fails everything
            self._waiting.pop(rid, None)
            fut.set_exception(EdgeError(str(e)))
        return fut

    def _sent(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.close()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.shield(self.send(op, **fields)), REQUEST_TIMEOUT_S)
        except TimeoutError:
            raise EdgeError(f"edge {self.worker_id} did not answer {op} in time") from None

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                if "re" in frame:
                    fut = self._waiting.pop(int(frame["re"]), None)
                    if fut is None or fut.done():
                        continue
                    if frame.get("ok"):
                        fut.set_result(frame)
                    else:
                        err = frame.get("error") or {}
                        cls = self._errors.get(str(err.get("code")), SfuError)
                        fut.set_exception(cls(str(err.get("message", "the edge refused the request"))))
                elif frame.get("event") == "state":
                    sub = self.subscribers.get(str(frame.get("sub")))
                    if sub is not None:
                        sub.state_changed(str(frame.get("state")))
        except (aiohttp.ClientError, ValueError, ConnectionError) as e:
            log.warning("edge %s: the link broke: %r", self.worker_id, e)
        finally:
            self.close()

    # --- tracks ------------------------------------------------------------------------------
    def ensure_piped(self, producer: Producer) -> None:
        """The producer (of this room's router) is on the edge: once per track."""
        if producer.id in self.piped or self.closed:
            return
        consumer = self.pipe.consume(producer)
        self.piped[producer.id] = consumer
        self.send("pipe", description=consumer.description.to_dict())
        pid = producer.id
        consumer.on_close = lambda: self._unpiped(pid, consumer)

    def _unpiped(self, producer_id: str, consumer: PipeConsumer) -> None:
        """The track closed here (or its pipe did): it goes there too, with its consumers."""
        if self.piped.get(producer_id) is not consumer:
            return
        del self.piped[producer_id]
        if self.closed:
            return
        self.send("unpipe", producer_id=producer_id)
        for sub in list(self.subscribers.values()):
            sub.track_gone(producer_id)

    # --- subscribers -------------------------------------------------------------------------
    def subscriber(self, sub: str) -> RemoteSubscriber:
        remote = RemoteSubscriber(self, sub)
        self.subscribers[sub] = remote
        self.send("join", sub=sub)
        return remote

    def forget(self, remote: RemoteSubscriber) -> None:
        if self.subscribers.get(remote.sub) is remote:
            del self.subscribers[remote.sub]
            self.send("leave", sub=remote.sub)
        if not self.subscribers:
            self.close()  # nobody of this room is there any more: the pipe goes too

    def close(self) -> None:
        """Idempotent: the socket and the pipe go; every subscriber on the edge fails."""
        if self.closed:
            return
        self.closed = True
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(EdgeError("the edge is gone"))
                fut.exception()
        self._waiting.clear()
        self.piped.clear()
        self.pipe.close()
        subs, self.subscribers = list(self.subscribers.values()), {}
        for sub in subs:
            sub.state_changed("failed")
        self._closing = asyncio.ensure_future(self._ws.close())
        self._on_closed(self)


class RemoteConsumer:
    """A track forwarded by the edge to one of its subscribers (ConsumerHandle)."""

    def __init__(self, sub: RemoteSubscriber, producer: Producer) -> None:
        self._sub = sub
        self.producer_id = producer.id
        self._kind = producer.kind
        self._paused = False
        self._closed = False
        self.on_close: Callable[[], None] | None = None

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closed(self) -> bool:
        return self._closed

    def _op(self, op: str, **fields: Any) -> None:
        if not self._closed:
            self._sub.link.send(op, sub=self._sub.sub, producer_id=self.producer_id, **fields)

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._op("pause")

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._op("resume")

    def set_quality(self, quality: str) -> None:
        self._op("quality", quality=quality)

    def replace_producer(self, producer: Producer) -> None:
        if self._closed:
            raise errors.ClosedError("consumer is closed")
        if producer.closed:
            raise errors.ClosedError("producer is closed")
        self._sub.link.ensure_piped(producer)
        self._op("replace", source_id=producer.id)

    def close(self) -> None:
        self._op("stop")
        self.closed_there()

    def closed_there(self) -> None:
        """Closed (asked here, or its track went): forgotten, the subscriber renegotiates."""
        if self._closed:
            return
        self._closed = True
        self._sub.consumer_closed(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()


class RemoteSubscriber:
    """A participant's subscriber connection on an edge worker (SubscriberConnection)."""

    def __init__(self, link: EdgeLink, sub: str) -> None:
        self.link = link
        self.sub = sub
        self.on_negotiation_needed: Callable[[], None] | None = None
        self.on_state_change: Callable[[str], None] | None = None
        self.consumers: dict[str, RemoteConsumer] = {}
        self._needed = False
        self._closed = False

    @property
    def ice_lite(self) -> bool:
        # its negotiations wait for the edge's answer: never inside the room's negotiation turn
        return False

    @property
    def negotiation_needed(self) -> bool:
        return self._needed

    def _changed(self) -> None:
        self._needed = True
        if self.on_negotiation_needed is not None:
            self.on_negotiation_needed()

    def consume(self, producer: Producer) -> ConsumerHandle:
        if self._closed or self.link.closed:
            raise errors.ClosedError("the subscriber connection is closed")
        old = self.consumers.get(producer.id)
        if old is not None and not old.closed:
            return old
        self.link.ensure_piped(producer)
        consumer = RemoteConsumer(self, producer)
        self.consumers[producer.id] = consumer
        self.link.send("consume", sub=self.sub, producer_id=producer.id)
        self._changed()
        return consumer

    def consumer_closed(self, consumer: RemoteConsumer) -> None:
        if self.consumers.get(consumer.producer_id) is consumer:
            del self.consumers[consumer.producer_id]
            if not self._closed:
                self._changed()

    def track_gone(self, producer_id: str) -> None:
        consumer = self.consumers.get(producer_id)
        if consumer is not None:
            consumer.closed_there()

    async def create_offer(self) -> str:
        self._needed = False
        try:
            reply = await self.link.request("offer", sub=self.sub)
        except BaseException:
            self._needed = True  # the next change offers it again
            raise
        return str(reply["sdp"])

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.link.request("answer", sub=self.sub, sdp=answer_sdp)

    async def add_remote_candidate(self, candidate: Mapping[str, Any] | None) -> None:
        await self.link.request("candidate", sub=self.sub, candidate=None if candidate is None else dict(candidate))

    def state_changed(self, state: str) -> None:
        if self.on_state_change is not None:
            self.on_state_change(state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.consumers.clear()
        self.on_negotiation_needed = None
        self.on_state_change = None
        with contextlib.suppress(Exception):
            self.link.forget(self)

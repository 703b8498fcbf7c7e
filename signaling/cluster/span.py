"""Where a joining participant's subscriber connection goes when a room outgrows its worker: a room
spans workers (issue 19; mediasoup's pipeToRouter, Jitsi's Octo).

The owner keeps the room, its publishers' connections and the first ``span_after`` participants'
subscriber connections; from then on each new participant receives from the least-loaded other
live worker (its load as its heartbeat says, plus what this worker placed there since), over
that worker's link for the room (edge_link.py: made at the first placement, gone with the last
participant there).  Why subscribers and not publishers: a lesson's cost is its fan-out (one
teacher, hundreds of viewers), and a subscriber connection is a participant's whole share of that
cost; publishers stay with the room, where recording, captions and noise suppression take their
tracks.  An edge that cannot be reached places the participant here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import aiohttp

from sfu import Router, Worker
from signaling.auth import TokenService
from signaling.cluster.directory import RENEW_S, WorkerInfo
from signaling.cluster.edge_link import EdgeError, EdgeLink
from signaling.cluster.node import ClusterNode
from signaling.media.subscriber_connection import SubscriberConnection

log = logging.getLogger("urok.cluster")

TOKEN_TTL_S = 60


def node_of(worker_id: str) -> str:
    """The machine (`urok serve`) part of a worker id "<node>/<index>/<pid>"."""
    return worker_id.rsplit("/", 2)[0]


class SpanPlacer:
    """The cluster's SubscriberPlacer (signaling/media/subscriber_connection.py)."""

    def __init__(self, node: ClusterNode, worker: Worker, http: aiohttp.ClientSession, tokens: TokenService,
                 *, span_after: int, listen_ip: str) -> None:
        self._node = node
        self._worker = worker
        self._http = http
        self._tokens = tokens
        self.span_after = span_after
        self._listen_ip = listen_ip
        self.links: dict[tuple[str, str], EdgeLink] = {}
        self._opening: dict[tuple[str, str], asyncio.Future[EdgeLink]] = {}
        self._placed: dict[str, deque[float]] = {}  # worker id -> when this worker placed someone there

    async def place(self, room_id: str, participant_id: str, connection: int, *,
                    local: int) -> SubscriberConnection | None:
        if self.span_after <= 0 or local < self.span_after:
            return None
        router = self._worker.get_router(room_id)
        if router is None:
            return None
        edge = self._pick(await self._node.others())
        if edge is None:
            return None
        key = (room_id, edge.worker_id)
        link = self.links.get(key)
        if link is None or link.closed:
            # one link per (room, edge): the joins of a storm that arrive while it is being made wait for it
            opening = self._opening.get(key)
            if opening is None:
                opening = self._opening[key] = asyncio.ensure_future(self._open(router, edge))
                opening.add_done_callback(lambda _: self._opening.pop(key, None))
            try:
                link = await asyncio.shield(opening)
            except EdgeError as e:
                log.warning("room %s: placing a subscriber on %s failed (%s); served here", room_id, edge.worker_id, e)
                return None
            if link.closed:
                return None
        self._placed.setdefault(edge.worker_id, deque()).append(time.monotonic())
        return link.subscriber(f"{participant_id}:{connection}")

    async def _open(self, router: Router, edge: WorkerInfo) -> EdgeLink:
        # between machines the pipe is SRTP (the packets cross a network); on one machine plain RTP
        srtp = node_of(edge.worker_id) != node_of(self._node.worker_id)
        link = await EdgeLink.open(
            router, edge.worker_id, edge.url, self._http,
            self._tokens.mint_admin(subject=f"cluster:{self._node.worker_id}", ttl_s=TOKEN_TTL_S),
            self._listen_ip, srtp=srtp, on_closed=self._link_closed)
        if router.closed:
            link.close()
        else:
            self.links[(router.id, edge.worker_id)] = link
            log.info("room %s spans to worker %s (pipe %s)", router.id, edge.worker_id, "srtp" if srtp else "rtp")
        return link

    def _pick(self, others: list[WorkerInfo]) -> WorkerInfo | None:
        """The least loaded other worker, counting the placements its last heartbeat may not show."""
        horizon = time.monotonic() - 2 * RENEW_S
        for placed in self._placed.values():
            while placed and placed[0] < horizon:
                placed.popleft()

        def load(w: WorkerInfo) -> tuple[float, str]:
            return w.load + len(self._placed.get(w.worker_id, ())), w.worker_id

        return min(others, key=load, default=None)

    def _link_closed(self, link: EdgeLink) -> None:
        key = (link.router.id, link.worker_id)
        if self.links.get(key) is link:
            del self.links[key]

    def close(self) -> None:
        for link in list(self.links.values()):
            link.close()
        self.links.clear()

"""This worker's place in the cluster: its identity, its heartbeat and leases, and where a join for
a room goes (served here, or relayed to the worker that owns the room).

Every ``RENEW_S`` the worker reports its load (rooms, participants) and renews the leases of the
rooms it serves.  A lease lost meanwhile (another worker took the room while Redis was restarted or
this process stalled past the TTL) ends the room here: its sockets close with 1012 and the clients
reconnect to the new owner (see ClusterRooms.lost).  A directory that cannot be reached changes
nothing served here: the lessons go on, and the loop keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from signaling.cluster.directory import LEASE_TTL_S, RENEW_S, DirectoryUnavailable, RoomDirectory, WorkerInfo

log = logging.getLogger("urok.cluster")

RELAY_HEADER = "X-Urok-Relay"  # on a WebSocket relayed by another worker: how many hops so far
FORWARD_HEADER = "X-Urok-Forwarded"  # on REST forwarded by another worker: answer here, do not forward
MAX_HOPS = 2
ALIVE_KEY = "__cluster_alive__"  # held (as a lease) by some live worker while any worker runs
RECOVERY_KEY = "__recordings_recovery__"  # one of the workers of a cold start recovers recordings
RECOVERY_TTL_S = 600.0  # a join relayed twice (the owner moved twice meanwhile) is refused with 1013: try again


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One worker process of `urok serve --workers N` (or the only one, with redis_url)."""

    index: int  # 0..N-1 on this machine: its UDP port is rtc_udp_port + index, its private port port + 1 + index
    node_id: str  # this machine's `urok serve` (host name and the supervisor's PID)
    private_host: str  # where the other workers reach its private port
    private_port: int

    @property
    def worker_id(self) -> str:
        return f"{self.node_id}/{self.index}/{os.getpid()}"

    @property
    def url(self) -> str:
        host = f"[{self.private_host}]" if ":" in self.private_host else self.private_host
        return f"http://{host}:{self.private_port}"


class Unplaceable(Exception):
    """The join cannot be placed now (directory away, owner unreachable); the client tries again."""


class ClusterNode:
    def __init__(self, directory: RoomDirectory, config: ClusterConfig, *,
                 counts: Callable[[], Mapping[str, Any]], is_live: Callable[[str], bool],
                 renew_s: float = RENEW_S, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.directory = directory
        self.config = config
        self.worker_id = config.worker_id
        self.url = config.url
        self._counts = counts
        self._is_live = is_live
        self.renew_s = renew_s
        self.lease_ttl_s = lease_ttl_s
        self.owned: set[str] = set()  # rooms this worker holds the lease of
        self.on_lost: Callable[[str], Awaitable[None]] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._healthy = True
        self.cold_start = False  # no worker was running when this one started (start)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.directory.start()
            # before this worker's own heartbeat: was any worker running? (recordings: may_recover)
            self.cold_start = await self.directory.owner(ALIVE_KEY) is None
            await self._beat()
        except DirectoryUnavailable as e:  # the loop keeps trying; nothing is served from it yet
            log.warning("the room directory is not reachable at start (%s); retrying", e)
        self._loop = asyncio.create_task(self._run(), name="urok-cluster-heartbeat")
        log.info("worker %s in the cluster (private %s)", self.worker_id, self.url)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        with contextlib.suppress(DirectoryUnavailable):
            for room_id in list(self.owned):
                await self.directory.release(room_id, self.worker_id)
            await self.directory.remove_worker(self.worker_id)
        self.owned.clear()
        await self.directory.close()

    def info(self) -> WorkerInfo:
        counts = self._counts()
        return WorkerInfo(self.worker_id, self.url, int(counts.get("rooms", 0)), int(counts.get("participants", 0)))

    async def _beat(self) -> None:
        await self.directory.heartbeat(self.info(), self.lease_ttl_s)
        await self.directory.claim(ALIVE_KEY, self.worker_id, self.lease_ttl_s, count=False)
        lost = await self.directory.renew(sorted(self.owned), self.worker_id, self.lease_ttl_s)
        for room_id in lost:
            log.error("room %s: another worker holds its lease now; it is no longer served here", room_id)
            self.owned.discard(room_id)
            if self.on_lost is not None:
                await self.on_lost(room_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self._beat()
                if not self._healthy:
                    log.warning("the room directory is reachable again; leases renewed")
                    self._healthy = True
            except DirectoryUnavailable as e:
                if self._healthy:
                    log.error("the room directory is not reachable (%s); the lessons here go on", e)
                    self._healthy = False
            except Exception:
                log.exception("the cluster heartbeat failed; it goes on")

    # --- placement ---------------------------------------------------------------------------
    async def place(self, room_id: str, *, hops: int = 0) -> str | None:
        """Where a join for ``room_id`` is served: None here (this worker holds the room's lease
        now), else the private URL of the worker to relay it to.  A room nobody serves goes to the
        least-loaded live worker; a join already relayed here is served here if the room is free.
        Raises Unplaceable when that cannot be decided now (the client tries again)."""
        if room_id in self.owned and self._is_live(room_id):
            return None
        try:
            owner = await self.directory.owner(room_id)
            if owner is None and hops == 0:
                best = await self.directory.least_loaded(prefer=self.worker_id)
                if best is not None and best.worker_id != self.worker_id:
                    return best.url  # it claims the room when the relayed join reaches it
            if owner is None or owner == self.worker_id:
                owner = await self.directory.claim(room_id, self.worker_id, self.lease_ttl_s)
            if owner == self.worker_id:
                self.owned.add(room_id)
                return None
            if hops >= MAX_HOPS:
                raise Unplaceable("the room moved while the join was relayed")
            info = await self.directory.worker(owner)
        except DirectoryUnavailable as e:
            if self._is_live(room_id):  # served here already: keep serving it while Redis is away
                return None
            raise Unplaceable(f"the room directory is not reachable: {e}") from None
        if info is None:  # its lease is alive but its heartbeat is not: dying; the lease expires soon
            raise Unplaceable("the worker serving this lesson stopped answering")
        return info.url

    async def owner_url(self, room_id: str) -> str | None:
        """The private URL of the live worker serving ``room_id`` if it is another one, else None
        (served here, by nobody, or the directory is away: then answered here from the store)."""
        if self._is_live(room_id):
            return None
        try:
            owner = await self.directory.owner(room_id)
            if owner is None or owner == self.worker_id:
                return None
            info = await self.directory.worker(owner)
        except DirectoryUnavailable:
            return None
        return None if info is None else info.url

    async def claim(self, room_id: str) -> bool:
        """Take a room nobody serves (to end it on time, say); False if another worker holds it."""
        try:
            owner = await self.directory.claim(room_id, self.worker_id, self.lease_ttl_s)
        except DirectoryUnavailable:
            return False
        if owner == self.worker_id:
            self.owned.add(room_id)
            return True
        return False

    async def release(self, room_id: str) -> None:
        """This worker no longer serves the room (nobody connected, ended): another may take it."""
        self.owned.discard(room_id)
        with contextlib.suppress(DirectoryUnavailable):  # the lease expires by itself
            await self.directory.release(room_id, self.worker_id)

    async def may_recover(self) -> bool:
        """Whether this worker repairs the recordings a dead process left `recording` (recordings/):
        only at a cold start (no worker was running: none can be writing one now), and only one of
        the workers starting together.  A worker restarted while others run leaves them alone (a
        live worker may be writing them); the dead worker's own wait for the next cold start."""
        if not self.cold_start:
            return False
        try:
            holder = await self.directory.claim(RECOVERY_KEY, self.worker_id, RECOVERY_TTL_S, count=False)
            return holder == self.worker_id
        except DirectoryUnavailable:
            return False

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        """Tell the other workers (a hint: lost while the directory is away)."""
        try:
            await self.directory.publish(channel, {**event, "from": self.worker_id})
        except DirectoryUnavailable as e:
            log.warning("cluster event on %s not sent: %s", channel, e)

    async def on_others(self, channel: str, handler: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Call ``handler`` for each event another worker publishes on ``channel``."""

        async def filtered(event: dict[str, Any]) -> None:
            if event.get("from") != self.worker_id:
                await handler(event)

        await self.directory.subscribe(channel, filtered)

    async def others(self) -> list[WorkerInfo]:
        """The other live workers (for /metrics)."""
        try:
            return [w for w in await self.directory.workers() if w.worker_id != self.worker_id]
        except DirectoryUnavailable:
            return []

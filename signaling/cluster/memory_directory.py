"""The RoomDirectory in one process' memory: the same leases and heartbeats with expiry, nothing
shared with other processes.  For tests (several apps in one process share one) and as the model
the Redis directory follows; a single `urok serve` with no redis_url needs no directory at all."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from signaling.cluster.directory import LEASE_TTL_S, EventHandler, Subscription, WorkerInfo, pick_least_loaded

log = logging.getLogger("urok.cluster")


class _MemorySubscription:
    def __init__(self, directory: MemoryDirectory, channel: str, handler: EventHandler) -> None:
        self._directory, self.channel, self.handler = directory, channel, handler

    async def close(self) -> None:
        subs = self._directory._subs.get(self.channel, [])
        if self in subs:
            subs.remove(self)


class MemoryDirectory:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}  # id -> (info, expires)
        self._leases: dict[str, tuple[str, float]] = {}  # room -> (worker, expires)
        self._subs: dict[str, list[_MemorySubscription]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)

    # --- workers -----------------------------------------------------------------------------
    async def heartbeat(self, info: WorkerInfo, ttl_s: float = LEASE_TTL_S) -> None:
        self._workers[info.worker_id] = (info, self.clock() + ttl_s)

    def _live_workers(self) -> dict[str, WorkerInfo]:
        now = self.clock()
        for wid in [w for w, (_, exp) in self._workers.items() if exp <= now]:
            del self._workers[wid]
        return {w: info for w, (info, _) in self._workers.items()}

    async def workers(self) -> list[WorkerInfo]:
        return sorted(self._live_workers().values(), key=lambda w: w.worker_id)

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        return self._live_workers().get(worker_id)

    async def least_loaded(self, *, prefer: str | None = None) -> WorkerInfo | None:
        return pick_least_loaded(self._live_workers().values(), prefer)

    async def remove_worker(self, worker_id: str) -> int:
        self._workers.pop(worker_id, None)
        mine = [r for r, (w, _) in self._leases.items() if w == worker_id]
        for room_id in mine:
            del self._leases[room_id]
        return len(mine)

    # --- room leases -------------------------------------------------------------------------
    def _holder(self, room_id: str) -> str | None:
        lease = self._leases.get(room_id)
        if lease is None:
            return None
        if lease[1] <= self.clock():
            del self._leases[room_id]
            return None
        return lease[0]

    def _bump_rooms(self, worker_id: str) -> None:
        """A claim counts toward the claimant's load at once (the next heartbeat says the truth), so
        two rooms claimed within one heartbeat still go to two workers."""
        entry = self._workers.get(worker_id)
        if entry is not None:
            info, exp = entry
            self._workers[worker_id] = (WorkerInfo(info.worker_id, info.url, info.rooms + 1, info.participants), exp)

    async def claim(self, room_id: str, worker_id: str, ttl_s: float = LEASE_TTL_S, *, count: bool = True) -> str:
        holder = self._holder(room_id)
        if holder is None and count:
            self._bump_rooms(worker_id)
        if holder is None or holder == worker_id:
            self._leases[room_id] = (worker_id, self.clock() + ttl_s)
            return worker_id
        return holder

    async def renew(self, room_ids: Iterable[str], worker_id: str, ttl_s: float = LEASE_TTL_S) -> list[str]:
        lost = []
        for room_id in room_ids:
            holder = self._holder(room_id)
            if holder is None or holder == worker_id:
                self._leases[room_id] = (worker_id, self.clock() + ttl_s)
            else:
                lost.append(room_id)
        return lost

    async def release(self, room_id: str, worker_id: str) -> bool:
        if self._holder(room_id) == worker_id:
            del self._leases[room_id]
            return True
        return False

    async def owner(self, room_id: str) -> str | None:
        return self._holder(room_id)

    # --- room events -------------------------------------------------------------------------
    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        for sub in list(self._subs.get(channel, [])):
            result = sub.handler(dict(event))
            if inspect.isawaitable(result):
                task = asyncio.create_task(_await(result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def subscribe(self, channel: str, handler: EventHandler) -> Subscription:
        sub = _MemorySubscription(self, channel, handler)
        self._subs.setdefault(channel, []).append(sub)
        return sub


async def _await(result: Awaitable[None]) -> None:
    try:
        await result
    except Exception:
        log.exception("directory event handler failed")

"""Who serves which room, across worker processes and machines: the RoomDirectory interface.

A room is served by one worker at a time (its owner): the owner holds a lease on the room, renewed
every ``RENEW_S``; a lease not renewed for ``LEASE_TTL_S`` expires, so the rooms of a worker that
died (kill -9, a lost machine) are free again within that time and the next join claims them.
Workers report their load with a heartbeat that expires the same way; a new room goes to the
least-loaded live worker.  Two implementations pass one suite (tests/unit/cluster): MemoryDirectory
(one process, nothing shared: tests, and a single process needs no directory at all) and
RedisDirectory (several processes and machines sharing one Redis).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

LEASE_TTL_S = 3.0  # a dead worker's rooms are free again within this
RENEW_S = 1.0  # how often a worker renews its leases and reports its load (three tries per lease)

EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker as the directory knows it (the last heartbeat)."""

    worker_id: str  # unique for the process' life: "<node>/<index>/<pid>"
    url: str  # its private HTTP base (relayed WebSockets, forwarded REST, /metrics): http://host:port
    rooms: int = 0
    participants: int = 0

    @property
    def load(self) -> float:
        """What placement compares: people cost the most, an empty room counts too (so two new
        rooms go to two workers before anyone has joined either)."""
        return self.participants + 5.0 * self.rooms


class DirectoryUnavailable(Exception):
    """The directory cannot be reached now (Redis down); the caller decides what still works."""


class Subscription(Protocol):
    async def close(self) -> None: ...


class RoomDirectory(Protocol):
    async def start(self) -> None:
        """Connect (idempotent)."""

    async def close(self) -> None:
        """Stop background work and disconnect (leases are not released: see release)."""

    # --- workers -----------------------------------------------------------------------------
    async def heartbeat(self, info: WorkerInfo, ttl_s: float = LEASE_TTL_S) -> None:
        """Register or refresh a worker with its load; it counts as live for ``ttl_s``."""

    async def workers(self) -> list[WorkerInfo]:
        """The live workers (heartbeat not expired), by worker_id."""

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        """One live worker, or None if its heartbeat expired."""

    async def least_loaded(self, *, prefer: str | None = None) -> WorkerInfo | None:
        """The live worker with the least load (ties: ``prefer``, then by id); None if none is live."""

    async def remove_worker(self, worker_id: str) -> int:
        """A worker is known dead (its supervisor saw it exit): its heartbeat and every lease it holds
        go now instead of after the TTL.  Returns how many leases went."""

    # --- room leases -------------------------------------------------------------------------
    async def claim(self, room_id: str, worker_id: str, ttl_s: float = LEASE_TTL_S, *, count: bool = True) -> str:
        """Take the room's lease if nobody holds it (atomic).  Returns the owner after the attempt:
        ``worker_id`` when it has the lease (taken now or already held: then renewed).  ``count``:
        a room taken counts toward the worker's load at once (false for a lease that is no room)."""

    async def renew(self, room_ids: Iterable[str], worker_id: str, ttl_s: float = LEASE_TTL_S) -> list[str]:
        """Extend this worker's leases; a lease that expired meanwhile (Redis restarted, a long
        pause) and is free is taken again.  Returns the rooms another worker holds now (lost)."""

    async def release(self, room_id: str, worker_id: str) -> bool:
        """Give the lease up if this worker holds it; returns whether it did."""

    async def owner(self, room_id: str) -> str | None:
        """The worker holding the room's lease, or None."""

    # --- room events -------------------------------------------------------------------------
    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        """Send a JSON-able event to every subscriber of ``channel`` (this process' included)."""

    async def subscribe(self, channel: str, handler: EventHandler) -> Subscription:
        """Call ``handler`` with each event published on ``channel`` from now on."""


def pick_least_loaded(workers: Iterable[WorkerInfo], prefer: str | None) -> WorkerInfo | None:
    """The placement rule both directories share."""
    return min(workers, key=lambda w: (w.load, w.worker_id != prefer, w.worker_id), default=None)

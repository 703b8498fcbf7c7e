"""Which process sends which pending delivery when several share one outbox table (`urok serve
--workers N`, several machines on one PostgreSQL): a claim per delivery, in the table itself.

Each pending row names the process sending it (``claimed_by``) and until when (``claim_until``).
A process makes a new delivery claimed by itself (the row is written with its claim), renews its
claims every ``lease_s / 4`` (one UPDATE), and writes a row only while it holds the claim.  A
process that dies (kill -9, a lost machine) stops renewing: ``lease_s`` later any other takes its
rows over (one UPDATE that only one claimer can win) and goes on with their attempts and back-off
where the row left them.  A worker started again by the supervisor takes its killed predecessor's
rows at once (``predecessor``: the same node and index, another PID); a graceful stop lets its rows
go at once.  A finished row (delivered, dead) is never claimed again; a retry by hand reopens it for
the process that was asked, once.

Why in the store and not in Redis: the claim sits in the row whose state it guards, so "not finished
and not held" is one condition, a process that lost its claim cannot write over the new holder's
state, machines without Redis on one PostgreSQL are covered, and a Redis restart changes nothing;
a new delivery costs nothing more (its claim is part of the row the outbox writes anyway).

Safety rests on the lease: an attempt starts only while this process's last renewal covers it with
``attempt_s`` to spare (``Lease.ready``), so a stalled process (a long GC pause, the database away)
pauses its attempts instead of racing the process that took its rows over; after a renewal the rows
it no longer holds leave its queues.  Clocks of the machines must agree to well under ``lease_s``.
One process alone (no cluster) claims every pending row when it starts, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

LEASE_MIN_S = 5.0  # renewed every lease/4: one UPDATE per worker at most every 1.25 s


def lease_s_for(timeout_s: float) -> float:
    """A claim's lease: four attempts' time (an attempt in flight is always covered), at least 5 s:
    40 s with the default webhook_timeout_s of 10 s."""
    return max(LEASE_MIN_S, 4.0 * timeout_s)


def predecessor(worker_id: str) -> Callable[[str], bool]:
    """For a worker ``<node>/<index>/<pid>``: is ``claimer`` an earlier worker of the same node and
    index?  The supervisor starts one again only after the last one exited, so that one is dead."""
    slot = worker_id.rsplit("/", 1)[0] + "/"
    return lambda claimer: claimer.startswith(slot) and claimer != worker_id


class Lease:
    """How long this process's claims are surely its own: until its last renewal's start plus
    ``lease_s`` (the database set the same or a later end)."""

    def __init__(self, lease_s: float, *, attempt_s: float, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.lease_s = lease_s
        self.attempt_s = attempt_s  # an attempt started must end within the lease
        self.clock = clock
        self.sleep = sleep
        self.valid_until = 0.0
        self.waits = 0  # attempts that waited for a renewal

    def renewed(self, started_at: float) -> None:
        self.valid_until = max(self.valid_until, started_at + self.lease_s)

    def covers(self) -> bool:
        return self.clock() + self.attempt_s < self.valid_until

    async def ready(self) -> None:
        """Wait until an attempt started now ends within the lease (a renewal came)."""
        if self.covers():
            return
        self.waits += 1
        while not self.covers():
            await self.sleep(0.2)

"""Which process sends which pending delivery when several workers share one outbox table
(`urok serve --workers N`, several machines on one PostgreSQL).

One process alone resumes every pending delivery when it starts (a restart sends what the last run
had not).  With several workers that sent each pending delivery twice: a worker started again after
a kill -9 read the pending rows of the workers still running (their deliveries in flight, their
retries of a receiver that is down) and sent them too, while their own workers went on.  So every
delivery id names the process that made it (its ``origin``: ``WD_<origin>.<random>``), a process
delivers its own, and the pending deliveries of a process that is gone (no heartbeat in the room
directory) are taken over by one live worker: the one that claims the origin's lease
(``__webhooks__:<origin>``, renewed while it lives).  Rows made before origins existed (no ``.``)
count as one dead origin, ``""``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from signaling.cluster.directory import DirectoryUnavailable, RoomDirectory

log = logging.getLogger("urok.webhooks")

ADOPT_S = 10.0  # how often a worker looks for pending deliveries of gone processes
ADOPT_TTL_S = 60.0  # an origin's lease: another worker takes its deliveries over this long after the adopter died
LEASE_PREFIX = "__webhooks__:"

Adopt = Callable[[set[str]], Awaitable[set[str]]]  # origins asked for -> the ones this process delivers now


def random_origin() -> str:
    return secrets.token_hex(5)


def origin_of_worker(worker_id: str) -> str:
    """A worker's origin: short (it is in every delivery id) and known to every other worker."""
    return hashlib.sha1(worker_id.encode()).hexdigest()[:10]


def origin_of(delivery_id: str) -> str:
    """``WD_<origin>.<random>`` -> origin; an id from before origins: ``""``."""
    head, dot, _ = delivery_id.partition(".")
    return head.partition("_")[2] if dot else ""


def delivery_id(origin: str) -> str:
    return f"WD_{origin}.{secrets.token_urlsafe(12)}"


def cluster_adopt(directory: RoomDirectory, worker_id: str) -> Adopt:
    """The adoption rule of one worker among others: an origin whose worker has no heartbeat, if
    this worker gets (or keeps) its lease; nothing while the directory cannot be reached."""
    mine = origin_of_worker(worker_id)

    async def adopt(origins: set[str]) -> set[str]:
        try:
            live = {origin_of_worker(w.worker_id) for w in await directory.workers()}
            taken = set()
            for origin in sorted(origins - live - {mine}):
                holder = await directory.claim(LEASE_PREFIX + origin, worker_id, ADOPT_TTL_S, count=False)
                if holder == worker_id:
                    taken.add(origin)
            return taken
        except DirectoryUnavailable as e:
            log.warning("pending webhook deliveries of gone workers not looked at now: %s", e)
            return set()

    return adopt


async def release_all(directory: RoomDirectory, worker_id: str, origins: set[str]) -> None:
    """A worker stopping gives its adopted origins up (their rows are pending again for the others)."""
    with contextlib.suppress(DirectoryUnavailable):
        for origin in origins:
            await directory.release(LEASE_PREFIX + origin, worker_id)

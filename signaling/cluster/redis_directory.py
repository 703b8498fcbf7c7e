"""The RoomDirectory on Redis (redis-py asyncio): what several workers and machines share.

Keys (one Redis; a prefix keeps two deployments, or two tests, apart):
  <p>:room:<room_id>            the lease: the owner's worker id, with a PX expiry (LEASE_TTL_S)
  <p>:worker:<worker_id>        a hash (url, rooms, participants), expiring like a lease
  <p>:worker:<worker_id>:rooms  the rooms it claimed (so its leases can go at once when it dies)
  <p>:workers                   the set of worker ids (entries whose hash expired are pruned)
Claiming, renewing and releasing are Lua scripts: each is atomic (two workers never both take a free
room).  Nothing here is durable: after a Redis restart the owners' next renewal takes their leases
again and the next heartbeat registers them again, so the lessons go on (the records are in the
store; Redis holds only live coordination)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from signaling.cluster.directory import (
    LEASE_TTL_S,
    DirectoryUnavailable,
    EventHandler,
    Subscription,
    WorkerInfo,
    pick_least_loaded,
)

log = logging.getLogger("urok.cluster")

ROOMS_SET_TTL_MS = 60_000  # a worker's list of claimed rooms outlives its heartbeat (remove_worker reads it)

_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  return ARGV[1]
end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return cur
"""

# KEYS[1]: the worker's rooms set; KEYS[2..]: leases; ARGV: worker id, ttl, rooms-set ttl, room ids
_RENEW = """
local lost = {}
for i = 2, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if not cur then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    redis.call('SADD', KEYS[1], ARGV[i + 2])
  elseif cur == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  else
    table.insert(lost, ARGV[i + 2])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return lost
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS: rooms set, worker hash, workers set; ARGV: worker id, lease key prefix
_REMOVE_WORKER = """
local n = 0
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[2] .. room
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return n
"""


class _RedisSubscription:
    def __init__(self, directory: RedisDirectory, channel: str, handler: EventHandler) -> None:
        self._directory, self.channel, self.handler = directory, channel, handler

    async def close(self) -> None:
        await self._directory._unsubscribe(self)


class RedisDirectory:
    def __init__(self, url: str, *, prefix: str = "urok", timeout_s: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        # short timeouts: a call on the join path must fail fast when Redis is away (the caller
        # then serves what it can from memory), not hang a join for the OS's TCP timeout
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True)
        self._claim = self._redis.register_script(_CLAIM)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._remove = self._redis.register_script(_REMOVE_WORKER)
        self._subs: dict[str, list[_RedisSubscription]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as e:
            raise DirectoryUnavailable(f"Redis: {e}") from e

    async def start(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 6
            self._pubsub = None
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # --- workers -----------------------------------------------------------------------------
    async def heartbeat(self, info: WorkerInfo, ttl_s: float = LEASE_TTL_S) -> None:
        key = self._k("worker", info.worker_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"url": info.url, "rooms": info.rooms, "participants": info.participants})
        pipe.pexpire(key, int(ttl_s * 1000))
        pipe.sadd(self._k("workers"), info.worker_id)
        pipe.pexpire(self._k("worker", info.worker_id, "rooms"), ROOMS_SET_TTL_MS)
        await self._call(pipe.execute())

    async def _read_workers(self, ids: list[str]) -> dict[str, WorkerInfo]:
        if not ids:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for wid in ids:
            pipe.hgetall(self._k("worker", wid))
        rows = await self._call(pipe.execute())
        out: dict[str, WorkerInfo] = {}
        for wid, row in zip(ids, rows, strict=True):
            if row and "url" in row:
                out[wid] = WorkerInfo(wid, row["url"], int(row.get("rooms", 0)), int(row.get("participants", 0)))
        return out

    async def workers(self) -> list[WorkerInfo]:
        ids = sorted(await self._call(self._redis.smembers(self._k("workers"))))
        live = await self._read_workers(ids)
        gone = [w for w in ids if w not in live]
        if gone:  # heartbeats that expired: the worker died or was stopped
            await self._call(self._redis.srem(self._k("workers"), *gone))
        return [live[w] for w in ids if w in live]

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        return (await self._read_workers([worker_id])).get(worker_id)

    async def least_loaded(self, *, prefer: str | None = None) -> WorkerInfo | None:
        return pick_least_loaded(await self.workers(), prefer)

    async def remove_worker(self, worker_id: str) -> int:
        n = await self._call(self._remove(
            keys=[self._k("worker", worker_id, "rooms"), self._k("worker", worker_id), self._k("workers")],
            args=[worker_id, self._k("room", "")]))
        return int(n)

    # --- room leases -------------------------------------------------------------------------
    async def claim(self, room_id: str, worker_id: str, ttl_s: float = LEASE_TTL_S, *, count: bool = True) -> str:
        owner = await self._call(self._claim(
            keys=[self._k("room", room_id), self._k("worker", worker_id), self._k("worker", worker_id, "rooms")],
            args=[worker_id, int(ttl_s * 1000), room_id, ROOMS_SET_TTL_MS, "1" if count else "0"]))
        return str(owner)

    async def renew(self, room_ids: Iterable[str], worker_id: str, ttl_s: float = LEASE_TTL_S) -> list[str]:
        ids = list(room_ids)
        if not ids:
            return []
        lost = await self._call(self._renew(
            keys=[self._k("worker", worker_id, "rooms"), *(self._k("room", r) for r in ids)],
            args=[worker_id, int(ttl_s * 1000), ROOMS_SET_TTL_MS, *ids]))
        return [str(r) for r in lost]

    async def release(self, room_id: str, worker_id: str) -> bool:
        done = await self._call(self._release(
            keys=[self._k("room", room_id), self._k("worker", worker_id, "rooms")], args=[worker_id, room_id]))
        return bool(done)

    async def owner(self, room_id: str) -> str | None:
        owner = await self._call(self._redis.get(self._k("room", room_id)))
        return None if owner is None else str(owner)

    # --- room events -------------------------------------------------------------------------
    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        await self._call(self._redis.publish(self._k("events", channel), json.dumps(event)))

    async def subscribe(self, channel: str, handler: EventHandler) -> Subscription:
        sub = _RedisSubscription(self, channel, handler)
        first = channel not in self._subs
        self._subs.setdefault(channel, []).append(sub)
        if self._reader is None:
            self._subscribed.clear()
            self._reader = asyncio.create_task(self._read_events(), name="urok-directory-events")
            await asyncio.wait_for(self._subscribed.wait(), 5.0)  # from now on, as the interface says
        elif first and self._pubsub is not None:
            await self._call(self._pubsub.subscribe(self._k("events", channel)))
        return sub

    async def _unsubscribe(self, sub: _RedisSubscription) -> None:
        subs = self._subs.get(sub.channel, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            self._subs.pop(sub.channel, None)
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self._k("events", sub.channel))

    async def _read_events(self) -> None:
        """One pub/sub connection for every channel; when Redis goes away it connects again and
        subscribes again (what was published meanwhile is lost: events are hints, not records)."""
        pause = 0.2
        while True:
            try:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # a pub/sub connection needs one channel at least: "-" when nobody is subscribed yet
                channels = [self._k("events", c) for c in self._subs] or [self._k("events", "-")]
                await self._pubsub.subscribe(*channels)
                self._subscribed.set()
                pause = 0.2
                while True:
                    msg = await self._pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    channel = str(msg["channel"])[len(self._k("events", "")):]
                    try:
                        event = json.loads(msg["data"])
                    except ValueError:
                        continue
                    for sub in list(self._subs.get(channel, [])):
                        self._deliver(sub, event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                log.warning("directory events: Redis unreachable (%s); subscribing again", e)
            except Exception:
                log.exception("directory events: the reader failed; subscribing again")
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 6
                self._pubsub = None
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)

    def _deliver(self, sub: _RedisSubscription, event: dict[str, Any]) -> None:
        try:
            result = sub.handler(event)
        except Exception:
            log.exception("directory event handler failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.create_task(_await(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _await(result: Any) -> None:
    try:
        await result
    except Exception:
        log.exception("directory event handler failed")

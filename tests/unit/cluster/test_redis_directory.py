"""The Redis directory through a Redis restart (every key gone): owners take their leases again on
their next renewal, workers register again, events flow again; while Redis is down, calls fail
fast with DirectoryUnavailable instead of hanging."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from signaling.cluster.directory import DirectoryUnavailable, WorkerInfo
from signaling.cluster.redis_directory import RedisDirectory
from tests.redis_server import SKIP_REASON, RedisServer


async def test_redis_restart_is_survived(redis_server: RedisServer | None) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    d = RedisDirectory(redis_server.url, prefix="restart")
    await d.start()
    got: list[dict[str, Any]] = []
    try:
        await d.subscribe("rooms", got.append)
        await d.heartbeat(WorkerInfo("A", "http://a"))
        assert await d.claim("R1", "A") == "A"
        redis_server.stop()
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable):
            await d.owner("R1")
        assert time.monotonic() - started < 5  # fails fast: the join path decides what to do
        await asyncio.to_thread(redis_server.start)
        assert await d.owner("R1") is None  # a fresh Redis: nothing
        for _ in range(50):  # the client connects again by itself
            try:
                assert await d.renew(["R1"], "A") == []
                break
            except DirectoryUnavailable:
                await asyncio.sleep(0.1)
        await d.heartbeat(WorkerInfo("A", "http://a"))
        assert await d.owner("R1") == "A"
        assert [w.worker_id for w in await d.workers()] == ["A"]
        for _ in range(100):  # the event reader subscribes again (within its back-off)
            await d.publish("rooms", {"n": 1})
            if got:
                break
            await asyncio.sleep(0.1)
        assert got and got[0] == {"n": 1}
    finally:
        await d.close()

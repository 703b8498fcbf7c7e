"""Redis restarted during a lesson (`urok serve --workers 2`): every key is gone, the lesson goes on
(signalling does not pass through Redis: a relayed participant keeps chatting while it is down),
the owner takes its lease again and the workers register again, and a new join of the same lesson,
whichever worker it reaches, lands in the same room."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.rooms import Role
from tests.conftest import WsClient
from tests.e2e.test_workers import Cluster, connect, new_room, token
from tests.redis_server import SKIP_REASON, RedisServer


async def test_a_lesson_goes_on_through_a_redis_restart(tmp_path: Path, redis_server: RedisServer | None,
                                                        http: aiohttp.ClientSession) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    cluster = Cluster(tmp_path / "data", redis_server.url)
    clients: list[WsClient] = []
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Химия")
        teacher = await connect(http, cluster.private(0), token(room, "teacher", Role.HOST))
        clients.append(teacher)
        await teacher.event("welcome")
        anna = await connect(http, cluster.private(1), token(room, "anna"))  # relayed to worker 0
        clients.append(anna)
        await anna.event("welcome")

        redis_server.stop()
        sent = await anna.request("chat_send", text="Redis лежит")
        assert sent["ok"], sent
        assert (await teacher.event("chat_message", timeout=10))["message"]["text"] == "Redis лежит"
        # while Redis is away: a join reaching the worker serving the lesson is served; one reaching
        # the other worker cannot be placed and is told to try again (1013), and the page retries
        carl = await connect(http, cluster.private(0), token(room, "carl"))
        clients.append(carl)
        await carl.event("welcome", timeout=10)
        dora = await connect(http, cluster.private(1), token(room, "dora"))
        clients.append(dora)
        await asyncio.wait_for(dora.closed.wait(), 10)
        assert dora.ws.close_code == 1013
        assert [e["error"]["code"] for e in dora.events if e["event"] == "error"] == ["try_again"]
        await asyncio.sleep(1.0)  # a heartbeat or two fail meanwhile
        await asyncio.to_thread(redis_server.start)  # empty: every lease and heartbeat is gone

        r = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            for _ in range(100):  # the owner's next renewal takes the lease again
                owner = await r.get(f"urok:room:{room}")
                workers = await r.smembers("urok:workers")
                if owner is not None and len(workers) == 2:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the directory did not recover: owner {owner}, workers {workers}")
            assert owner.split("/")[1] == "0"  # still worker 0's
        finally:
            await r.aclose()
        assert not any(c.closed.is_set() for c in (teacher, anna, carl))  # nobody was dropped
        # a new join through the other worker is relayed to the same room
        boris = await connect(http, cluster.private(1), token(room, "boris"))
        clients.append(boris)
        welcome = await boris.event("welcome")
        await teacher.wait_for(lambda: any(
            e["event"] == "participant_joined" and e["participant"]["participant_id"] == welcome["participant_id"]
            for e in teacher.events), timeout=10)
        assert await cluster.rooms_by_worker(http) == [1, 0]
        assert (await anna.request("chat_send", text="Redis снова тут"))["ok"]
        await boris.event("chat_message", timeout=10)
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()

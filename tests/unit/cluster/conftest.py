"""Every RoomDirectory under one fixture: the memory one, and the Redis one on a throwaway
redis-server this module starts (tests/redis_server.py; skipped, saying why, without the binary)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from signaling.cluster.directory import RoomDirectory
from signaling.cluster.memory_directory import MemoryDirectory
from signaling.cluster.redis_directory import RedisDirectory
from tests.redis_server import SKIP_REASON, RedisServer, redis_server_running

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    with redis_server_running() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def directory(request: pytest.FixtureRequest, redis_server: RedisServer | None) -> AsyncIterator[RoomDirectory]:
    d: RoomDirectory
    if request.param == "memory":
        d = MemoryDirectory()
    else:
        if redis_server is None:
            pytest.skip(SKIP_REASON)
        d = RedisDirectory(redis_server.url, prefix=f"t{next(_prefixes)}")
    await d.start()
    yield d
    await d.close()

"""Fixtures the end-to-end tests share: an aiohttp client session, and a throwaway redis-server per
test module (the cluster tests: `urok serve --workers N` finds its rooms through it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.redis_server import RedisServer, redis_server_running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer | None]:
    """None without the redis-server binary (the test skips with tests.redis_server.SKIP_REASON)."""
    with redis_server_running() as server:
        yield server

"""Media with several workers: a participant whose WebSocket reached the worker that does not serve
the room (relayed) publishes and receives media with the teacher; the ICE candidates name the
serving worker's own UDP port (rtc_udp_port + its index), so media goes straight there."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import Cluster, connect, new_room, token
from tests.redis_server import SKIP_REASON, RedisServer, redis_server_running


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer | None]:
    with redis_server_running() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def free_udp_pair() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two free UDP ports")


async def test_a_relayed_participant_sends_and_receives_media(tmp_path: Path, redis_server: RedisServer | None,
                                                              http: aiohttp.ClientSession) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    udp = free_udp_pair()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RTC_UDP_PORT=str(udp))
    clients: list[RtcClient] = []
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Музыка")
        teacher = RtcClient(await connect(http, cluster.private(1), token(room, "teacher", Role.HOST)))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        assert await cluster.rooms_by_worker(http) == [0, 1]  # worker 1 serves it: UDP port udp + 1
        anna = RtcClient(await connect(http, cluster.private(0), token(room, "anna")))  # relayed
        clients.append(anna)
        await anna.ws.event("welcome")
        answer = await teacher.publish(video=True, audio=True)
        assert {int(p) for p in re.findall(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+)", answer["sdp"], re.M)} == {udp + 1}
        assert await wait_until(lambda: anna.frames("video") >= 30 and anna.frames("audio") >= 20, 30), (
            anna.frames("video"), anna.frames("audio"))
        offer = next(e for e in anna.ws.events if e["event"] == "subscriber_offer")
        assert {int(p) for p in re.findall(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+)", offer["sdp"], re.M)} == {udp + 1}
        await anna.publish(video=False, audio=True)
        assert await wait_until(lambda: teacher.frames("audio") >= 20, 30), teacher.frames("audio")
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()

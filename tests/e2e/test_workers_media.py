"""Media with several workers: a participant whose WebSocket reached the worker that does not serve
the room (relayed) publishes and receives media with the teacher; the ICE candidates name the
serving worker's own UDP port (rtc_udp_port + its index), so media goes straight there."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import Cluster, connect, new_room, token
from tests.e2e.test_workers_failover import rejoin
from tests.redis_server import SKIP_REASON, RedisServer

CANDIDATE_PORT = re.compile(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+)", re.M)


def candidate_ports(sdp: str) -> set[int]:
    """The UDP ports an SDP's ICE candidates name (which worker carries the connection)."""
    return {int(p) for p in CANDIDATE_PORT.findall(sdp)}


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
        assert candidate_ports(answer["sdp"]) == {udp + 1}
        assert await wait_until(lambda: anna.frames("video") >= 30 and anna.frames("audio") >= 20, 30), (
            anna.frames("video"), anna.frames("audio"))
        offer = next(e for e in anna.ws.events if e["event"] == "subscriber_offer")
        assert candidate_ports(offer["sdp"]) == {udp + 1}
        await anna.publish(video=False, audio=True)
        assert await wait_until(lambda: teacher.frames("audio") >= 20, 30), teacher.frames("audio")
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()


async def test_media_is_back_after_kill_9_of_the_worker(tmp_path: Path, redis_server: RedisServer | None,
                                                        http: aiohttp.ClientSession) -> None:
    """The time from kill -9 of the serving worker to every participant receiving the teacher's
    video again: reconnect (same token, the page's first back-off step), the teacher publishes
    again, everyone's subscriber connection is offered anew."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    students = 3
    cluster = Cluster(tmp_path / "data", redis_server.url)
    clients: list[RtcClient] = []
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Физкультура")
        names = ["teacher", *(f"s{i}" for i in range(students))]
        toks = {n: token(room, n, Role.HOST if n == "teacher" else Role.PARTICIPANT) for n in names}
        teacher = RtcClient(await connect(http, cluster.base, toks["teacher"]))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        for n in names[1:]:
            c = RtcClient(await connect(http, cluster.base, toks[n]))
            clients.append(c)
            await c.ws.event("welcome")
        await teacher.publish(video=True, audio=False)
        assert await wait_until(lambda: all(c.frames("video") >= 10 for c in clients[1:]), 30)
        await asyncio.sleep(0.5)  # the seats are written
        owner = (await cluster.rooms_by_worker(http)).index(1)
        os.kill(cluster.worker_pids()[owner], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        old, clients = clients, []
        for c in old:
            await asyncio.wait_for(c.ws.closed.wait(), 10)
            c.expect_refused_answer = True  # a renegotiation cut by the kill is not this test's failure
            c.negotiation_errors.clear()
            await c.close()

        async def back(name: str) -> RtcClient:
            await asyncio.sleep(random.uniform(0.25, 0.5))
            ws, _ = await rejoin(http, cluster.base, toks[name], killed_at + 20)
            return RtcClient(ws)

        again = await asyncio.gather(*(back(n) for n in names))
        clients = list(again)
        await clients[0].publish(video=True, audio=False)
        got: dict[int, float] = {}

        def all_receive() -> bool:
            for i, c in enumerate(clients[1:]):
                if i not in got and c.frames("video") >= 1:
                    got[i] = time.monotonic() - killed_at
            return len(got) == students

        assert await wait_until(all_receive, 20), got
        print(f"kill -9 -> video again at {students} participants: "
              + ", ".join(f"{t:.2f} s" for t in sorted(got.values())))
        assert max(got.values()) < 8.0
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()

"""One room across two workers (issue 19): with span_after = 1, the room's owner keeps the first
participant's subscriber connection and places the next ones' on the other worker, fed over a
pipe (signaling/cluster/span.py, edge_link.py, edge_room.py).  Through `urok serve --workers 2`,
real Redis, aiortc clients: the ICE candidates of each connection name the worker that carries it
(rtc_udp_port + its index), so the packets really cross the pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from signaling.cluster.edge_messages import EDGE_PATH
from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import ADMIN, TOKENS, Cluster, connect, new_room, token
from tests.e2e.test_workers_failover import rejoin
from tests.e2e.test_workers_media import candidate_ports, free_udp_pair
from tests.redis_server import SKIP_REASON, RedisServer

pytestmark = pytest.mark.timeout(150)


def last_offer(client: RtcClient) -> str:
    return str(next(e for e in reversed(client.ws.events) if e["event"] == "subscriber_offer")["sdp"])


async def test_a_room_spans_two_workers(tmp_path: Path, redis_server: RedisServer | None,
                                        http: aiohttp.ClientSession) -> None:
    """The teacher receives from the owner, the students from the other worker; everyone hears and
    sees everyone; a track that goes, a mute, a student who leaves: all cross the pipe."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    udp = free_udp_pair()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RTC_UDP_PORT=str(udp), UROK_SPAN_AFTER="1")
    clients: list[RtcClient] = []
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Астрономия")
        # the edge endpoint takes only the cluster's own tokens (signed with the api secret)
        for headers, status in (({}, 401), ({"Authorization": f"Bearer {token(room, 'eve')}"}, 401),
                                (ADMIN, 403)):
            async with http.get(cluster.private(0) + EDGE_PATH, headers=headers) as r:
                assert r.status == status, (headers, r.status)
        cluster_token = TOKENS.mint_admin(subject="cluster:test", ttl_s=60)
        async with http.ws_connect(cluster.private(0).replace("http", "ws") + EDGE_PATH,
                                   headers={"Authorization": f"Bearer {cluster_token}"}) as ws:
            await ws.send_json({"id": 1, "op": "consume", "sub": "x", "producer_id": "p"})
            assert (await ws.receive_json(timeout=5))["error"]["code"] == "invalid_message"  # open comes first
        teacher = RtcClient(await connect(http, cluster.private(0), token(room, "teacher", Role.HOST)))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        owner = (await cluster.rooms_by_worker(http)).index(1)
        edge = 1 - owner
        answer = await teacher.publish(video=True, audio=True)
        assert candidate_ports(answer["sdp"]) == {udp + owner}
        students = []
        for name in ("anna", "boris"):
            c = RtcClient(await connect(http, cluster.private(edge), token(room, name)))
            clients.append(c)
            students.append(c)
            await c.ws.event("welcome")
        anna, boris = students
        for c in students:
            assert await wait_until(lambda c=c: c.frames("video") >= 20 and c.frames("audio") >= 20, 40), (
                c.frames("video"), c.frames("audio"))
            assert candidate_ports(last_offer(c)) == {udp + edge}  # what they receive leaves from the edge
        # anna publishes (to the owner, where the room's tracks are): the teacher (owner) and boris
        # (edge, over the pipe) both hear her
        anna_answer = await anna.publish(video=False, audio=True)
        assert candidate_ports(anna_answer["sdp"]) == {udp + owner}
        assert await wait_until(lambda: teacher.frames("audio") >= 20 and boris.frames("audio") >= 40, 30), (
            teacher.frames("audio"), boris.frames("audio"))
        # the owner's REST sees one room with three people whichever worker answers
        for w in (0, 1):
            async with http.get(f"{cluster.private(w)}/v1/rooms/{room}/participants",
                                headers=ADMIN) as r:
                assert r.status == 200, await r.text()
                assert len((await r.json())["participants"]) == 3
        # a host mutes anna's microphone: boris, on the edge, stops getting her packets
        await teacher.ws.request("mute", participant_id=anna.participant_id, source="microphone", muted=True)
        await asyncio.sleep(1.0)
        before = boris.frames("audio")
        await asyncio.sleep(1.5)
        heard_while_muted = boris.frames("audio") - before
        # the teacher's audio keeps coming (1.5 s is ~75 frames), anna's not: at most the teacher's
        assert heard_while_muted <= 110, heard_while_muted
        # anna leaves: her edge connection goes, boris still receives the teacher
        await anna.close()
        clients.remove(anna)
        v = boris.frames("video")
        assert await wait_until(lambda: boris.frames("video") >= v + 20, 20)
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()


async def test_a_student_is_back_after_kill_9_of_the_edge(tmp_path: Path, redis_server: RedisServer | None,
                                                          http: aiohttp.ClientSession) -> None:
    """The worker carrying a student's subscriber connection is killed: the owner tells the
    student (media_failed, the link to the edge broke), the client comes back with the same token
    and receives from the surviving worker (the owner); the lesson itself never stopped."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    udp = free_udp_pair()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RTC_UDP_PORT=str(udp), UROK_SPAN_AFTER="1")
    clients: list[RtcClient] = []
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Черчение")
        teacher = RtcClient(await connect(http, cluster.private(0), token(room, "teacher", Role.HOST)))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        owner = (await cluster.rooms_by_worker(http)).index(1)
        edge = 1 - owner
        await teacher.publish(video=True, audio=False)
        tok = token(room, "anna")
        anna = RtcClient(await connect(http, cluster.private(owner), tok))
        clients.append(anna)
        await anna.ws.event("welcome")
        assert await wait_until(lambda: anna.frames("video") >= 10, 40), anna.frames("video")
        assert candidate_ports(last_offer(anna)) == {udp + edge}
        os.kill(cluster.worker_pids()[edge], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        failed = await anna.ws.event("media_failed", timeout=15)
        assert failed["target"] == "subscriber"
        anna.expect_refused_answer = True
        await anna.close()
        clients.remove(anna)
        ws, _ = await rejoin(http, cluster.private(owner), tok, killed_at + 20)
        anna = RtcClient(ws)
        clients.append(anna)
        assert await wait_until(lambda: anna.frames("video") >= 10, 20), anna.frames("video")
        print(f"kill -9 of the edge -> video again after {time.monotonic() - killed_at:.2f} s")
        assert candidate_ports(last_offer(anna)) == {udp + owner}  # the edge is gone: served by the owner
        assert teacher.ws.closed.is_set() is False  # the teacher's lesson went on throughout
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()

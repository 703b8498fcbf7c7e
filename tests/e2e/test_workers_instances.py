"""Two `urok serve` instances (two "machines" on loopback: each its own port, one worker each)
sharing one Redis and one PostgreSQL: a join link works whichever instance it reaches (one room,
participants on both, in the same lesson); the instance serving the lesson is killed (kill -9, no
supervisor to drop its leases: they expire) and its participants continue on the other instance,
same seats, same chat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.rooms import Role
from tests.conftest import WsClient
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import ADMIN, UROK, connect, free_ports, token
from tests.e2e.test_workers_failover import rejoin
from tests.e2e.test_workers_media import candidate_ports
from tests.pg_cluster import SKIP_REASON as PG_SKIP
from tests.pg_cluster import PgCluster, pg_cluster_running
from tests.redis_server import SKIP_REASON, RedisServer


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


class Instance:
    """One `urok serve --dev` (one worker, in-process) on a shared Redis and PostgreSQL."""

    def __init__(self, redis_url: str, database_url: str, log: Path, **env: str) -> None:
        self.port = free_ports(2)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "UROK_RTC_UDP_PORT": "0", "UROK_DEMO_ROOM": "false", "UROK_STORE": "postgres",
                    "UROK_DATABASE_URL": database_url, "UROK_REDIS_URL": redis_url, "UROK_WORKERS": "1", **env}
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        err = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(UROK), "serve", "--dev", "--port", str(self.port), env=self.env,
                stdout=asyncio.subprocess.DEVNULL, stderr=err)
        finally:
            os.close(err)
        for _ in range(600):
            assert self.proc.returncode is None, self.log.read_text()[-2000:]
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{self.port + 1}/healthz") as r:  # its private port
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError("the instance did not start")

    async def rooms(self, http: aiohttp.ClientSession) -> int:
        async with http.get(self.base + "/healthz") as r:
            n: int = (await r.json())["rooms"]
            return n

    async def kill9(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # the PID this test started
            await self.proc.wait()


async def test_two_instances_share_a_lesson_and_survive_losing_one(
        tmp_path: Path, redis_server: RedisServer | None, pg_cluster: PgCluster | None,
        http: aiohttp.ClientSession) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    if pg_cluster is None:
        pytest.skip(PG_SKIP)
    database_url = await pg_cluster.new_database()
    a = Instance(redis_server.url, database_url, tmp_path / "a.log")
    b = Instance(redis_server.url, database_url, tmp_path / "b.log")
    clients: list[WsClient] = []
    try:
        await a.start(http)
        await b.start(http)
        async with http.post(b.base + "/v1/rooms", json={"name": "Литература"}, headers=ADMIN) as r:
            assert r.status in (200, 201), await r.text()
            room = (await r.json())["room_id"]
        toks = {"teacher": token(room, "teacher", Role.HOST), "anna": token(room, "anna")}
        teacher = await connect(http, a.base, toks["teacher"])  # the link reached machine A
        clients.append(teacher)
        seats = {"teacher": (await teacher.event("welcome"))["participant_id"]}
        assert (await a.rooms(http), await b.rooms(http)) == (1, 0)
        anna = await connect(http, b.base, toks["anna"])  # hers reached machine B: relayed to A
        clients.append(anna)
        seats["anna"] = (await anna.event("welcome"))["participant_id"]
        sent = await anna.request("chat_send", text="с другой машины")
        assert sent["ok"], sent
        assert (await teacher.event("chat_message"))["message"]["text"] == "с другой машины"
        await asyncio.sleep(0.5)  # the chat's write (a batch gap is 50 ms)

        await a.kill9()  # machine A is gone: nobody drops its leases, they expire (3 s)
        killed_at = time.monotonic()
        await asyncio.wait_for(anna.closed.wait(), 10)
        assert anna.ws.close_code == 1012
        for c in clients:
            await c.close()
        clients.clear()
        back: dict[str, dict[str, Any]] = {}
        for name in ("teacher", "anna"):  # both reconnect; only B answers now
            c, back[name] = await rejoin(http, b.base, toks[name], killed_at + 20)
            clients.append(c)
        took = time.monotonic() - killed_at
        print(f"instance killed -> both participants welcomed by the other: {took:.2f} s")
        assert took < 8.0, f"back after {took:.2f} s (lease 3 s)"
        assert {n: w["participant_id"] for n, w in back.items()} == seats
        assert back["teacher"]["you"]["role"] == "host"
        history = (await clients[1].event("chat_history"))["messages"]
        assert [m["text"] for m in history] == ["с другой машины"]
        assert await b.rooms(http) == 1
    finally:
        for c in clients:
            await c.close()
        await a.kill9()
        await b.kill9()


async def test_one_room_spans_two_instances_over_an_srtp_pipe(
        tmp_path: Path, redis_server: RedisServer | None, pg_cluster: PgCluster | None,
        http: aiohttp.ClientSession) -> None:
    """span_after = 1: the student's subscriber connection is on the other "machine", which gets
    the teacher's tracks over a pipe with SRTP (two machines: signaling/cluster/span.py)."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    if pg_cluster is None:
        pytest.skip(PG_SKIP)
    database_url = await pg_cluster.new_database()
    a = Instance(redis_server.url, database_url, tmp_path / "a.log", UROK_SPAN_AFTER="1")
    b = Instance(redis_server.url, database_url, tmp_path / "b.log", UROK_SPAN_AFTER="1")
    clients: list[RtcClient] = []
    try:
        await a.start(http)
        await b.start(http)
        async with http.post(a.base + "/v1/rooms", json={"name": "География"}, headers=ADMIN) as r:
            assert r.status in (200, 201), await r.text()
            room = (await r.json())["room_id"]
        teacher = RtcClient(await connect(http, a.base, token(room, "teacher", Role.HOST)))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        answer = await teacher.publish(video=True, audio=True)
        anna = RtcClient(await connect(http, b.base, token(room, "anna")))
        clients.append(anna)
        await anna.ws.event("welcome")
        assert await wait_until(lambda: anna.frames("video") >= 20 and anna.frames("audio") >= 20, 40), (
            anna.frames("video"), anna.frames("audio"))
        offer = next(e for e in reversed(anna.ws.events) if e["event"] == "subscriber_offer")["sdp"]
        owner_ports, edge_ports = candidate_ports(answer["sdp"]), candidate_ports(offer)
        assert owner_ports and edge_ports and not owner_ports & edge_ports  # received from the other machine
        logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
        assert logs.count("spans to worker") == 1, logs[-3000:]
        assert "(pipe srtp)" in logs
    finally:
        for c in clients:
            await c.close()
        await a.kill9()
        await b.kill9()

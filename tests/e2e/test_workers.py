"""`urok serve --workers 2` with a real Redis (and SQLite shared by the two workers): two rooms
land on two workers (least-loaded placement); a participant who reaches the worker that does not
serve the room is relayed to the one that does and is in the same room (sees the teacher, chats);
a room's REST is answered by its worker whichever worker is asked; /metrics sums both workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling.auth import TokenService
from signaling.rooms import Role
from tests.conftest import WsClient
from tests.redis_server import SKIP_REASON, RedisServer

UROK = Path(sys.executable).with_name("urok")
TOKENS = TokenService("devkey", "devsecret")
ADMIN = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=3600)}


def _ports_free(first: int, count: int) -> bool:
    for port in range(first, first + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int) -> int:
    """A port with the next ``count - 1`` free too (the public port, then each worker's private one),
    below the kernel's ephemeral range: a run taken from it (bind to port 0) was found taken again
    before the server bound its private port (an outgoing connection of another test got it:
    "address already in use" in CI)."""
    low, _ = _ephemeral_range()
    top = max(10_000 + count, low - count)
    for _ in range(400):
        port = random.randrange(10_000, top)
        if _ports_free(port, count):
            return port
    raise AssertionError("no run of free ports")


class Cluster:
    """One `urok serve --dev --workers N` (a supervisor and its workers) on a data dir and a Redis."""

    def __init__(self, data_dir: Path, redis_url: str, *, workers: int = 2, **env: str) -> None:
        self.data_dir, self.redis_url, self.workers, self.env = data_dir, redis_url, workers, env
        self.port = free_ports(workers + 1)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    def private(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port + 1 + index}"

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = {**os.environ, "UROK_RTC_UDP_PORT": "0", "UROK_DEMO_ROOM": "false", "UROK_STORE": "sqlite",
               "UROK_DATA_DIR": str(self.data_dir), "UROK_REDIS_URL": self.redis_url, **self.env}
        log = os.open(self.data_dir.parent / "serve.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(UROK), "serve", "--dev", "--port", str(self.port), "--workers", str(self.workers), env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log)
        finally:
            os.close(log)
        await self.wait_ready(http, timeout=60)

    async def wait_ready(self, http: aiohttp.ClientSession, *, timeout: float) -> None:
        """Every worker answers on its private port (up to ``timeout`` s on a loaded machine)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for i in range(self.workers):
            while True:
                assert self.proc is not None and self.proc.returncode is None, "the server exited"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.private(i) + "/healthz") as r:
                        if r.status == 200:
                            break
                assert loop.time() < deadline, f"worker {i} did not start: {self.log()[-2000:]}"
                await asyncio.sleep(0.1)

    def log(self) -> str:
        path = self.data_dir.parent / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_pids(self) -> dict[int, int]:
        """index -> PID of the supervisor's workers (its children, read from /proc)."""
        assert self.proc is not None
        out: dict[int, int] = {}
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in map(int, children):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"signaling.cluster.worker" in argv:
                    out[int(argv[argv.index(b"signaling.cluster.worker") + 1])] = pid
        return out

    async def rooms_by_worker(self, http: aiohttp.ClientSession) -> list[int]:
        counts = []
        for i in range(self.workers):
            async with http.get(self.private(i) + "/healthz") as r:
                counts.append((await r.json())["rooms"])
        return counts

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        pids = self.worker_pids()
        self.proc.send_signal(signal.SIGTERM)  # the supervisor this test started stops its workers
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            for pid in [*pids.values(), self.proc.pid]:  # PIDs this test started (and their children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await self.proc.wait()


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer | None,
                  http: aiohttp.ClientSession) -> AsyncIterator[Cluster]:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    c = Cluster(tmp_path / "data", redis_server.url)
    try:
        await c.start(http)
        yield c
    finally:
        await c.stop()


def token(room_id: str, identity: str, role: Role = Role.PARTICIPANT) -> str:
    return TOKENS.mint_access(identity=identity, name=identity.title(), room_id=room_id, role=role,
                              registered=True, ttl_s=600)


async def connect(http: aiohttp.ClientSession, base: str, tok: str) -> WsClient:
    ws = await http.ws_connect(base.replace("http", "ws", 1) + f"/v1/rtc?token={tok}", heartbeat=None)
    return WsClient(ws)


async def new_room(http: aiohttp.ClientSession, base: str, name: str) -> str:
    async with http.post(base + "/v1/rooms", json={"name": name}, headers=ADMIN) as r:
        assert r.status in (200, 201), await r.text()
        room_id: str = (await r.json())["room_id"]
        return room_id


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


async def test_rooms_spread_and_joins_are_relayed_to_the_owner(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    clients: list[WsClient] = []
    try:
        physics, maths = await new_room(http, cluster.base, "Физика"), await new_room(http, cluster.base, "Алгебра")
        teacher = await connect(http, cluster.base, token(physics, "teacher", Role.HOST))
        clients.append(teacher)
        await teacher.event("welcome")
        owner = (await cluster.rooms_by_worker(http)).index(1)
        other = 1 - owner
        # the second room goes to the other worker, whichever worker the kernel gave the socket to
        second = await connect(http, cluster.base, token(maths, "teacher2", Role.HOST))
        clients.append(second)
        await second.event("welcome")
        assert await cluster.rooms_by_worker(http) == [1, 1]

        # a student who reaches the worker that does not serve physics: relayed, in the same room
        anna = await connect(http, cluster.private(other), token(physics, "anna"))
        clients.append(anna)
        welcome: dict[str, Any] = await anna.event("welcome")
        joined = await teacher.event("participant_joined")
        assert joined["participant"]["participant_id"] == welcome["participant_id"]
        sent = await anna.request("chat_send", text="здравствуйте")
        assert sent["ok"], sent
        chat = await teacher.event("chat_message")
        assert chat["message"]["text"] == "здравствуйте"
        assert await cluster.rooms_by_worker(http) == [1, 1]  # still one physics, on its owner

        # the room's REST, asked of the other worker, is answered by the owner (its live state)
        async with http.get(cluster.private(other) + f"/v1/rooms/{physics}/participants", headers=ADMIN) as r:
            assert r.status == 200, await r.text()
            assert r.headers["X-Urok-Served-By"] == cluster.private(owner)
            body = await r.json()
            assert sorted(p["identity"] for p in body["participants"]) == ["anna", "teacher"]
        # a webhook registered through one worker: the other worker's rooms deliver to it at once
        # (a cluster event makes it read the registrations again; else within its 10 s refresh)
        got: list[dict[str, Any]] = []
        arrived = asyncio.Event()

        async def hook(request: web.Request) -> web.Response:
            got.append(json.loads(await request.read()))  # application/webhook+json
            arrived.set()
            return web.Response(status=204)

        receiver = web.Application()
        receiver.router.add_post("/hook", hook)
        runner = web.AppRunner(receiver, access_log=None)
        await runner.setup()
        hook_port = free_ports(1)
        await web.TCPSite(runner, "127.0.0.1", hook_port).start()
        try:
            async with http.post(cluster.private(owner) + "/v1/webhooks", headers=ADMIN,
                                 json={"url": f"http://127.0.0.1:{hook_port}/hook", "room_id": maths}) as r:
                assert r.status == 201, await r.text()
                wid = (await r.json())["webhook_id"]
            registered = time.monotonic()
            while True:  # the other worker knows it (a cluster event), well before its 10 s refresh
                async with http.get(cluster.private(other) + "/v1/webhooks", headers=ADMIN) as r:
                    if any(w["webhook_id"] == wid for w in (await r.json())["webhooks"]):
                        break
                assert time.monotonic() - registered < 3.0, "the other worker did not hear of the webhook"
                await asyncio.sleep(0.05)
            vera = await connect(http, cluster.private(other), token(maths, "vera"))  # maths is the other's
            clients.append(vera)
            await vera.event("welcome")
            while not any(g["event"] == "participant_joined" for g in got):
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 10)
        finally:
            await runner.cleanup()

        # /metrics sums the workers: 2 rooms, 4 people, whichever worker answers
        for base in (cluster.base, cluster.private(0), cluster.private(1)):
            async with http.get(base + "/metrics") as r:
                text = await r.text()
            assert metric(text, "urok_rooms") == 2 and metric(text, "urok_participants") == 4
            assert metric(text, "urok_up") == 1

        # a close passes through the relay: anna leaves (1000), the teacher is told
        left = await anna.request("leave")
        assert left["ok"], left
        await asyncio.wait_for(anna.closed.wait(), 10)
        assert anna.ws.close_code == 1000
        await teacher.event("participant_left", participant_id=welcome["participant_id"])
        # the host ends the room: a relayed socket gets the owner's close code (4410)
        bob = await connect(http, cluster.private(other), token(physics, "bob"))
        clients.append(bob)
        await bob.event("welcome")
        async with http.delete(cluster.private(other) + f"/v1/rooms/{physics}", headers=ADMIN) as r:
            assert r.status == 200, await r.text()
        await asyncio.wait_for(bob.closed.wait(), 10)
        assert bob.ws.close_code == 4410
    finally:
        for c in clients:
            await c.close()

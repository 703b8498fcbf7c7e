"""Load test of the call-control plane: N WebSocket clients (no media) join one room through the
waiting room, a host admits them all, then hand raises and chat messages go round.

    .venv/bin/python -m benchmarks.signaling --clients 1000

Starts the real server in a subprocess (`urok serve --dev --port P`) unless ``--url`` names a
running one (dev key/secret), creates the room through REST with guest policy ASK_HOST, and
prints: join throughput (joins/s until every client got its waiting `welcome`), how long admitting
everyone took, and p50/p99 latency of a hand raise and of a chat message reaching every client.
All clients live in this one process, so on a small machine the figures include the clients' own
cost of reading every broadcast.

``--store memory|sqlite|postgres`` picks the server's store (issue 11): SQLite in a temporary data
dir; PostgreSQL at ``--database-url`` or, without one, in a throwaway cluster (tests/pg_cluster.py).
Then a chat-write phase: ``--chat-senders`` clients in a second room each send a burst of 5 private
messages to its host (the domain's chat burst; private, so the fan-out does not dominate) and the
benchmark reads the database until every message is stored: messages acknowledged per second, and
stored per second (from the first send to the last row written).

``--webhooks N`` (issue 18): the same run twice, each on a fresh server: first without webhooks
(the baseline), then with N registrations (every event) pointing at a local aiohttp receiver that
the benchmark starts in a process of its own.  Prints the join rate and the join latency (connect
to `welcome`) p50/p99 of both and their ratio (the delay webhooks add to joins), and the webhook
deliveries per second (what the receiver got, from its first to its last delivery, once the
server's ``urok_webhook_pending`` gauge reads 0), then the throughput from a backlog: the
receiver answers 503 while 300 clients join a fresh room and leave, then 204 (deliveries per second
from its first 204 to its last).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.auth import TokenService
from signaling.loop_monitor import LoopMonitor, LoopStats
from signaling.rooms import Role
from signaling.rooms.rate_limit import CHAT_RATE
from signaling.store import schema as t
from signaling.store.sql_store import driver_url, sqlite_url

DEV_KEY, DEV_SECRET = "devkey", "devsecret"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Round:
    """One broadcast being measured: every client records when the matching frame arrived."""

    marker: str  # a substring that identifies the frame
    started: float
    remaining: int
    latencies: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, now: float) -> None:
        self.latencies.append(now - self.started)
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()


@dataclass
class Bench:
    current: Round | None = None


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, bench: Bench) -> None:
        self.ws = ws
        self.bench = bench
        self.welcomes: list[dict[str, Any]] = []
        self.welcomed = asyncio.Event()
        self.joined = asyncio.Event()
        self.responses: dict[int, dict[str, Any]] = {}
        self.got_response = asyncio.Event()
        self.frames = 0
        self.close_code: int | None = None
        self.reader = asyncio.create_task(self._read())
        self._ids = 0

    @property
    def participant_id(self) -> str:
        return str(self.welcomes[0]["participant_id"])

    async def _read(self) -> None:
        try:
            await self._read_frames()
        finally:
            self.close_code = self.ws.close_code
            self.welcomed.set()  # wake a waiter: it sees there was no welcome
            self.joined.set()

    async def _read_frames(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            data: str = msg.data
            self.frames += 1
            r = self.bench.current
            if r is not None and r.marker in data:
                r.arrived(now)
            if data.startswith('{"event":"welcome"'):
                w = json.loads(data)
                self.welcomes.append(w)
                self.welcomed.set()
                if w["state"] == "joined":
                    self.joined.set()
            elif data.startswith('{"id"'):
                m = json.loads(data)
                self.responses[m["id"]] = m
                self.got_response.set()

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self._ids += 1
        rid = self._ids
        await self.ws.send_str(json.dumps({"id": rid, "type": type_, **fields}))
        while rid not in self.responses:
            self.got_response.clear()
            await asyncio.wait_for(self.got_response.wait(), 60)
        return self.responses.pop(rid)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure(bench: Bench, clients: Sequence[Client], marker: str, send: Any) -> list[float]:
    r = Round(marker=marker, started=time.perf_counter(), remaining=len(clients))
    bench.current = r
    await send()
    await asyncio.wait_for(r.done.wait(), 120)
    bench.current = None
    return r.latencies


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used (Linux /proc): a figure that other load on the
    machine does not change much, unlike a rate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LOOP_SERIES = ("urok_loop_lag_over_total", "urok_gc_collections_total", "urok_gc_pause_seconds_total",
               "urok_loop_lag_max_seconds", "urok_loop_lag_max_thread_cpu_seconds",
               "urok_loop_lag_max_process_cpu_seconds", "urok_loop_lag_max_at", "urok_gc_pause_max_seconds")


async def loop_metrics(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The server's loop monitor (signaling/loop_monitor.py) as {series{labels}: value}."""
    async with http.get(base + "/metrics") as r:
        text = await r.text()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(LOOP_SERIES)}


def loop_report(before: dict[str, float], after: dict[str, float], started: float, ended: float) -> dict[str, Any]:
    """What the loop monitor saw between two readings: stalls over 50/100/250 ms, full collections
    and their pause, and the worst stall if it fell inside [started, ended] (epoch seconds), with the
    loop thread's and the process's CPU during it (loop work, another thread, or no core)."""
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)
    out: dict[str, Any] = {f"over_{ms}ms": int(delta(f'urok_loop_lag_over_total{{ms="{ms}"}}'))
                           for ms in (50, 100, 250)}
    out["gc2"] = int(delta('urok_gc_collections_total{generation="2"}'))
    out["gc2_pause_ms"] = delta('urok_gc_pause_seconds_total{generation="2"}') * 1000
    at = after.get("urok_loop_lag_max_at", 0.0)
    worse = after.get("urok_loop_lag_max_seconds", 0) > before.get("urok_loop_lag_max_seconds", 0)
    if started <= at <= ended and worse:
        out["worst_ms"] = after["urok_loop_lag_max_seconds"] * 1000
        out["worst_thread_cpu_ms"] = after["urok_loop_lag_max_thread_cpu_seconds"] * 1000
        out["worst_process_cpu_ms"] = after["urok_loop_lag_max_process_cpu_seconds"] * 1000
    return out


def client_loop_report(monitor: LoopMonitor, before: LoopStats) -> dict[str, Any]:
    """The same for this (the clients') process."""
    st = monitor.stats
    out: dict[str, Any] = {f"over_{ms}ms": st.over[ms] - before.over[ms] for ms in (50, 100, 250)}
    out["gc2"] = st.gc_collections[2] - before.gc_collections[2]
    out["gc2_pause_ms"] = (st.gc_pause_total_s[2] - before.gc_pause_total_s[2]) * 1000
    return out


async def run(base: str, n: int, *, rounds: int = 5, concurrency: int = 100,
              server_pid: int | None = None) -> dict[str, Any]:
    """``concurrency``: connects in flight at once; keep it under the server's listen backlog (128),
    else dropped SYNs are retried after a second and the join rate measures that instead."""
    tokens = TokenService(DEV_KEY, DEV_SECRET)
    admin = {"Authorization": "Bearer " + tokens.mint_admin(ttl_s=3600)}
    bench = Bench()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        async with http.post(base + "/v1/rooms", json={"name": "load test", "guest_policy": "ASK_HOST",
                                                       "max_participants": 2000}, headers=admin) as resp:
            room_id = (await resp.json())["room_id"]
        ws_base = base.replace("http", "ws", 1) + "/v1/rtc?token="

        join_latency: list[float] = []

        async def connect(identity: str, role: Role) -> Client:
            tok = tokens.mint_access(identity=identity, name=f"Ученик {identity}", room_id=room_id, role=role,
                                     registered=True, ttl_s=3600, family_name=f"Фамилия{identity}")
            started = time.perf_counter()
            ws = await http.ws_connect(ws_base + tok, heartbeat=None, max_msg_size=0)
            c = Client(ws, bench)
            await asyncio.wait_for(c.welcomed.wait(), 120)
            join_latency.append(time.perf_counter() - started)
            if not c.welcomes:
                raise RuntimeError(f"{identity} was refused (close code {c.close_code}); a room holds at most "
                                   "2000 including the host: use --clients 1999 or fewer")
            return c

        host = await connect("host", Role.HOST)
        gate = asyncio.Semaphore(concurrency)

        async def student(i: int) -> Client:
            async with gate:
                return await connect(f"s{i:05}", Role.PARTICIPANT)

        cpu0 = process_cpu_s(server_pid) if server_pid else float("nan")
        t0 = time.perf_counter()
        students = list(await asyncio.gather(*(student(i) for i in range(n))))
        join_s = time.perf_counter() - t0
        join_cpu_ms = ((process_cpu_s(server_pid) if server_pid else float("nan")) - cpu0) / n * 1000
        assert all(c.welcomes[0]["state"] == "waiting" for c in students)

        t0 = time.perf_counter()
        r = await host.request("admit", all=True)
        assert r["ok"] and len(r["admitted"]) == n, r
        await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in students)), 300)
        admit_s = time.perf_counter() - t0
        everyone = [host, *students]

        hand: list[float] = []
        chat: list[float] = []
        # who stalls during the rounds: the server's loop and this process's, measured alike
        monitor = LoopMonitor()
        monitor.start()
        await asyncio.sleep(0.05)
        client_before = copy.deepcopy(monitor.stats)
        server_before = await loop_metrics(http, base)
        rounds_started = time.time()
        for k in range(rounds):
            raiser = students[k % n]
            hand += await measure(bench, everyone, f'"hand_raised","participant_id":"{raiser.participant_id}"',
                                  lambda c=raiser: c.request("raise_hand"))
            await raiser.request("lower_hand")
            text = f"bench message {k} {time.time_ns()}"
            chat += await measure(bench, everyone, text, lambda c=students[(k * 7) % n], t=text: c.request(
                "chat_send", text=t))
        rounds_ended = time.time()
        server_loop = loop_report(server_before, await loop_metrics(http, base), rounds_started, rounds_ended)
        client_loop = client_loop_report(monitor, client_before)
        await monitor.close()
        closed = [c for c in everyone if c.reader.done()]
        for c in everyone:
            await c.ws.close()
        for c in everyone:
            c.reader.cancel()
    return {
        "clients": n, "join_s": join_s, "joins_per_s": n / join_s, "admit_all_s": admit_s,
        "join_server_cpu_ms": join_cpu_ms,
        "join_p50_ms": pct(join_latency[1:], 0.5) * 1000, "join_p99_ms": pct(join_latency[1:], 0.99) * 1000,
        "hand_p50_ms": pct(hand, 0.5) * 1000, "hand_p99_ms": pct(hand, 0.99) * 1000,
        "chat_p50_ms": pct(chat, 0.5) * 1000, "chat_p99_ms": pct(chat, 0.99) * 1000,
        "samples": len(hand), "closed_early": len(closed),
        "server_loop": server_loop, "client_loop": client_loop,
    }


async def chat_writes(base: str, senders: int, db_url: str | None) -> dict[str, Any]:
    """``senders`` students in a fresh room each send a burst of private messages to the host;
    the time until all are acknowledged, and (SQL stores) until all are rows in the database."""
    tokens = TokenService(DEV_KEY, DEV_SECRET)
    admin = {"Authorization": "Bearer " + tokens.mint_admin(ttl_s=3600)}
    bench = Bench()
    per_sender = CHAT_RATE.burst
    total = senders * per_sender
    engine = create_async_engine(driver_url(db_url)) if db_url else None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(base + "/v1/rooms", json={"name": "chat writes", "max_participants": 2000},
                             headers=admin) as resp:
            room_id = (await resp.json())["room_id"]
        ws_base = base.replace("http", "ws", 1) + "/v1/rtc?token="
        gate = asyncio.Semaphore(100)

        async def connect(identity: str, role: Role) -> Client:
            async with gate:
                tok = tokens.mint_access(identity=identity, name=identity, room_id=room_id, role=role,
                                         registered=True, ttl_s=3600)
                c = Client(await http.ws_connect(ws_base + tok, heartbeat=None, max_msg_size=0), bench)
                await asyncio.wait_for(c.welcomed.wait(), 120)
                return c

        host = await connect("host", Role.HOST)
        students = list(await asyncio.gather(*(connect(f"w{i:05}", Role.PARTICIPANT) for i in range(senders))))

        async def burst(c: Client) -> None:
            for k in range(per_sender):
                r = await c.request("chat_send", text=f"{c.participant_id} {k}", to=host.participant_id)
                assert r.get("ok"), r

        t0 = time.perf_counter()
        await asyncio.gather(*(burst(c) for c in students))
        acked_s = time.perf_counter() - t0
        stored_s = float("nan")
        if engine is not None:
            query = sa.select(sa.func.count()).select_from(t.chat_messages).where(t.chat_messages.c.room_id == room_id)
            while True:
                async with engine.connect() as conn:
                    if (await conn.scalar(query) or 0) >= total:
                        break
                await asyncio.sleep(0.01)
            stored_s = time.perf_counter() - t0
            await engine.dispose()
        for c in [host, *students]:
            await c.ws.close()
            c.reader.cancel()
    return {"chat_messages": total, "chat_acked_per_s": total / acked_s, "chat_stored_per_s": total / stored_s,
            "chat_stored_s": stored_s}


# --- webhooks: a receiver in a process of its own, counting what it gets ---------------------------

def _receive(port: int, count: Synchronized[int], first: Synchronized[float], last: Synchronized[float],
             up: Synchronized[int], ready: Any) -> None:
    """The receiver process: 204 to every POST (503 while ``up`` is 0); counts the 204s and notes the
    first and last (wall clock)."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        if not up.value:
            return web.Response(status=503)
        now = time.time()
        with count.get_lock():
            if count.value == 0:
                first.value = now
            count.value += 1
            last.value = now
        return web.Response(status=204)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook/{n}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve())


class Receiver:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # not a fork of this process's event loop
        self.port = free_port()
        self.count: Synchronized[int] = ctx.Value("q", 0)
        self.first: Synchronized[float] = ctx.Value("d", 0.0)
        self.last: Synchronized[float] = ctx.Value("d", 0.0)
        self.up: Synchronized[int] = ctx.Value("i", 1)
        ready = ctx.Event()
        self.proc = ctx.Process(target=_receive, args=(self.port, self.count, self.first, self.last, self.up, ready),
                                daemon=True)
        self.proc.start()
        if not ready.wait(30):
            raise RuntimeError("the webhook receiver did not start")

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{n}"

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value = 0
            self.first.value = self.last.value = 0.0

    def stop(self) -> None:
        self.proc.terminate()  # the process this benchmark started
        self.proc.join(10)


async def register_webhooks(base: str, receiver: Receiver, n: int) -> None:
    admin = {"Authorization": "Bearer " + TokenService(DEV_KEY, DEV_SECRET).mint_admin(ttl_s=3600)}
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            async with http.post(base + "/v1/webhooks", json={"url": receiver.url(i)}, headers=admin) as r:
                assert r.status == 201, await r.text()


async def webhook_pending(base: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith("urok_webhook_pending "):
                return float(line.split()[1])
    return float("nan")


async def wait_pending(base: str, done: Any, timeout: float = 600.0) -> float:
    deadline = time.monotonic() + timeout
    while not done(pending := await webhook_pending(base)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pending:.0f} webhook deliveries pending after {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return pending


async def drained(base: str, receiver: Receiver, run_ended: float) -> dict[str, Any]:
    """Wait until the server has nothing pending; the receiver's figures."""
    await wait_pending(base, lambda p: p == 0)
    n = receiver.count.value
    span = receiver.last.value - receiver.first.value
    return {"deliveries": n, "deliveries_per_s": n / span if span > 0 else float("nan"),
            "delivery_lag_s": max(0.0, receiver.last.value - run_ended)}


async def backlog(base: str, receiver: Receiver, webhooks: int, people: int = 300) -> dict[str, Any]:
    """Delivery throughput from a backlog: the receiver answers 503 while ``people`` join a fresh room
    and leave (1 + 2 x people events for each webhook), then 204: the deliveries per second from
    its first 204 to its last (the server's back-off cap is 1 s here)."""
    tokens = TokenService(DEV_KEY, DEV_SECRET)
    admin = {"Authorization": "Bearer " + tokens.mint_admin(ttl_s=3600)}
    receiver.up.value = 0
    bench = Bench()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(base + "/v1/rooms", json={"name": "backlog", "max_participants": 2000},
                             headers=admin) as resp:
            room_id = (await resp.json())["room_id"]
        gate = asyncio.Semaphore(100)

        async def visit(i: int) -> None:
            async with gate:
                tok = tokens.mint_access(identity=f"b{i:05}", name=f"b{i}", room_id=room_id, role=Role.PARTICIPANT,
                                         registered=True, ttl_s=3600)
                c = Client(await http.ws_connect(base.replace("http", "ws", 1) + "/v1/rtc?token=" + tok,
                                                 heartbeat=None, max_msg_size=0), bench)
                await asyncio.wait_for(c.joined.wait(), 120)
                await c.request("leave")
                await c.ws.close()
                c.reader.cancel()

        await asyncio.gather(*(visit(i) for i in range(people)))
    expected = webhooks * (1 + 2 * people)
    await wait_pending(base, lambda p: p >= expected)
    receiver.reset()
    receiver.up.value = 1
    await wait_pending(base, lambda p: p == 0)
    n = receiver.count.value
    span = receiver.last.value - receiver.first.value
    return {"backlog": n, "backlog_per_s": n / span if span > 0 else float("nan")}


class ServerProcess:
    """`urok serve --dev --port P` in a subprocess, stopped on exit."""

    def __init__(self, port: int, store_env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        urok = Path(sys.executable).with_name("urok")
        cmd = [str(urok), "serve", "--dev", "--port", str(port), "--log-level", "WARNING"] if urok.exists() else \
            [sys.executable, "-m", "signaling", "serve", "--dev", "--port", str(port), "--log-level", "WARNING"]
        env = {**os.environ, "UROK_DEMO_ROOM": "false", "UROK_RTC_UDP_PORT": "0", **(store_env or {})}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"the server exited: {err[-2000:]}")
                try:
                    async with http.get(self.base + "/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not start in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _store_env(store: str, database_url: str | None, data_dir: str) -> tuple[dict[str, str], str | None]:
    """The server's environment for ``store`` (sqlite: a database in ``data_dir``; postgres: at
    ``database_url``), and the database's URL for the benchmark's own reads (None for memory)."""
    env = {"UROK_STORE": store}
    db_url: str | None = None
    if store == "sqlite":
        env["UROK_DATA_DIR"] = data_dir
        db_url = sqlite_url(data_dir)
    elif store == "postgres":
        assert database_url, "postgres needs a database URL"
        env["UROK_DATABASE_URL"] = db_url = database_url
    return env, db_url


async def run_with_server(n: int, *, rounds: int = 5, url: str | None = None, concurrency: int = 100,
                          store: str = "sqlite", database_url: str | None = None,
                          chat_senders: int = 0, webhooks: int = 0, backlog_people: int = 300) -> dict[str, Any]:
    if url:
        return await run(url.rstrip("/"), n, rounds=rounds, concurrency=concurrency)
    if webhooks:
        return await run_with_webhooks(n, webhooks, rounds=rounds, concurrency=concurrency, store=store,
                                       database_url=database_url, chat_senders=chat_senders,
                                       backlog_people=backlog_people)
    data_dir = tempfile.mkdtemp(prefix="urok-bench-")
    env, db_url = _store_env(store, database_url, data_dir)
    server = ServerProcess(free_port(), env)
    try:
        await server.wait_ready()
        result = await run(server.base, n, rounds=rounds, concurrency=concurrency, server_pid=server.proc.pid)
        if chat_senders:
            result.update(await chat_writes(server.base, chat_senders, db_url))
        return {"store": store, **result}
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def run_with_webhooks(n: int, webhooks: int, *, rounds: int, concurrency: int, store: str,
                            database_url: str | None, chat_senders: int, backlog_people: int = 300) -> dict[str, Any]:
    """The baseline on a fresh server without webhooks, then a fresh server with ``webhooks``
    registrations at a local receiver (on PostgreSQL both use the one database, each its own room)."""
    baseline = await run_with_server(n, rounds=rounds, concurrency=concurrency, store=store,
                                     database_url=database_url)
    receiver = Receiver()
    try:
        data_dir = tempfile.mkdtemp(prefix="urok-bench-")
        env, db_url = _store_env(store, database_url, data_dir)
        env["UROK_WEBHOOK_MAX_BACKOFF_S"] = "1"  # the backlog phase: 503s, then a prompt retry
        server = ServerProcess(free_port(), env)
        try:
            await server.wait_ready()
            await register_webhooks(server.base, receiver, webhooks)
            result = await run(server.base, n, rounds=rounds, concurrency=concurrency, server_pid=server.proc.pid)
            result.update(await drained(server.base, receiver, time.time()))
            result.update(await backlog(server.base, receiver, webhooks, backlog_people))
            if chat_senders:
                result.update(await chat_writes(server.base, chat_senders, db_url))
        finally:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        receiver.stop()
    result.update({
        "store": store, "webhooks": webhooks,
        "baseline_joins_per_s": baseline["joins_per_s"], "baseline_join_p50_ms": baseline["join_p50_ms"],
        "baseline_join_p99_ms": baseline["join_p99_ms"], "baseline_join_server_cpu_ms": baseline["join_server_cpu_ms"],
        "join_rate_ratio": result["joins_per_s"] / baseline["joins_per_s"],
        "join_p50_ratio": result["join_p50_ms"] / baseline["join_p50_ms"],
        "join_p99_ratio": result["join_p99_ms"] / baseline["join_p99_ms"],
    })
    return result


async def _postgres_then_run(args: argparse.Namespace, n: int) -> dict[str, Any]:
    """A throwaway PostgreSQL cluster (tests/pg_cluster.py) with a fresh database for the run."""
    from tests.pg_cluster import SKIP_REASON, pg_cluster_running

    with pg_cluster_running() as cluster:
        if cluster is None:
            raise SystemExit(f"--store postgres without --database-url: {SKIP_REASON}")
        url = await cluster.new_database()
        return await run_with_server(n, rounds=args.rounds, concurrency=args.concurrency, store="postgres",
                                     database_url=url, chat_senders=args.chat_senders, webhooks=args.webhooks)


def report(result: dict[str, Any]) -> str:
    chat = ""
    if "chat_messages" in result:
        chat = (f"\n  chat writes: {result['chat_messages']} private messages acknowledged at "
                f"{result['chat_acked_per_s']:.0f}/s, stored at {result['chat_stored_per_s']:.0f}/s")
    hooks = ""
    if "webhooks" in result:
        hooks = (f"\n  webhooks: {result['webhooks']} registrations: {result['deliveries']} deliveries during the run "
                 f"({result['deliveries_per_s']:.0f}/s, the last {result['delivery_lag_s']:.1f} s after it); a "
                 f"backlog of {result['backlog']} after the receiver was down: {result['backlog_per_s']:.0f}/s"
                 f"\n  joins without webhooks: {result['baseline_joins_per_s']:.0f}/s, p50 "
                 f"{result['baseline_join_p50_ms']:.1f} ms, p99 {result['baseline_join_p99_ms']:.1f} ms; with: "
                 f"{result['joins_per_s']:.0f}/s, p50 {result['join_p50_ms']:.1f} ms, p99 "
                 f"{result['join_p99_ms']:.1f} ms; ratio with/without: rate {result['join_rate_ratio']:.2f}, "
                 f"p50 {result['join_p50_ratio']:.2f}, p99 {result['join_p99_ratio']:.2f}; the server's CPU per "
                 f"join while they joined: {result['baseline_join_server_cpu_ms']:.2f} ms without, "
                 f"{result['join_server_cpu_ms']:.2f} ms with")
    return (f"store={result.get('store', '?')}  clients={result['clients']}  "
            f"joins: {result['joins_per_s']:.0f}/s ({result['join_s']:.2f} s, p50 {result['join_p50_ms']:.1f} ms, "
            f"p99 {result['join_p99_ms']:.1f} ms)  "
            f"admit all: {result['admit_all_s']:.2f} s\n"
            f"  hand raise to all: p50 {result['hand_p50_ms']:.1f} ms  p99 {result['hand_p99_ms']:.1f} ms\n"
            f"  chat message to all: p50 {result['chat_p50_ms']:.1f} ms  p99 {result['chat_p99_ms']:.1f} ms\n"
            f"  ({result['samples']} deliveries each; sockets closed early: {result['closed_early']})\n"
            f"  during the rounds: server loop {_loop_text(result.get('server_loop', {}))}; "
            f"clients' loop {_loop_text(result.get('client_loop', {}))}" + chat + hooks)


def _loop_text(loop: dict[str, Any]) -> str:
    if not loop:
        return "-"
    text = (f"stalls >50/100/250 ms: {loop['over_50ms']}/{loop['over_100ms']}/{loop['over_250ms']}, "
            f"full collections {loop['gc2']} ({loop['gc2_pause_ms']:.0f} ms)")
    if "worst_ms" in loop:
        text += (f", worst {loop['worst_ms']:.0f} ms (loop thread CPU {loop['worst_thread_cpu_ms']:.0f} ms, "
                 f"process {loop['worst_process_cpu_ms']:.0f} ms)")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.signaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[200], help="client counts to run (each a fresh server)")
    p.add_argument("--rounds", type=int, default=5, help="hand raises and chat messages measured per run")
    p.add_argument("--concurrency", type=int, default=100, help="connects in flight at once (default 100)")
    p.add_argument("--url", help="use a running server (dev key) instead of starting one")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.add_argument("--store", choices=["memory", "sqlite", "postgres"], default="sqlite",
                   help="the server's store (default sqlite, the server's own default, in a temporary data dir)")
    p.add_argument("--database-url", help="--store postgres: this database (default: a throwaway cluster)")
    p.add_argument("--chat-senders", type=int, default=200,
                   help="clients in the chat-write phase, each sending a burst of 5 messages (0: skip it)")
    p.add_argument("--webhooks", type=int, default=0,
                   help="N webhook registrations at a local receiver; runs a baseline without them first")
    args = p.parse_args(argv)
    if args.webhooks and args.url:
        p.error("--webhooks starts its own servers: leave out --url")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    for n in args.clients:
        if args.store == "postgres" and not args.database_url and not args.url:
            result = asyncio.run(_postgres_then_run(args, n))
        else:
            result = asyncio.run(run_with_server(n, rounds=args.rounds, url=args.url, concurrency=args.concurrency,
                                                 store=args.store, database_url=args.database_url,
                                                 chat_senders=0 if args.url else args.chat_senders,
                                                 webhooks=args.webhooks))
        print(json.dumps(result) if args.json else report(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load test of the call-control plane: N WebSocket clients (no media) join one room through the
waiting room, a host admits them all, then hand raises and chat messages go round.

    .venv/bin/python -m benchmarks.signaling --clients 1000

Starts the real server in a subprocess (`urok serve --dev --port P`) unless ``--url`` names a
running one (dev key/secret), creates the room through REST with guest policy ASK_HOST, and
prints: join throughput (joins/s until every client got its waiting `welcome`), how long admitting
everyone took, and p50/p99 latency of a hand raise and of a chat message reaching every client.
All clients live in this one process, so on a small machine the figures include the clients' own
cost of reading every broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from signaling.auth import TokenService
from signaling.rooms import Role

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


async def run(base: str, n: int, *, rounds: int = 5, concurrency: int = 100) -> dict[str, Any]:
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

        async def connect(identity: str, role: Role) -> Client:
            tok = tokens.mint_access(identity=identity, name=f"Ученик {identity}", room_id=room_id, role=role,
                                     registered=True, ttl_s=3600, family_name=f"Фамилия{identity}")
            ws = await http.ws_connect(ws_base + tok, heartbeat=None, max_msg_size=0)
            c = Client(ws, bench)
            await asyncio.wait_for(c.welcomed.wait(), 120)
            if not c.welcomes:
                raise RuntimeError(f"{identity} was refused (close code {c.close_code}); a room holds at most "
                                   "2000 including the host: use --clients 1999 or fewer")
            return c

        host = await connect("host", Role.HOST)
        gate = asyncio.Semaphore(concurrency)

        async def student(i: int) -> Client:
            async with gate:
                return await connect(f"s{i:05}", Role.PARTICIPANT)

        t0 = time.perf_counter()
        students = list(await asyncio.gather(*(student(i) for i in range(n))))
        join_s = time.perf_counter() - t0
        assert all(c.welcomes[0]["state"] == "waiting" for c in students)

        t0 = time.perf_counter()
        r = await host.request("admit", all=True)
        assert r["ok"] and len(r["admitted"]) == n, r
        await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in students)), 300)
        admit_s = time.perf_counter() - t0
        everyone = [host, *students]

        hand: list[float] = []
        chat: list[float] = []
        for k in range(rounds):
            raiser = students[k % n]
            hand += await measure(bench, everyone, f'"hand_raised","participant_id":"{raiser.participant_id}"',
                                  lambda c=raiser: c.request("raise_hand"))
            await raiser.request("lower_hand")
            text = f"bench message {k} {time.time_ns()}"
            chat += await measure(bench, everyone, text, lambda c=students[(k * 7) % n], t=text: c.request(
                "chat_send", text=t))
        closed = [c for c in everyone if c.reader.done()]
        for c in everyone:
            await c.ws.close()
        for c in everyone:
            c.reader.cancel()
    return {
        "clients": n, "join_s": join_s, "joins_per_s": n / join_s, "admit_all_s": admit_s,
        "hand_p50_ms": pct(hand, 0.5) * 1000, "hand_p99_ms": pct(hand, 0.99) * 1000,
        "chat_p50_ms": pct(chat, 0.5) * 1000, "chat_p99_ms": pct(chat, 0.99) * 1000,
        "samples": len(hand), "closed_early": len(closed),
    }


class ServerProcess:
    """`urok serve --dev --port P` in a subprocess, stopped on exit."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        urok = Path(sys.executable).with_name("urok")
        cmd = [str(urok), "serve", "--dev", "--port", str(port), "--log-level", "WARNING"] if urok.exists() else \
            [sys.executable, "-m", "signaling", "serve", "--dev", "--port", str(port), "--log-level", "WARNING"]
        env = {**os.environ, "UROK_DEMO_ROOM": "false"}
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


async def run_with_server(n: int, *, rounds: int = 5, url: str | None = None,
                          concurrency: int = 100) -> dict[str, Any]:
    if url:
        return await run(url.rstrip("/"), n, rounds=rounds, concurrency=concurrency)
    server = ServerProcess(free_port())
    try:
        await server.wait_ready()
        return await run(server.base, n, rounds=rounds, concurrency=concurrency)
    finally:
        server.stop()


def report(result: dict[str, Any]) -> str:
    return (f"clients={result['clients']}  joins: {result['joins_per_s']:.0f}/s ({result['join_s']:.2f} s)  "
            f"admit all: {result['admit_all_s']:.2f} s\n"
            f"  hand raise to all: p50 {result['hand_p50_ms']:.1f} ms  p99 {result['hand_p99_ms']:.1f} ms\n"
            f"  chat message to all: p50 {result['chat_p50_ms']:.1f} ms  p99 {result['chat_p99_ms']:.1f} ms\n"
            f"  ({result['samples']} deliveries each; sockets closed early: {result['closed_early']})")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.signaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[200], help="client counts to run (each a fresh server)")
    p.add_argument("--rounds", type=int, default=5, help="hand raises and chat messages measured per run")
    p.add_argument("--concurrency", type=int, default=100, help="connects in flight at once (default 100)")
    p.add_argument("--url", help="use a running server (dev key) instead of starting one")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    for n in args.clients:
        result = asyncio.run(run_with_server(n, rounds=args.rounds, url=args.url, concurrency=args.concurrency))
        print(json.dumps(result) if args.json else report(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

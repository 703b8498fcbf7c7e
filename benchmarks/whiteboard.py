"""Whiteboard benchmark: a real ``urok serve`` subprocess, clients on WebSockets making real Yjs
updates (pycrdt, laid out as web/board.js lays out its Y.Doc).

    .venv/bin/python -m benchmarks.whiteboard [--viewers 100,300,500] [--drawers 30] [--seconds 10]
                                         [--big 10000] [--boards 20] [--json]

Four measurements, each on a fresh server:

* fan-out (per N in ``--viewers``): one drawer pens a stroke point every 16 ms, sent the way
  web/board.js sends (merged every ``--send-ms``, 80 ms: 5 points an update) to a room of N
  viewers (a webinar room, role viewer); each update's delay from just before the drawer's send to
  its arrival at every viewer (p50/p99/max), the server's CPU (``/proc`` utime+stime) and RSS.
* drawers: ``--drawers`` participants draw at once, each as above; the delay from one drawer's send
  to every other drawer (p50/p99; the issue's goal: p99 < 150 ms on loopback), server CPU.
* bytes: the bytes on the wire per stroke (60 points, 12 updates), the state's growth per stroke.
* a big board (``--big`` strokes of 20 points, written by 10 writers in merged updates): its state
  size, the server RSS it costs, the time a late joiner waits for ``board_state`` after connecting
  and the time pycrdt needs to apply it (a browser's Yjs renders it: tests/e2e/browser).
* memory per board: ``--boards`` rooms, each with a board of 200 strokes: server RSS before/after.

The delays are measured in this one process (the sender's clock is the receivers'): each update's
base64 text identifies it; a receiver finds it in the relayed event without decoding JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pycrdt

from benchmarks.forwarding import Rest, ServerProcess, admin_token

POINT_MS = 16.0  # a pen's point rate (60 Hz pointer events)
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1e6


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Pen:
    """One client's document: strokes that grow point by point, changes taken as merged updates."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.elements = self.doc.get("elements", type=pycrdt.Map)
        self._sv = self.doc.get_state()
        self._n = 0

    def start(self, page: str, x: float, y: float) -> str:
        self._n += 1
        eid = f"{self.name}-{self._n}"
        self.elements[eid] = pycrdt.Map({"type": "pen", "page": page, "color": "#1565c0", "width": 4.0,
                                         "z": time.time(), "by": self.name, "pts": pycrdt.Array([x, y])})
        return eid

    def extend(self, eid: str, pts: list[float]) -> None:
        self.elements[eid]["pts"].extend(pts)

    def take(self) -> bytes:
        """What changed since the last take: the merged update web/board.js would send."""
        update = self.doc.get_update(self._sv)
        self._sv = self.doc.get_state()
        return update


@dataclass
class Client:
    ws: aiohttp.ClientWebSocketResponse
    name: str
    received: int = 0
    _next: int = 0
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    state_at: float | None = None
    state_bytes: int = 0
    has_state: asyncio.Event = field(default_factory=asyncio.Event)

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        self._next += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = fut
        await self.ws.send_str(json.dumps({"id": self._next, "type": type_, **fields}))
        return await asyncio.wait_for(fut, 30)


class Bench:
    """The updates in flight: base64 text -> send time; arrivals -> delays."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.delays: list[float] = []
        self.measuring = False


async def reader(c: Client, bench: Bench) -> None:
    marker = '"update":"'
    async for msg in c.ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        text: str = msg.data
        now = time.perf_counter()
        if text.startswith('{"event":"board_update"') or '"event":"board_update"' in text[:40]:
            c.received += 1
            i = text.find(marker)
            if i >= 0 and bench.measuring:
                j = text.index('"', i + len(marker))
                t0 = bench.sent.get(text[i + len(marker):j])
                if t0 is not None:
                    bench.delays.append(now - t0)
            continue
        m = json.loads(text)
        if m.get("event") == "board_state" and c.state_at is None:
            c.state_at = now
            c.state_bytes = len(m.get("update", "")) * 3 // 4
            c.has_state.set()
        elif "id" in m and "event" not in m:
            fut = c._pending.pop(m["id"], None)
            if fut is not None and not fut.done():
                fut.set_result(m)


async def connect(http: aiohttp.ClientSession, base: str, token: str, name: str, bench: Bench,
                  tasks: list[asyncio.Task[None]]) -> Client:
    ws = await http.ws_connect(base.replace("http", "ws", 1) + "/v1/rtc?token=" + token, heartbeat=None,
                               max_msg_size=0)
    c = Client(ws, name)
    tasks.append(asyncio.create_task(reader(c, bench)))
    return c


async def draw(c: Client, pen: Pen, bench: Bench, until: float, send_ms: float, refused: list[str]) -> int:
    """Pen a stroke point every 16 ms, send merged every send_ms; a new stroke every 60 points."""
    loop = asyncio.get_running_loop()
    sent = 0
    eid = pen.start("p1", 100.0, 100.0)
    n = 1
    next_point = next_send = loop.time()
    while loop.time() < until:
        now = loop.time()
        if now >= next_point:
            if n >= 60:
                eid = pen.start("p1", 100.0 + sent % 1400, 100.0 + sent % 800)
                n = 1
            else:
                pen.extend(eid, [100.0 + n * 5, 100.0 + (n % 7) * 3])
                n += 1
            next_point += POINT_MS / 1000
        if now >= next_send:
            text = b64(pen.take())
            bench.sent[text] = time.perf_counter()
            r = await c.request("board_update", update=text)
            if not r.get("ok"):
                refused.append(r.get("error", {}).get("code", "?"))
            sent += 1
            next_send += send_ms / 1000
        await asyncio.sleep(max(0.0, min(next_point, next_send) - loop.time()))
    return sent


async def _room(rest: Rest, mode: str = "meeting") -> str:
    room = await rest.call("POST", "/v1/rooms", {"name": "board benchmark", "mode": mode,
                                                 "guest_policy": "ALWAYS_ACCEPT"})
    return str(room["room_id"])


async def _tokens(rest: Rest, room_id: str, prefix: str, n: int, role: str) -> list[str]:
    out: list[str] = []
    for i in range(0, n, 32):
        out += await asyncio.gather(*(rest.token(room_id, f"{prefix}{j}", role) for j in range(i, min(n, i + 32))))
    return out


async def _close(clients: Sequence[Client], tasks: Sequence[asyncio.Task[None]]) -> None:
    for c in clients:
        with contextlib.suppress(Exception):
            await c.ws.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def fanout(n_viewers: int, n_drawers: int, seconds: float, send_ms: float) -> dict[str, Any]:
    """n_drawers draw (hosts of a webinar room when viewers watch; else participants of a normal room)."""
    server = await ServerProcess.start(args=())
    bench = Bench()
    tasks: list[asyncio.Task[None]] = []
    clients: list[Client] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            rest = Rest(http, server.base, admin_token())
            room_id = await _room(rest, "webinar" if n_viewers else "meeting")
            role = "host" if n_viewers else "participant"
            drawers = [await connect(http, server.base, tok, f"d{i}", bench, tasks) for i, tok in
                       enumerate(await _tokens(rest, room_id, "drawer", n_drawers, role))]
            clients += drawers
            viewer_tokens = await _tokens(rest, room_id, "viewer", n_viewers, "viewer")
            for i in range(0, len(viewer_tokens), 50):
                clients += await asyncio.gather(*(connect(http, server.base, tok, f"v{i + j}", bench, tasks)
                                                  for j, tok in enumerate(viewer_tokens[i:i + 50])))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.has_state.wait() for c in clients)), 60)
            joined = sum(c.state_at is not None for c in clients)
            await asyncio.sleep(1.0)
            refused: list[str] = []
            cpu0, t0 = cpu_s(server.pid), time.monotonic()
            bench.measuring = True
            loop = asyncio.get_running_loop()
            sent = await asyncio.gather(*(draw(d, Pen(d.name), bench, loop.time() + seconds, send_ms, refused)
                                          for d in drawers))
            await asyncio.sleep(1.0)  # the last ones arrive
            bench.measuring = False
            cpu = (cpu_s(server.pid) - cpu0) / (time.monotonic() - t0)
            receivers = n_viewers + n_drawers - 1
            expected = sum(sent) * receivers
            got = len(bench.delays)
            return {"viewers": n_viewers, "drawers": n_drawers, "joined": joined, "updates_sent": sum(sent),
                    "updates_per_s": round(sum(sent) / seconds, 1), "deliveries": got, "expected": expected,
                    "refused": len(refused), "refused_codes": sorted(set(refused)),
                    "delay_p50_ms": round(pct(bench.delays, 50) * 1000, 1),
                    "delay_p99_ms": round(pct(bench.delays, 99) * 1000, 1),
                    "delay_max_ms": round(max(bench.delays, default=float("nan")) * 1000, 1),
                    "server_cpu": round(cpu, 3), "server_rss_mb": round(rss_mb(server.pid), 1)}
    finally:
        await _close(clients, tasks)
        server.stop()


def stroke_bytes(points: int = 60, send_ms: float = 80.0) -> dict[str, Any]:
    """A stroke of ``points`` points sent as web/board.js sends it; the state's growth per stroke."""
    pen = Pen("bytes")
    per_update = max(1, round(send_ms / POINT_MS))
    wire = 0
    b64_bytes = 0
    updates = 0
    strokes = 20
    for s in range(strokes):
        eid = pen.start("p1", 10.0 * s, 10.0)
        for i in range(1, points):
            pen.extend(eid, [10.0 * s + i * 3.3, 10.0 + i * 1.7])
            if i % per_update == 0 or i == points - 1:
                u = pen.take()
                wire += len(u)
                b64_bytes += len(b64(u))
                updates += 1
    state = len(pen.doc.get_update())
    return {"points_per_stroke": points, "updates_per_stroke": updates / strokes,
            "yjs_bytes_per_stroke": round(wire / strokes),
            "frame_bytes_per_stroke": round(b64_bytes / strokes + 60 * updates / strokes),
            "state_bytes_per_stroke": round(state / strokes)}


async def big_board(strokes: int, points: int = 20) -> dict[str, Any]:
    server = await ServerProcess.start(args=())
    bench = Bench()
    tasks: list[asyncio.Task[None]] = []
    clients: list[Client] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            rest = Rest(http, server.base, admin_token())
            room_id = await _room(rest)
            rss0 = rss_mb(server.pid)
            writers = [await connect(http, server.base, tok, f"w{i}", bench, tasks)
                       for i, tok in enumerate(await _tokens(rest, room_id, "writer", 10, "host"))]
            clients += writers
            t0 = time.monotonic()

            async def write(c: Client, n: int) -> None:
                pen = Pen(c.name)
                done = 0
                while done < n:
                    for _ in range(min(100, n - done)):  # ~40 KB merged updates (a frame is 64 KiB as base64)
                        eid = pen.start("p1", float(done % 1500), float(done % 900))
                        pen.extend(eid, [float(done % 1500 + i * 4) for i in range(2 * points - 2)])
                        done += 1
                    for _ in range(50):
                        r = await c.request("board_update", update=b64(pen.take()))
                        if r.get("ok"):
                            break
                        if r["error"]["code"] not in ("board_rate_limited", "rate_limited"):
                            raise RuntimeError(r)
                        await asyncio.sleep(0.3)

            await asyncio.gather(*(write(c, strokes // len(writers)) for c in writers))
            written_s = time.monotonic() - t0
            rss1 = rss_mb(server.pid)
            late = await _tokens(rest, room_id, "late", 3, "participant")
            waits, applies, sizes = [], [], []
            for tok in late:
                t1 = time.perf_counter()
                c = await connect(http, server.base, tok, "late", bench, tasks)
                clients.append(c)
                await c.has_state.wait()
                assert c.state_at is not None
                waits.append(c.state_at - t1)
                sizes.append(c.state_bytes)
            st = await writers[0].request("board_sync")
            data = base64.b64decode(st["update"])
            t2 = time.perf_counter()
            doc: pycrdt.Doc[Any] = pycrdt.Doc()
            els = doc.get("elements", type=pycrdt.Map)
            doc.apply_update(data)
            n_el = len(els)
            applies.append(time.perf_counter() - t2)
            return {"strokes": n_el, "points_per_stroke": points, "state_bytes": len(data),
                    "written_s": round(written_s, 1), "server_rss_for_board_mb": round(rss1 - rss0, 1),
                    "late_joiner_state_ms": round(statistics.median(waits) * 1000, 1),
                    "pycrdt_apply_ms": round(applies[0] * 1000, 1)}
    finally:
        await _close(clients, tasks)
        server.stop()


async def memory_per_board(boards: int, strokes: int = 200) -> dict[str, Any]:
    server = await ServerProcess.start(args=())
    bench = Bench()
    tasks: list[asyncio.Task[None]] = []
    clients: list[Client] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            rest = Rest(http, server.base, admin_token())
            # one warm-up room first: the code paths' own memory is not the boards'
            rooms = [await _room(rest) for _ in range(boards + 1)]
            hosts = []
            for i, room_id in enumerate(rooms):
                (tok,) = await _tokens(rest, room_id, "t", 1, "host")
                hosts.append(await connect(http, server.base, tok, f"h{i}", bench, tasks))
                if i == 0:
                    await _fill(hosts[0], strokes)
                    await asyncio.sleep(1.0)
                    rss0 = rss_mb(server.pid)
            clients += hosts
            for h in hosts[1:]:
                await _fill(h, strokes)
            await asyncio.sleep(1.5)  # the write-behind has run
            rss1 = rss_mb(server.pid)
            return {"boards": boards, "strokes_each": strokes, "rss_before_mb": round(rss0, 1),
                    "rss_after_mb": round(rss1, 1), "kb_per_board": round((rss1 - rss0) * 1000 / boards, 1),
                    "note": "includes each room's live state and one host socket"}
    finally:
        await _close(clients, tasks)
        server.stop()


async def _fill(c: Client, strokes: int) -> None:
    await c.has_state.wait()
    pen = Pen(c.name)
    for s in range(strokes):
        eid = pen.start("p1", float(s), float(s))
        pen.extend(eid, [float(s + i) for i in range(38)])
        if s % 50 == 49 or s == strokes - 1:  # one frame is 64 KiB (settings.ws_max_message_bytes)
            r = await c.request("board_update", update=b64(pen.take()))
            if not r.get("ok"):
                raise RuntimeError(r)


def parse_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def show(kind: str, r: dict[str, Any]) -> None:
        out.append({"kind": kind, **r})
        print(kind.ljust(10), "  ".join(f"{k}={v}" for k, v in r.items()), flush=True)
        if args.json:
            print("RESULT", json.dumps({"kind": kind, **r}), flush=True)

    show("bytes", stroke_bytes(send_ms=args.send_ms))
    for n in args.viewers:
        show("fanout", await fanout(n, 1, args.seconds, args.send_ms))
    if args.drawers:
        show("drawers", await fanout(0, args.drawers, args.seconds, args.send_ms))
    if args.big:
        show("big", await big_board(args.big))
    if args.boards:
        show("memory", await memory_per_board(args.boards))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.whiteboard", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", type=parse_list, default=[100, 300, 500], help="viewer counts (100,300,500)")
    ap.add_argument("--drawers", type=int, default=30, help="participants drawing at once (30; 0: skip)")
    ap.add_argument("--seconds", type=float, default=10.0, help="drawing time per point (10)")
    ap.add_argument("--send-ms", type=float, default=80.0, help="merge period of a client's updates (80, web/board.js)")
    ap.add_argument("--big", type=int, default=10_000, help="strokes of the big board (10000; 0: skip)")
    ap.add_argument("--boards", type=int, default=20, help="boards for the memory figure (20; 0: skip)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per result (RESULT {...})")
    args = ap.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

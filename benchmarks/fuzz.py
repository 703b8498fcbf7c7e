"""The long fuzzing run (issue 10): generated packets against the parsers, then generated UDP
datagrams and WebSocket requests against a running server while a real publisher and subscriber
are connected.

    .venv/bin/python -m benchmarks.fuzz --packets 1000000 --messages 100000

1. Parsers: ``--packets`` RTP/RTCP/STUN/DTLS-looking/random datagrams and ``--sdp`` SDP texts
   (``benchmarks/fuzz_inputs.py``: structured, nearly valid, then damaged) through every parser's
   oracle. A crash is an exception other than the documented one, or an insane result.
2. The server, in this process (so its structures can be read), on 127.0.0.1 only, shared media
   port (``rtc_udp_port=0``): an aiortc teacher publishes camera and microphone, an aiortc student
   receives and decodes them. Meanwhile a thread sends ``--udp-packets`` datagrams to the media port
   from ``--sockets`` sockets, half of them first bound to the two peer connections by valid signed
   STUN checks (so their DTLS- and SRTP-looking datagrams reach the connections themselves), paced
   at most ``--udp-rate`` per second and never more than the server drains (the sender holds while
   32 KB wait in the port's receive queue, so what is sent reaches the server); and two WebSocket
   participants (a host, a student) send ``--messages`` requests of every type in a room of their
   own (its rate limit raised for the run), reconnecting after each generated ``leave``. After a
   barrier the requests the server counted (``urok_ws_handled_total``) must equal those sent. Both
   storms hold back while the event loop lags over 100 ms (the clients share it).
   A crash here is an exception that reached the event loop's handler, an ERROR log record, a
   forwarding hook error, or an ``internal_error`` reply. Server RSS and the per-connection and
   per-session structures are sampled at the start, the middle and the end; the student's decoded
   video frames must keep growing.

Prints counts per kind and outcome, crashes, rates, the samples and one summary line. The CPU is
shared by everything here (the generators too), so rates are the whole run's, not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import fuzz_inputs as fi
from sfu import stun
from sfu.udp_mux import PATHS_MAX, PENDING_MAX, TXIDS_MAX
from signaling.app_keys import DISPATCH, ROOMS, TOKENS, WORKER
from signaling.rooms import Role
from signaling.rooms.moderation import REACTIONS
from tests.conftest import Server, WsClient, start_server, test_settings
from tests.e2e.rtc_client import RtcClient, wait_until

QUEUE_HIGH = 32 * 1024  # bytes waiting at the media port above which the UDP storm holds back
# structures bounded by design: growth up to the cap is fine, past it is not
CAPS = {"conn.paths(max)": PATHS_MAX, "conn.txids(max)": TXIDS_MAX, "mux.pending_checks": PENDING_MAX}
SDP_SEED_FILES = ("chromium_simulcast_offer.sdp", "aiortc_offer.sdp")
PACKET_MIX = (("rtp", 35), ("rtcp", 25), ("stun", 20), ("dtls", 10), ("random", 10))


@dataclass
class FuzzConfig:
    packets: int = 1_000_000  # through the parsers
    messages: int = 100_000  # WebSocket requests to the server
    udp_packets: int | None = None  # datagrams to the server's media port (default: --packets)
    sdp: int | None = None  # SDP texts through the parser (default: packets / 200, at most 20000)
    udp_rate: float = 40_000.0  # datagrams per second at most
    sockets: int = 8
    seed: int = 1
    empty: bool = True  # send the empty datagrams too (they ended the connections before issue 10's fix)
    max_size: int = 65507  # longer datagrams are left out (pylibsrtp's 1500 bytes raised before the fix)

    @property
    def udp_count(self) -> int:
        return self.packets if self.udp_packets is None else self.udp_packets

    @property
    def sdp_count(self) -> int:
        return min(20_000, self.packets // 200) if self.sdp is None else self.sdp


@dataclass
class Sample:
    at: str
    t: float
    rss_mb: float
    video_frames: int
    structures: dict[str, int]


@dataclass
class FuzzResult:
    parser_counts: dict[str, Counter[str]] = field(default_factory=dict)
    parser_crashes: list[str] = field(default_factory=list)
    parser_s: float = 0.0
    udp_sent: Counter[str] = field(default_factory=Counter)
    udp_s: float = 0.0
    udp_held_s: float = 0.0
    udp_kernel_drops: int = 0
    mux_dropped: dict[str, int] = field(default_factory=dict)
    media_dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    ws_sent: Counter[str] = field(default_factory=Counter)
    ws_handled: dict[str, Counter[str]] = field(default_factory=dict)
    ws_s: float = 0.0
    ws_connections: int = 0
    server_crashes: list[str] = field(default_factory=list)
    media_connections_kept: bool = False  # the publisher's and subscriber's connections, at the end
    loop_lag_max: float = 0.0
    held_s: float = 0.0
    media_lost: str = ""  # when (s into the storm) and how they were lost, if they were
    samples: list[Sample] = field(default_factory=list)

    @property
    def packets(self) -> int:
        return sum(sum(c.values()) for k, c in self.parser_counts.items() if k != "sdp")

    @property
    def crashes(self) -> int:
        return len(self.parser_crashes) + len(self.server_crashes)

    @property
    def ws_mismatch(self) -> dict[str, tuple[int, int]]:
        """Types whose handled count differs from the sent count: (sent, handled)."""
        handled = {t: sum(c.values()) for t, c in self.ws_handled.items()}
        return {t: (self.ws_sent[t], handled.get(t, 0)) for t in set(handled) | set(self.ws_sent)
                if self.ws_sent[t] != handled.get(t, 0)}

    @property
    def growth(self) -> list[str]:
        """Structures (and RSS) that grew from the middle sample to the end beyond a margin."""
        if len(self.samples) < 3:
            return []
        mid, end = self.samples[1], self.samples[2]
        out = []
        for k, v in end.structures.items():
            cap = CAPS.get(k)
            before = mid.structures.get(k, 0)
            if (v > cap) if cap is not None else v > max(2 * before, before + 16):
                out.append(f"{k} {before} -> {v}" + (f" (cap {cap})" if cap is not None else ""))
        if end.rss_mb > mid.rss_mb + 64:
            out.append(f"rss {mid.rss_mb:.0f} -> {end.rss_mb:.0f} MB")
        return out


# --- 1. parsers ---------------------------------------------------------------------------------
def run_parsers(cfg: FuzzConfig, result: FuzzResult) -> None:
    r = random.Random(cfg.seed)
    kinds = [k for k, w in PACKET_MIX for _ in range(w)]
    started = time.perf_counter()
    counts = result.parser_counts
    for i in range(cfg.packets):
        kind = kinds[i % len(kinds)]
        data = fi.DATAGRAM_KINDS[kind](r)
        try:
            outcome = fi.check_datagram(kind, data)
        except fi.ParserCrash as e:
            outcome = "CRASH"
            result.parser_crashes.append(str(e)[:500])
        counts.setdefault(kind, Counter())[outcome] += 1
    data_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data")
    seeds = [Path(data_dir, f).read_text() for f in SDP_SEED_FILES]
    for _ in range(cfg.sdp_count):
        text = fi.sdp_text(r, seeds)
        try:
            outcome = fi.check_sdp(text)
        except fi.ParserCrash as e:
            outcome = "CRASH"
            result.parser_crashes.append(str(e)[:500])
        counts.setdefault("sdp", Counter())[outcome] += 1
    result.parser_s = time.perf_counter() - started


# --- 2a. UDP ------------------------------------------------------------------------------------
@dataclass
class Credentials:
    """What a peer's own stack knows of one connection: both ufrags and the server's password."""

    local_ufrag: str
    remote_ufrag: str
    key: bytes


def signed_check(creds: Credentials, r: random.Random) -> bytes:
    """A valid binding request as the browser sends it (no USE-CANDIDATE: the media path stays)."""
    return stun.binding_request(r.randbytes(12), f"{creds.local_ufrag}:{creds.remote_ufrag}", creds.key,
                                r.getrandbits(31), r.getrandbits(64))


class LoopLag:
    """How late the event loop wakes a 50 ms sleep. The clients run in this process too: aioice
    gives up a peer after six consent checks unanswered within 0.5 s each (RFC 7675), so both storms
    hold back while the loop lags by more than ``limit`` (what is measured is robustness, not the
    most the server takes)."""

    def __init__(self, limit: float = 0.1) -> None:
        self.limit = limit
        self.lag = 0.0
        self.max = 0.0
        self.held = 0.0  # seconds the storms waited for the loop

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.05)
            self.lag = loop.time() - t - 0.05
            self.max = max(self.max, self.lag)

    def behind(self) -> bool:
        return self.lag > self.limit


class UdpStorm:
    """Datagrams to the media port from a thread; ``sent`` counts what went out, by kind."""

    def __init__(self, port: int, creds: Sequence[Credentials], count: int, rate: float, sockets: int,
                 seed: int, empty: bool = True, max_size: int = 65507, lag: LoopLag | None = None) -> None:
        self.port, self.creds, self.count, self.rate, self.empty = port, list(creds), count, rate, empty
        self.max_size = max_size
        self.lag = lag
        self.sent: Counter[str] = Counter()
        self.done = 0
        self.held = 0.0  # seconds waited for the port's receive queue to drain
        self._seed = seed
        self._socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(max(1, sockets))]
        for s in self._socks:
            s.bind(("127.0.0.1", 0))
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()
        for s in self._socks:
            s.close()

    def run(self) -> None:
        r = random.Random(self._seed)
        dest = ("127.0.0.1", self.port)
        bound = self._socks[: max(1, len(self._socks) // 2)]  # their addresses reach the connections
        kinds = [k for k, w in PACKET_MIX for _ in range(w)]
        chunk_started = time.monotonic()
        for i in range(self.count):
            if self._stop.is_set():
                break
            if i % 4096 == 0 and self.creds:
                for s in bound:
                    for c in self.creds:
                        s.sendto(signed_check(c, r), dest)
                        self.sent["signed_check"] += 1
            kind = kinds[i % len(kinds)]
            if kind == "stun" and self.creds:
                c = r.choice(self.creds)
                data = fi.stun_message(r, key=c.key if r.random() < 0.5 else fi.STUN_KEY,
                                       username=f"{c.local_ufrag}:{c.remote_ufrag}")
            else:
                data = fi.DATAGRAM_KINDS[kind](r)
            if not data and not self.empty:
                # (an empty datagram from a bound address ended the connection before issue 10's
                # fix: RFC 7983 demultiplexing at the shared port)
                self.sent["empty_left_out"] += 1
                continue
            if len(data) > self.max_size:
                # (an SRTP-looking datagram longer than pylibsrtp's buffer raised ValueError into
                # the loop before issue 10's fix)
                self.sent["long_left_out"] += 1
                continue
            try:
                r.choice(self._socks).sendto(data, dest)
            except OSError:  # larger than a datagram may be (a mutated one)
                self.sent["not_sendable"] += 1
                continue
            self.sent[kind] += 1
            self.done = i + 1
            if i % 64 == 63:  # pace: 64 datagrams take at least 64 / rate seconds
                now = time.monotonic()
                ahead = 64 / self.rate - (now - chunk_started)
                if ahead > 0:
                    time.sleep(ahead)
                # hold while the port's receive queue is long: a queue that the server drains slower
                # than it fills delays every peer's consent checks past aioice's 0.5 s timeout (and
                # then the kernel drops them), which measures the flood, not the parsing
                queued, _ = udp_socket_state(self.port)
                while queued > QUEUE_HIGH and not self._stop.is_set():
                    time.sleep(0.005)
                    self.held += 0.005
                    queued, _ = udp_socket_state(self.port)
                while self.lag is not None and self.lag.behind() and not self._stop.is_set():
                    time.sleep(0.02)
                    self.lag.held += 0.02
                chunk_started = time.monotonic()


def udp_socket_state(port: int) -> tuple[int, int]:
    """(bytes waiting in the receive queue, datagrams dropped) of the UDP socket bound to ``port``
    (/proc/net/udp)."""
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if int(parts[1].split(":")[1], 16) == port:
                    return int(parts[4].split(":")[1], 16), int(parts[-1])
    except (OSError, ValueError, IndexError):
        pass
    return 0, 0


def kernel_drops(port: int) -> int:
    """Datagrams the kernel dropped at the UDP socket bound to ``port``."""
    return udp_socket_state(port)[1]


# --- 2b. WebSocket --------------------------------------------------------------------------------
class WsFuzzer:
    """One identity sending generated frames; reconnects when its socket closes (after the `leave`
    it sent itself), so no frame is lost to a closed socket."""

    def __init__(self, server: Server, token: str, types: Sequence[str]) -> None:
        self.server, self.token, self.types = server, token, list(types)
        self.client: WsClient | None = None
        self.sent: Counter[str] = Counter()
        self.connects = 0
        self.unexpected_closes = 0

    async def ensure_open(self) -> WsClient:
        c = self.client
        if c is not None and not c.closed.is_set():
            return c
        if c is not None:
            await c.close()
            if c in self.server.clients:
                self.server.clients.remove(c)
        c = self.client = await self.server.connect(self.token)
        await c.event("welcome", timeout=30)
        self.connects += 1
        return c

    async def send(self, text: str) -> None:
        c = await self.ensure_open()
        label = fi.frame_label(text, self.types)
        await c.send_raw(text)
        self.sent[label] += 1
        if label == "leave":  # always valid: the server answers and closes
            await asyncio.wait_for(c.closed.wait(), 30)
        elif c.closed.is_set():
            self.unexpected_closes += 1
        if len(c.events) > 1000:  # a long run: keep the client's own memory flat
            del c.events[:-10]
            c.responses.clear()

    async def barrier(self, n: int) -> None:
        c = await self.ensure_open()
        rid = f"barrier-{n}"
        await c.send_raw(json.dumps({"id": rid, "type": "ping"}))
        self.sent["ping"] += 1
        r = await c.wait_for(lambda: c.responses.get(rid), timeout=120)
        if r.get("ok") is not True:
            raise AssertionError(f"barrier ping failed: {r}")


def handled_per_type(metrics_text: str) -> dict[str, Counter[str]]:
    """``urok_ws_handled_total`` by type: outcome -> count."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Counter[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == "urok_ws_handled_total":
                out.setdefault(s.labels["type"], Counter())[s.labels["outcome"]] += int(s.value)
    return out


async def ws_storm(server: Server, room_id: str, count: int, seed: int, pools: dict[str, list[Any]],
                   progress: list[int], lag: LoopLag | None = None) -> tuple[list[WsFuzzer], float]:
    table = server.app[DISPATCH]
    models = {t: table.route(t).model for t in table.types}
    fuzzers = [WsFuzzer(server, server.token(room_id, "fuzz-host", role=Role.HOST),
                        [t for t in models if t != "end_room"]),  # the room must outlive the run
               WsFuzzer(server, server.token(room_id, "fuzz-student", role=Role.PARTICIPANT), list(models))]
    started = time.perf_counter()

    async def run(f: WsFuzzer, n: int, r: random.Random) -> None:
        types = sorted(models)
        for i in range(n):
            if r.random() < 0.1:
                text = fi.junk_frame(r, types)
            else:
                t = f.types[i % len(f.types)]
                text = fi.request_frame(r, t, models[t], pools)
            await f.send(text)
            progress[0] += 1
            while lag is not None and lag.behind():
                await asyncio.sleep(0.02)
                lag.held += 0.02
        await f.barrier(1)

    await asyncio.gather(*(run(f, count // 2 + (i == 0) * (count % 2), random.Random(seed + i))
                           for i, f in enumerate(fuzzers)))
    return fuzzers, time.perf_counter() - started


# --- 2c. samples, crashes ---------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def structures(server: Server) -> dict[str, int]:
    """Sizes of what the server keeps per connection and per session (max over them)."""
    worker = server.app[WORKER]
    out: dict[str, int] = {}
    mux = worker.mux
    if mux is not None:
        out["mux.by_addr"] = len(mux._by_addr)
        out["mux.by_ufrag"] = len(mux._by_ufrag)
        out["mux.pending_checks"] = len(mux._pending)
        conns = list(mux._by_ufrag.values())
        out["conn.paths(max)"] = max((len(c.paths) for c in conns), default=0)
        out["conn.txids(max)"] = max((len(c._txids) for c in conns), default=0)
        out["conn.queue(max)"] = max((c._queue.qsize() for c in conns), default=0)
    transports = [t for router in worker.routers for t in router.transports]
    out["transports"] = len(transports)
    out["transport.ssrcs(max)"] = max((len(t._listener.producer_by_ssrc) for t in transports), default=0)
    out["transport.rtx_ssrcs(max)"] = max((len(t._listener.rtx_ssrcs) for t in transports), default=0)
    sessions = [s for live in server.app[ROOMS].live.values() for s in live.sessions.values()]
    out["sessions"] = len(sessions)
    out["session.outbound(max)"] = max((s._out.qsize() for s in sessions), default=0)
    out["rooms.live"] = len(server.app[ROOMS].live)
    return out


class CrashLog(logging.Handler):
    """ERROR records and what reached the event loop's exception handler."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.crashes.append(f"{record.name}: {record.getMessage()[:300]} {exc!r}")

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        text = str(context.get("message", "")) + " " + repr(context.get("future", ""))
        self.crashes.append(f"loop: {text[:300]} {exc!r}")


async def run_server(cfg: FuzzConfig, result: FuzzResult) -> None:
    crash_log = CrashLog()
    logging.getLogger().addHandler(crash_log)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(crash_log.loop_handler)
    settings = test_settings(ws_rate_per_s=1e6, ws_rate_burst=1_000_000)
    runner, base = await start_server(settings)
    http = aiohttp.ClientSession()
    app = runner.app
    server = Server(app=app, base=base, http=http,
                    admin={"Authorization": "Bearer " + app[TOKENS].mint_admin(ttl_s=3600)})
    storm: UdpStorm | None = None
    try:
        room_id = await server.create_room()
        teacher = await RtcClient.join(server, room_id, "teacher", role=Role.HOST)
        student = await RtcClient.join(server, room_id, "student")
        await teacher.publish()
        if not await wait_until(lambda: student.frames("video") >= 5, 60):
            raise RuntimeError("the student receives no video before the run")
        worker = app[WORKER]
        port = worker.udp_port
        mux = worker.mux
        assert port is not None and mux is not None
        creds = [Credentials(c.local_username, c.remote_username or "x", c.local_key)
                 for c in mux._by_ufrag.values()]

        def sample(at: str) -> None:
            result.samples.append(Sample(at, time.monotonic(), rss_mb(), student.frames("video"), structures(server)))

        sample("start")
        drops_before = kernel_drops(port)
        lag = LoopLag()
        lag_task = asyncio.ensure_future(lag.run())
        storm = UdpStorm(port, creds, cfg.udp_count, cfg.udp_rate, cfg.sockets, cfg.seed, cfg.empty, cfg.max_size,
                         lag)
        offer = (await teacher.pub.createOffer()).sdp if teacher.pub is not None else ""
        # the requests go to a room of their own: a generated `mute` (all) or `remove` there must not
        # stop the media this run watches
        fuzz_room = await server.create_room()
        bystander = await server.join(fuzz_room, "bystander")
        ids = [str(bystander.events[0]["participant_id"]), "nobody"]
        pools: dict[str, list[Any]] = {
            "participant_id": ids, "participant_ids": ids, "to": ids, "emoji": list(REACTIONS),
            "sdp": [offer] * 3 + [fi.sdp_text(random.Random(i), [offer]) for i in range(6)],
            "sources": [{"0": "microphone", "1": "camera"}], "track_id": ["nope"], "track_ids": ["nope"],
        }
        progress = [0]
        udp_started = time.perf_counter()
        udp_task = asyncio.ensure_future(asyncio.to_thread(storm.run))

        async def watch() -> None:  # when the media connections go, and what the port saw by then
            while True:
                await asyncio.sleep(0.5)
                if not all(c.local_ufrag in mux._by_ufrag for c in creds):
                    st = mux.stats
                    result.media_lost = (
                        f"at {time.perf_counter() - udp_started:.1f} s: {storm.done} datagrams sent, kernel drops "
                        f"{kernel_drops(port) - drops_before}, paths expired {st.paths_expired}, checks sent "
                        f"{st.checks_sent}, paths verified {st.paths_verified}")
                    return

        watcher = asyncio.ensure_future(watch())
        async with http.get(base + "/metrics") as resp:
            handled_before = handled_per_type(await resp.text())  # the media clients' own requests
        ws_task = asyncio.ensure_future(ws_storm(server, fuzz_room, cfg.messages, cfg.seed, pools, progress, lag))

        def half_done() -> bool:
            return (storm is not None and storm.done >= cfg.udp_count // 2) and progress[0] >= cfg.messages // 2

        await wait_until(lambda: half_done() or (udp_task.done() and ws_task.done()), 24 * 3600, step=0.2)
        sample("middle")
        await udp_task
        result.udp_s = time.perf_counter() - udp_started
        fuzzers, result.ws_s = await ws_task
        watcher.cancel()
        lag_task.cancel()
        result.loop_lag_max, result.held_s = lag.max, lag.held
        await asyncio.sleep(2.0)  # what is queued drains; the student decodes on
        sample("end")

        result.udp_sent = storm.sent
        result.udp_held_s = storm.held
        result.media_connections_kept = all(c.local_ufrag in mux._by_ufrag for c in creds)
        result.udp_kernel_drops = kernel_drops(port) - drops_before
        result.mux_dropped = dict(mux.stats.dropped)
        stats = worker.stats
        result.media_dropped = {"rtp": dict(stats.rtp_dropped), "rtcp": dict(stats.rtcp_dropped)}
        result.ws_sent = sum((f.sent for f in fuzzers), Counter())
        result.ws_connections = sum(f.connects for f in fuzzers)
        async with http.get(base + "/metrics") as resp:
            handled_after = handled_per_type(await resp.text())
        result.ws_handled = {t: c - handled_before.get(t, Counter()) for t, c in handled_after.items()}
        result.ws_handled = {t: c for t, c in result.ws_handled.items() if c}
        for f in fuzzers:
            if f.unexpected_closes:
                result.server_crashes.append(f"ws: {f.unexpected_closes} sockets closed unexpectedly")
        for t, outcomes in result.ws_handled.items():
            if outcomes.get("internal_error"):
                result.server_crashes.append(f"ws: {outcomes['internal_error']} internal_error on {t}")
        for kind in ("rtp", "rtcp"):
            if result.media_dropped[kind].get("error"):
                result.server_crashes.append(f"media: {result.media_dropped[kind]['error']} {kind} hook errors")
        hook_errors = sum(t._listener.hook_errors for router in worker.routers for t in router.transports)
        if hook_errors:
            result.server_crashes.append(f"media: {hook_errors} hook errors")
        ping = await student.ws.request("ping", timeout=30)
        if ping.get("ok") is not True:
            result.server_crashes.append(f"the student's signalling is broken: {ping}")
        for rtc in (teacher, student):
            await rtc.close()
    finally:
        if storm is not None:
            storm.close()
        await http.close()
        for c in server.clients:
            await c.close()
        await runner.cleanup()
        logging.getLogger().removeHandler(crash_log)
        result.server_crashes += crash_log.crashes


async def run(cfg: FuzzConfig) -> FuzzResult:
    result = FuzzResult()
    run_parsers(cfg, result)
    await run_server(cfg, result)
    return result


# --- report ---------------------------------------------------------------------------------------
def report(cfg: FuzzConfig, r: FuzzResult) -> str:
    lines = [f"parsers: {r.packets} packets + {sum(r.parser_counts.get('sdp', Counter()).values())} SDP in "
             f"{r.parser_s:.1f} s ({(r.packets + cfg.sdp_count) / max(r.parser_s, 1e-9):,.0f}/s)"]
    for kind, c in sorted(r.parser_counts.items()):
        lines.append(f"  {kind:7} {dict(c)}")
    lines.append(f"  crashes: {len(r.parser_crashes)}")
    lines += [f"    {c}" for c in r.parser_crashes[:10]]
    udp_total = sum(v for k, v in r.udp_sent.items() if not k.endswith(("_left_out", "not_sendable")))
    lines.append(f"server UDP: {udp_total} datagrams in {r.udp_s:.1f} s ({udp_total / max(r.udp_s, 1e-9):,.0f}/s), "
                 f"kernel drops {r.udp_kernel_drops} (reached the server: {udp_total - r.udp_kernel_drops}), "
                 f"held {r.udp_held_s:.1f} s for the port's queue to drain; sent {dict(r.udp_sent)}")
    lines.append(f"  shared port dropped {r.mux_dropped}; media dropped {r.media_dropped}")
    ws_total = sum(r.ws_sent.values())
    lines.append(f"server WebSocket: {ws_total} frames in {r.ws_s:.1f} s ({ws_total / max(r.ws_s, 1e-9):,.0f}/s), "
                 f"{r.ws_connections} connections; mismatch sent/handled: {r.ws_mismatch or 'none'}")
    for t, c in sorted(r.ws_handled.items()):
        lines.append(f"  {t:20} {dict(c)}")
    lines.append(f"event loop: lag at most {r.loop_lag_max * 1000:.0f} ms; the storms held back {r.held_s:.1f} s "
                 "while it lagged over 100 ms")
    lines.append(f"server crashes: {len(r.server_crashes)}")
    if r.media_lost:
        lines.append(f"media connections lost {r.media_lost}")
    lines += [f"    {c}" for c in r.server_crashes[:10]]
    for s in r.samples:
        lines.append(f"sample {s.at:6} rss {s.rss_mb:6.1f} MB  video frames {s.video_frames:6}  {s.structures}")
    frames = [s.video_frames for s in r.samples]
    forwarding = len(frames) == 3 and frames[0] < frames[1] < frames[2]
    lines.append(f"SUMMARY packets={r.packets} udp={udp_total} messages={ws_total} crashes={r.crashes} "
                 f"unbounded_growth={len(r.growth)}{' ' + '; '.join(r.growth) if r.growth else ''} "
                 f"ws_mismatch={len(r.ws_mismatch)} forwarding_kept={'yes' if forwarding else 'NO'} "
                 f"media_connections_kept={'yes' if r.media_connections_kept else 'NO'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--udp-packets", type=int, default=None)
    ap.add_argument("--sdp", type=int, default=None)
    ap.add_argument("--udp-rate", type=float, default=40_000.0)
    ap.add_argument("--sockets", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-empty", dest="empty", action="store_false", help="leave empty datagrams out")
    ap.add_argument("--max-size", type=int, default=65507, help="longer datagrams are left out")
    a = ap.parse_args(argv)
    cfg = FuzzConfig(packets=a.packets, messages=a.messages, udp_packets=a.udp_packets, sdp=a.sdp,
                     udp_rate=a.udp_rate, sockets=a.sockets, seed=a.seed, empty=a.empty,
                     max_size=a.max_size)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.perf_counter()
    result = asyncio.run(run(cfg))
    print(report(cfg, result))
    print(f"wall {time.perf_counter() - started:.1f} s")
    ok = result.crashes == 0 and not result.growth and not result.ws_mismatch and result.media_connections_kept
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())


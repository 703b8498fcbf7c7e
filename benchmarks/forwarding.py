"""Forwarding benchmark: one publisher -> N subscribers through a real urok server.

    .venv/bin/python -m benchmarks.forwarding                      # N = 1, 10, 50, 100
    .venv/bin/python -m benchmarks.forwarding --subs 50 --window 20
    .venv/bin/python -m benchmarks.forwarding --large               # adds N = 200, 300

For each N a fresh server (``urok serve --dev`` in a subprocess, so its RSS is per N) gets a room
created over REST; a host publishes pre-encoded VP8 (640x360, 30 fps, ~1 Mbit/s, a keyframe every
2 s) and Opus (20 ms), encoded once (:mod:`benchmarks.media_prep`) and looped, so the publisher
only packetizes and encrypts.  N participants join over the WebSocket signalling and answer the
server's ``subscriber_offer``; they count RTP packets right after SRTP (a hook on aiortc's
``RTCDtlsTransport._handle_rtp_data``: no depacketizer, jitter buffer, decoder or RTCP feedback),
except subscriber 0, which decodes the video (its frame rate proves media flows).  After a warm-up
the benchmark measures a window and prints, per N: forwarded packets/s (summed over subscribers),
the expected rate (the publisher's RTP rate x N), loss, the server's CPU-seconds per second and
CPU microseconds per forwarded packet (``/proc/<pid>/stat`` utime+stime, summed over the server's
process tree), its RSS, and the generator's own CPU.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import av
import jwt
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from benchmarks.media_prep import EncodedMedia, MediaSpec, load_media

log = logging.getLogger("urok.bench")

DEFAULT_SUBS = (1, 10, 50, 100)
LARGE_SUBS = (200, 300)
DEV_KEY, DEV_SECRET = "devkey", "devsecret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOPBACK = "127.0.0.1"
CHECKOUT = Path(__file__).resolve().parent.parent


def checkout_version() -> str:
    """``git describe --always --dirty`` of the server's checkout (what was measured)."""
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


# ---- /proc ---------------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime, [12] stime,
    [13] cutime, [14] cstime (all in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _status_value(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (a server may run worker processes)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(_stat(int(name))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float  # utime + stime of the live processes + cutime + cstime (reaped children)
    sys_s: float  # the stime part (kernel: sockets)
    rss_kb: int
    threads: int
    procs: int


def sample_tree(root: int) -> ProcSample:
    cpu, sys_cpu, rss, threads, pids = 0.0, 0.0, 0, 0, process_tree(root)
    for pid in pids:
        try:
            v = _stat(pid)
            cpu += sum(int(x) for x in v[11:15]) / CLK_TCK
            sys_cpu += (int(v[12]) + int(v[14])) / CLK_TCK
            rss += _status_value(pid, "VmRSS")
            threads += _status_value(pid, "Threads")
        except (OSError, ValueError):
            if pid == root:
                raise
    return ProcSample(cpu, sys_cpu, rss, threads, len(pids))


def machine_busy_s() -> float:
    """CPU-seconds the whole machine has been busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


async def wait_quiet(max_wait_s: float, threshold: float = 0.25, step_s: float = 2.0) -> float:
    """Wait (at most ``max_wait_s``) until the machine's load drops below ``threshold`` cores; other
    tenants of the machine disturb the figures.  Returns the last load seen."""
    deadline = time.monotonic() + max_wait_s
    while True:
        b0 = machine_busy_s()
        await asyncio.sleep(step_s)
        load = (machine_busy_s() - b0) / step_s
        if load < threshold or time.monotonic() >= deadline:
            return load


def udp_receive_drops() -> int:
    """UDP datagrams the kernel dropped for want of receive-buffer room (this network namespace)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:], strict=True)).get("RcvbufErrors", 0))


# ---- the server under test ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``urok serve --dev`` in a subprocess (``python -m signaling``, the console script's code)."""

    proc: subprocess.Popen[bytes]
    base: str
    log_path: Path
    data_dir: Path | None = None  # removed by stop()

    @classmethod
    def launch(cls, *, port: int | None = None, args: Sequence[str] = (), log_path: Path | None = None
               ) -> ServerProcess:
        port = port or free_port()
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="urok-bench-server-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        cmd = [sys.executable, "-m", "signaling", "serve", "--dev", "--host", LOOPBACK, "--port", str(port), *args]
        # a free media port (one shared ICE-lite port is the default) and a database of its own (the
        # default SQLite store under ./data): runs side by side, or one after another, share nothing
        data_dir = tempfile.mkdtemp(prefix="urok-bench-data-")
        env = {"UROK_RTC_UDP_PORT": "0", "UROK_DATA_DIR": data_dir, **os.environ}
        with log_path.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=CHECKOUT, env=env)
        return cls(proc, f"http://{LOOPBACK}:{port}", log_path, Path(data_dir))

    @classmethod
    async def start(cls, *, port: int | None = None, args: Sequence[str] = (), log_path: Path | None = None,
                    timeout: float = 30.0) -> ServerProcess:
        """Launch and wait until ``GET /healthz`` answers 200."""
        server = cls.launch(port=port, args=args, log_path=log_path)
        try:
            await server._wait_healthy(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    async with http.get(self.base + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (clean shutdown), SIGKILL after 10 s; then any descendant it left behind."""
        if self.proc.poll() is None:
            try:
                tree = process_tree(self.proc.pid)[1:]
            except OSError:
                tree = []
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            for pid in tree:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# ---- loopback ICE ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """Our peer connections gather one host candidate, 127.0.0.1 (aioice skips loopback by itself)."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [LOOPBACK] if use_ipv4 else []
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def rtc_config() -> Any:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)  # no STUN


# ---- REST and tokens -----------------------------------------------------------------------------------------
def admin_token(key: str = DEV_KEY, secret: str = DEV_SECRET, ttl_s: int = 6 * 3600) -> str:
    now = int(time.time())
    with warnings.catch_warnings():  # the dev secret is short on purpose
        warnings.simplefilter("ignore")
        return jwt.encode({"iss": key, "sub": "forwarding-bench", "admin": True, "iat": now, "exp": now + ttl_s},
                          secret, algorithm="HS256")


class Rest:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base = http, base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.http.request(method, self.base + path, json=body, headers=self.headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as r:
            text = await r.text()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} -> {r.status}: {text[:300]}")
            result: dict[str, Any] = json.loads(text) if text else {}
            return result

    async def create_room(self) -> str:
        room = await self.call("POST", "/v1/rooms", {"name": "forwarding benchmark", "guest_policy": "ALWAYS_ACCEPT"})
        return str(room["room_id"])

    async def token(self, room_id: str, identity: str, role: str) -> str:
        r = await self.call("POST", f"/v1/rooms/{room_id}/tokens", {
            "identity": identity, "name": identity, "role": role, "registered": True,
            "family_name": "Bench", "given_name": identity})
        return str(r["token"])


# ---- publisher media -----------------------------------------------------------------------------------
class PacketTrack(MediaStreamTrack):
    """Yields pre-encoded ``av.Packet`` objects in real time, looping; aiortc packetizes them."""

    def __init__(self, kind: str, payloads: list[bytes], interval_s: float, clock_rate: int) -> None:
        super().__init__()
        self.kind = kind
        self._payloads = payloads
        self._interval = interval_s
        self._time_base = fractions.Fraction(1, clock_rate)
        self._ticks = round(interval_s * clock_rate)
        self._i = 0
        self._t0: float | None = None

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._i * self._interval
        if due > now:
            await asyncio.sleep(due - now)
        packet = av.Packet(self._payloads[self._i % len(self._payloads)])
        packet.pts, packet.time_base = self._i * self._ticks, self._time_base
        self._i += 1
        return packet


def media_tracks(media: EncodedMedia) -> tuple[PacketTrack, PacketTrack]:
    spec = media.spec
    audio = PacketTrack("audio", media.audio, spec.ptime_ms / 1000, 48_000)
    video = PacketTrack("video", [data for data, _ in media.video], 1 / spec.fps, 90_000)
    return audio, video


# ---- participants --------------------------------------------------------------------------------------------
@dataclass
class Counter:
    """What one subscriber received (RTP after SRTP, RTCP, decoded video frames)."""

    rtp: int = 0
    rtp_bytes: int = 0
    rtcp: int = 0
    frames: int = 0
    streams: dict[int, list[int]] = field(default_factory=dict)  # SSRC -> [first, highest] extended seq
    last_ms: int = 0  # arrival time of the last packet (aiortc's clock, ms)
    max_gap_ms: int = 0  # the longest pause between two packets since the last snapshot

    def count(self, data: bytes, arrival_ms: int) -> None:
        self.rtp += 1
        self.rtp_bytes += len(data)
        if self.last_ms and arrival_ms - self.last_ms > self.max_gap_ms:
            self.max_gap_ms = arrival_ms - self.last_ms
        self.last_ms = arrival_ms
        if len(data) < 12:
            return
        ssrc = int.from_bytes(data[8:12], "big")
        seq = (data[2] << 8) | data[3]
        stream = self.streams.get(ssrc)
        if stream is None:
            self.streams[ssrc] = [seq, seq]
            return
        delta = (seq - stream[1]) & 0xFFFF
        if 0 < delta < 0x8000:  # newer (a reordered or repeated packet changes nothing)
            stream[1] += delta

    def seq_span(self) -> int:
        """Packets the sender numbered so far (from the first one seen): the sequence numbers tell
        received-but-counted from lost, whatever the timing of the snapshots."""
        return sum(last - first + 1 for first, last in self.streams.values())


def _is_loopback_candidate(line: str) -> bool:
    parts = line.removeprefix("a=").removeprefix("candidate:").split()
    return len(parts) > 4 and parts[4].startswith("127.")


class Participant:
    """One participant over ``/v1/rtc``: requests with ids, the events it needs (``welcome``,
    ``subscriber_offer``, ``ice_candidate``), a publisher peer connection when it publishes and a
    subscriber peer connection that answers every ``subscriber_offer`` in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, decode: bool = False,
                 counter: Counter | None = None) -> None:
        self.ws = ws
        self.decode = decode
        self.counter = counter or Counter()
        self.pub: Any = None
        self.sub: Any = RTCPeerConnection(rtc_config())
        self.participant_id = ""
        self.sent_rtp = 0  # RTP packets our publisher connection sent
        self.joined = asyncio.Event()
        self.offers = 0
        self.answered = 0
        self.tracks: dict[str, str] = {}  # track id -> kind, from track_published
        self.subscribed = False  # asked for the tracks with `subscribe` (a large room)
        self.error: str | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._offers: asyncio.Queue[str] = asyncio.Queue()
        self._early: dict[str, list[dict[str, Any]]] = {"publisher": [], "subscriber": []}
        self._hooked: set[int] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        if decode:
            self.sub.on("track", self._on_track)
        self._tasks.append(asyncio.create_task(self._read()))
        self._tasks.append(asyncio.create_task(self._answer_offers()))

    @classmethod
    async def join(cls, http: aiohttp.ClientSession, base: str, token: str, timeout: float, **kw: Any) -> Participant:
        ws = await http.ws_connect(base.replace("http", "ws", 1) + f"/v1/rtc?token={token}", heartbeat=None,
                                   max_msg_size=0)
        p = cls(ws, **kw)
        await p.wait(p.joined.is_set, timeout, "welcome (state joined)")
        return p

    # ---- signalling ----
    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                m = json.loads(msg.data)
                event = m.get("event")
                if event is None:
                    fut = self._pending.pop(m.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(m)
                elif event == "welcome":
                    self.participant_id = str(m.get("participant_id", ""))
                    if m.get("state") == "joined":
                        self.joined.set()
                elif event == "subscriber_offer":
                    self.offers += 1
                    self._offers.put_nowait(str(m["sdp"]))
                elif event == "ice_candidate":
                    await self._candidate(m)
                elif event == "track_published":
                    self.tracks[str(m.get("track_id"))] = str(m.get("kind"))
                elif event == "track_unpublished":
                    self.tracks.pop(str(m.get("track_id")), None)
                elif event in ("denied", "removed", "room_ended"):
                    self.error = f"event {event}"
                if event is not None:
                    self._on_event(str(event), m)
                self._changed.set()
        except Exception as e:  # recorded for wait()
            self.error = f"reading the socket: {e!r}"
        finally:
            self.error = self.error or f"socket closed ({self.ws.close_code})"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(self.error))
            self._changed.set()

    def _on_event(self, event: str, m: dict[str, Any]) -> None:
        """Subclasses follow more events here (called after the common handling)."""

    async def request(self, type_: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.ws.send_str(json.dumps({"id": rid, "type": type_, **fields}))
            r = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)
        if not r.get("ok"):
            raise RuntimeError(f"{type_} refused: {r.get('error')}")
        return r

    async def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if self.error:
                raise RuntimeError(f"waiting for {what}: {self.error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {what} in {timeout:.0f} s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def _candidate(self, m: dict[str, Any]) -> None:
        target = "subscriber" if m.get("target") == "subscriber" else "publisher"
        pc = self.sub if target == "subscriber" else self.pub
        if pc is None or pc.remoteDescription is None:
            self._early[target].append(m)
            return
        cand = m.get("candidate")
        if not isinstance(cand, dict) or not cand.get("candidate"):
            return  # end of candidates
        line = str(cand["candidate"])
        if not _is_loopback_candidate(line):
            return
        c = candidate_from_sdp(line.removeprefix("a=").removeprefix("candidate:"))
        c.sdpMid, c.sdpMLineIndex = cand.get("sdpMid"), cand.get("sdpMLineIndex") or 0
        with contextlib.suppress(Exception):
            await pc.addIceCandidate(c)

    async def _flush(self, target: str) -> None:
        early, self._early[target] = self._early[target], []
        for m in early:
            await self._candidate(m)

    async def _answer_offers(self) -> None:
        """The server sends no new offer before the previous one is answered: one at a time."""
        while True:
            sdp = await self._offers.get()
            try:
                await self.sub.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                self._hook_counters()
                await self._flush("subscriber")
                await self.sub.setLocalDescription(await self.sub.createAnswer())
                await self.request("subscriber_answer", sdp=self.sub.localDescription.sdp)
                self.answered += 1
            except Exception as e:  # recorded for wait()
                self.error = f"answering subscriber_offer: {e!r}"
            self._changed.set()

    # ---- media ----
    def _hook_counters(self) -> None:
        """Count RTP/RTCP at the DTLS transport, right after SRTP.  Counting subscribers stop there
        (nothing above runs: no depacketizer, jitter buffer, decoder, receiver reports); the decoding
        one passes every packet on."""
        counter = self.counter
        for transceiver in self.sub.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None or id(dtls) in self._hooked:
                continue
            self._hooked.add(id(dtls))
            if self.decode:
                rtp_next, rtcp_next = dtls._handle_rtp_data, dtls._handle_rtcp_data

                async def rtp_pass(data: bytes, arrival_time_ms: int, _next: Any = rtp_next) -> None:
                    counter.count(data, arrival_time_ms)
                    await _next(data, arrival_time_ms)

                async def rtcp_pass(data: bytes, _next: Any = rtcp_next) -> None:
                    counter.rtcp += 1
                    await _next(data)

                dtls._handle_rtp_data, dtls._handle_rtcp_data = rtp_pass, rtcp_pass
            else:
                async def rtp_count(data: bytes, arrival_time_ms: int) -> None:
                    counter.count(data, arrival_time_ms)

                async def rtcp_count(data: bytes) -> None:
                    counter.rtcp += 1

                dtls._handle_rtp_data, dtls._handle_rtcp_data = rtp_count, rtcp_count

    def _on_track(self, track: Any) -> None:
        if track.kind == "video":
            self._tasks.append(asyncio.create_task(self._decode(track)))

    async def _decode(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.counter.frames += 1

    def describe(self) -> str:
        """The subscriber side's state, for a failure message."""
        return (f"offers {self.offers}, answered {self.answered}, receiving {sorted(self.receiving())}, "
                f"tracks published {sorted(self.tracks.values())}, subscribed {self.subscribed}, "
                f"connection {self.sub.connectionState}, ICE {self.sub.iceConnectionState}, "
                f"ICE gathering {self.sub.iceGatheringState}, RTP counted {self.counter.rtp}"
                + (f", error {self.error}" if self.error else ""))

    def receiving(self) -> set[str]:
        """Kinds the subscriber connection has negotiated to receive."""
        if not self.answered:
            return set()
        return {t.kind for t in self.sub.getTransceivers() if t.currentDirection in ("recvonly", "sendrecv")}

    async def wait_receiving(self, timeout: float) -> None:
        """Until the subscriber connection receives audio and video.  A large room sends a newcomer
        only the video it asks for: after 1 s without it, ask (`subscribe`) for every published track."""
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            return self.receiving() >= {"audio", "video"} and self.sub.connectionState == "connected"

        with contextlib.suppress(RuntimeError):
            await self.wait(ready, min(1.0, timeout), "")
        if not ready() and self.tracks:
            tracks = [{"track_id": tid, "quality": "high"} for tid in self.tracks]
            await self.request("subscribe", max(1.0, deadline - time.monotonic()), tracks=tracks)
            self.subscribed = True
        await self.wait(ready, max(0.1, deadline - time.monotonic()), "subscriber connection receiving audio and video")

    async def publish(self, tracks: Sequence[MediaStreamTrack], timeout: float) -> None:
        """Publish ``tracks``: prepared packets (PacketTrack) or live tracks that aiortc encodes."""
        self.pub = RTCPeerConnection(rtc_config())
        for track in tracks:
            self.pub.addTransceiver(track, direction="sendonly")
        await self.pub.setLocalDescription(await self.pub.createOffer())
        sources = {t.mid: "microphone" if t.kind == "audio" else "camera" for t in self.pub.getTransceivers()}
        r = await self.request("publish", timeout, sdp=self.pub.localDescription.sdp, sources=sources)
        await self.pub.setRemoteDescription(RTCSessionDescription(str(r["sdp"]), "answer"))
        self._hook_sent()
        await self._flush("publisher")
        await self.wait(lambda: self.pub.connectionState == "connected", timeout, "publisher connection")

    def _hook_sent(self) -> None:
        """Count the RTP packets the publisher sends, synchronously (a snapshot reads the counter at
        the same instant as the subscribers' counters)."""
        for dtls in {id(t.sender.transport): t.sender.transport for t in self.pub.getTransceivers()}.values():
            send = dtls._send_rtp

            async def counted(data: bytes, _send: Any = send) -> None:
                if len(data) > 1 and not 192 <= data[1] <= 223:  # not RTCP
                    self.sent_rtp += 1
                await _send(data)

            dtls._send_rtp = counted

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)
        for pc in (self.sub, self.pub):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), 5)


# ---- subscriber groups (in this process or a worker process) ---------------------------------------------
@dataclass
class GroupSnapshot:
    rtp: list[int]  # per subscriber
    rtp_bytes: int
    seq_span: int  # packets numbered by the server (see Counter.seq_span), all subscribers
    max_gap_ms: int  # the longest pause in any subscriber's packets since the previous snapshot
    frames: int
    cpu_s: float  # this process's CPU time
    t: float


class SubscriberGroup:
    """Subscribers that one process runs: joins them (bounded concurrency), snapshots their counters."""

    def __init__(self, base: str, room_id: str, admin: str, names: Sequence[str], *, decode_first: bool,
                 concurrency: int = 10, join_timeout: float = 30.0) -> None:
        self.base, self.room_id, self.admin, self.names = base, room_id, admin, list(names)
        self.decode_first, self.concurrency, self.join_timeout = decode_first, concurrency, join_timeout
        self.counters = [Counter() for _ in self.names]
        self.members: list[Participant] = []
        self.failures: list[str] = []
        self.http: aiohttp.ClientSession | None = None

    async def join_all(self) -> int:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        rest = Rest(self.http, self.base, self.admin)
        sem = asyncio.Semaphore(self.concurrency)

        async def one(i: int) -> None:
            async with sem:
                assert self.http is not None
                p: Participant | None = None
                try:
                    token = await rest.token(self.room_id, self.names[i], "participant")
                    p = await Participant.join(self.http, self.base, token, self.join_timeout,
                                               decode=self.decode_first and i == 0, counter=self.counters[i])
                    self.members.append(p)
                    await p.wait_receiving(self.join_timeout)
                except Exception as e:  # counted as not connected
                    self.failures.append(f"{self.names[i]}: {e}" + (f" ({p.describe()})" if p else ""))

        await asyncio.gather(*(one(i) for i in range(len(self.names))))
        return len(self.names) - len(self.failures)

    def snapshot(self) -> GroupSnapshot:
        max_gap = max((c.max_gap_ms for c in self.counters), default=0)
        for c in self.counters:
            c.max_gap_ms = 0
        return GroupSnapshot(rtp=[c.rtp for c in self.counters], rtp_bytes=sum(c.rtp_bytes for c in self.counters),
                             max_gap_ms=max_gap,
                             seq_span=sum(c.seq_span() for c in self.counters),
                             frames=sum(c.frames for c in self.counters), cpu_s=time.process_time(),
                             t=time.monotonic())

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.members), return_exceptions=True)
        if self.http is not None:
            await self.http.close()


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def _worker_main(conn: Connection, base: str, room_id: str, admin: str, names: list[str], concurrency: int) -> None:
    """A generator process: joins its share of subscribers, answers 'snap' and 'stop' on the pipe."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    _install_uvloop()

    async def main() -> None:
        group = SubscriberGroup(base, room_id, admin, names, decode_first=False, concurrency=concurrency)
        loop = asyncio.get_running_loop()
        try:
            connected = await group.join_all()
            conn.send(("ready", connected, group.failures[:5]))
            while True:
                cmd = await loop.run_in_executor(None, conn.recv)
                if cmd == "snap":
                    conn.send(("snap", asdict(group.snapshot())))
                elif cmd == "stop":
                    break
        finally:
            await group.close()
        conn.send(("bye",))

    with loopback_ice():
        asyncio.run(main())


async def pipe_recv(conn: Connection, proc: multiprocessing.process.BaseProcess, timeout: float) -> Any:
    """The next message from a generator process, waiting without blocking the event loop; raises
    RuntimeError when none comes within ``timeout`` s or the process died."""
    deadline = time.monotonic() + timeout
    while not conn.poll():
        if time.monotonic() > deadline or not proc.is_alive():
            raise RuntimeError("a generator process did not answer")
        await asyncio.sleep(0.005)
    return conn.recv()


class WorkerHandle:
    def __init__(self, base: str, room_id: str, admin: str, names: list[str], concurrency: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, base, room_id, admin, names, concurrency),
                                daemon=True)
        self.proc.start()
        child.close()

    async def recv(self, timeout: float) -> Any:
        return await pipe_recv(self.conn, self.proc, timeout)

    def ask_snapshot(self) -> None:
        self.conn.send("snap")

    async def snapshot(self) -> GroupSnapshot:
        """The answer to :meth:`ask_snapshot`."""
        msg = await self.recv(10)
        return GroupSnapshot(**msg[1])

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send("stop")
            await self.recv(20)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# ---- one measurement -------------------------------------------------------------------------------------------
@dataclass
class PointResult:
    """One N: what the subscribers got and what it cost the server, over the window."""

    subs: int
    connected: int
    window_s: float
    pub_pps: float  # the publisher's RTP packets per second
    fwd_pps: float  # RTP packets per second received by all subscribers together
    expected_pps: float  # pub_pps x subs
    loss_pct: float  # 1 - fwd / expected: dropped packets and subscribers that never connected
    seq_loss_pct: float  # gaps in the sequence numbers the connected subscribers received
    max_gap_ms: int  # the longest pause between two packets of one subscriber during the window
    min_sub_pps: float
    max_sub_pps: float
    fwd_mbps: float
    decoded_fps: float  # subscriber 0's decoded video frames per second
    server_cpu_s_per_s: float
    server_us_per_pkt: float | None
    server_sys_pct: float  # the kernel's share (stime) of the server's CPU
    server_rss_mb: float
    server_threads: int
    server_procs: int
    gen_cpu_s_per_s: float
    gen_procs: int
    other_cpu_s_per_s: float  # the rest of the machine (other tenants)
    udp_drops_per_s: float  # datagrams dropped by the kernel for want of receive-buffer room
    join_s: float
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def disturbances(self) -> list[str]:
        """Why this row's figures may not be the server's alone (rerun it when the list is not empty)."""
        notes = []
        if self.other_cpu_s_per_s > 0.5:
            notes.append(f"other load on the machine {self.other_cpu_s_per_s:.2f} cores")
        if self.max_gap_ms > 250:
            notes.append(f"a subscriber's packets paused {self.max_gap_ms} ms")
        if self.connected < self.subs:
            notes.append(f"{self.subs - self.connected} subscriber(s) did not connect")
        expected = self.pub_pps * self.connected
        backlog = 100 * (1 - self.fwd_pps / expected) - self.seq_loss_pct if expected else 0.0
        if backlog > 1.0:
            notes.append(f"{backlog:.1f}% of the packets were not yet counted at the window's end but were not "
                         "lost (a backlog: a process did not get the CPU)")
        if self.fwd_pps > 1.01 * self.expected_pps:
            notes.append("more packets counted than the publisher sent x N (a backlog from before the window)")
        if self.udp_drops_per_s > 0:
            notes.append(f"{self.udp_drops_per_s:.0f} datagrams/s dropped by the kernel (a receive buffer was full)")
        return notes


@dataclass
class BenchConfig:
    window_s: float = 10.0
    warmup_s: float = 5.0
    gen_procs: int = 0  # 0: 1 below 100 subscribers, else 2
    concurrency: int = 10
    join_timeout_s: float = 30.0
    server_args: tuple[str, ...] = ()
    media: MediaSpec = field(default_factory=MediaSpec)
    log_dir: Path | None = None
    quiet_wait_s: float = 0.0  # before each N: wait up to this long for other load to drop

    def procs_for(self, n: int) -> int:
        procs = self.gen_procs or (1 if n < 100 else 2)
        return max(1, min(procs, n))


async def _run_against(server: ServerProcess, n: int, cfg: BenchConfig, media: EncodedMedia) -> PointResult:
    admin = admin_token()
    workers: list[WorkerHandle] = []
    async with aiohttp.ClientSession() as http:
        rest = Rest(http, server.base, admin)
        room_id = await rest.create_room()
        host = await Participant.join(http, server.base, await rest.token(room_id, "bench-host", "host"),
                                      cfg.join_timeout_s)
        local: SubscriberGroup | None = None
        try:
            await host.publish(media_tracks(media), cfg.join_timeout_s)
            names = [f"bench-sub-{i}" for i in range(n)]
            procs = cfg.procs_for(n)
            shares = [names[i::procs] for i in range(procs)]  # subscriber 0 (the decoder) stays here
            t0 = time.monotonic()
            workers = [WorkerHandle(server.base, room_id, admin, share, cfg.concurrency) for share in shares[1:]]
            local = SubscriberGroup(server.base, room_id, admin, shares[0], decode_first=True,
                                    concurrency=cfg.concurrency, join_timeout=cfg.join_timeout_s)
            connected = await local.join_all()
            failures = list(local.failures)
            for w in workers:
                msg = await w.recv(cfg.join_timeout_s * (2 + n // max(1, cfg.concurrency)))
                connected += int(msg[1])
                failures += list(msg[2])
            join_s = time.monotonic() - t0
            if failures:
                log.warning("N=%d: %d subscriber(s) did not connect: %s", n, len(failures), failures[:3])
            await asyncio.sleep(cfg.warmup_s)

            async def snap() -> tuple[list[GroupSnapshot], int, ProcSample, float, int]:
                assert local is not None
                for w in workers:  # they take theirs as we take ours
                    w.ask_snapshot()
                snaps, sent = [local.snapshot()], host.sent_rtp  # the same instant: no await between
                srv, busy, drops = sample_tree(server.pid), machine_busy_s(), udp_receive_drops()
                snaps += [await w.snapshot() for w in workers]
                return snaps, sent, srv, busy, drops

            s0, pub0, srv0, busy0, drops0 = await snap()
            await asyncio.sleep(cfg.window_s)
            s1, pub1, srv1, busy1, drops1 = await snap()
        finally:
            for w in workers:
                await w.stop()
            if local is not None:
                await local.close()
            await host.close()
        with contextlib.suppress(Exception):
            await rest.call("DELETE", f"/v1/rooms/{room_id}")

    dt = s1[0].t - s0[0].t
    per_sub = [b - a for x, y in zip(s0, s1, strict=True) for a, b in zip(x.rtp, y.rtp, strict=True)]
    pkts = sum(per_sub)
    span = sum(y.seq_span - x.seq_span for x, y in zip(s0, s1, strict=True))
    pub_pps = (pub1 - pub0) / dt
    expected = pub_pps * n
    gen_cpu = sum(y.cpu_s - x.cpu_s for x, y in zip(s0, s1, strict=True))
    srv_cpu = srv1.cpu_s - srv0.cpu_s
    return PointResult(
        subs=n, connected=connected, window_s=round(dt, 2), pub_pps=pub_pps, fwd_pps=pkts / dt,
        expected_pps=expected, loss_pct=max(0.0, 100 * (1 - pkts / dt / expected)) if expected else 100.0,
        min_sub_pps=min(per_sub) / dt if per_sub else 0.0, max_sub_pps=max(per_sub) / dt if per_sub else 0.0,
        fwd_mbps=sum(y.rtp_bytes - x.rtp_bytes for x, y in zip(s0, s1, strict=True)) * 8 / dt / 1e6,
        seq_loss_pct=max(0.0, 100 * (1 - pkts / span)) if span else 100.0,
        max_gap_ms=max(y.max_gap_ms for y in s1),
        decoded_fps=(s1[0].frames - s0[0].frames) / dt,
        server_cpu_s_per_s=srv_cpu / dt, server_us_per_pkt=srv_cpu * 1e6 / pkts if pkts else None,
        server_sys_pct=100 * (srv1.sys_s - srv0.sys_s) / srv_cpu if srv_cpu else 0.0,
        server_rss_mb=srv1.rss_kb / 1024, server_threads=srv1.threads, server_procs=srv1.procs,
        gen_cpu_s_per_s=gen_cpu / dt, gen_procs=1 + len(workers),
        other_cpu_s_per_s=max(0.0, (busy1 - busy0) - srv_cpu - gen_cpu) / dt,
        udp_drops_per_s=(drops1 - drops0) / dt, join_s=round(join_s, 1),
        failures=failures[:5],
    )


async def run_point(n: int, cfg: BenchConfig | None = None, media: EncodedMedia | None = None) -> PointResult:
    """A fresh server, one publisher, ``n`` subscribers, one measured window; the server is stopped after."""
    cfg = cfg or BenchConfig()
    media = media or load_media(cfg.media)
    log_path = cfg.log_dir / f"server-N{n}.log" if cfg.log_dir else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.quiet_wait_s > 0:
        load = await wait_quiet(cfg.quiet_wait_s)
        log.warning("N=%d: background load before the run: %.2f cores", n, load)
    with loopback_ice():
        server = await ServerProcess.start(args=cfg.server_args, log_path=log_path)
        try:
            return await _run_against(server, n, cfg, media)
        finally:
            server.stop()


# ---- table ----------------------------------------------------------------------------------------------
COLUMNS: list[tuple[str, Callable[[PointResult], str]]] = [
    ("N", lambda r: f"{r.subs}"),
    ("conn", lambda r: f"{r.connected}"),
    ("fwd pkt/s", lambda r: f"{r.fwd_pps:.0f}"),
    ("expect", lambda r: f"{r.expected_pps:.0f}"),
    ("loss %", lambda r: f"{r.loss_pct:.2f}"),
    ("seq loss %", lambda r: f"{r.seq_loss_pct:.2f}"),
    ("max gap ms", lambda r: f"{r.max_gap_ms}"),
    ("fwd Mb/s", lambda r: f"{r.fwd_mbps:.1f}"),
    ("dec fps", lambda r: f"{r.decoded_fps:.1f}"),
    ("SFU cpu/s", lambda r: f"{r.server_cpu_s_per_s:.3f}"),
    ("us/fwd pkt", lambda r: "-" if r.server_us_per_pkt is None else f"{r.server_us_per_pkt:.1f}"),
    ("sys %", lambda r: f"{r.server_sys_pct:.0f}"),
    ("SFU RSS MB", lambda r: f"{r.server_rss_mb:.1f}"),
    ("thr", lambda r: f"{r.server_threads}"),
    ("gen cpu/s", lambda r: f"{r.gen_cpu_s_per_s:.3f}"),
    ("gen procs", lambda r: f"{r.gen_procs}"),
    ("other cpu/s", lambda r: f"{r.other_cpu_s_per_s:.2f}"),
    ("udp drop/s", lambda r: f"{r.udp_drops_per_s:.0f}"),
]


def format_table(results: Sequence[PointResult]) -> str:
    rows = [[name for name, _ in COLUMNS]] + [[fmt(r) for _, fmt in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    ordered = sorted((r for r in results if r.server_us_per_pkt is not None), key=lambda r: r.subs)
    marginal = [
        f"  N {a.subs:>4} -> {b.subs:>4}: "
        f"{(b.server_cpu_s_per_s - a.server_cpu_s_per_s) * 1e6 / (b.fwd_pps - a.fwd_pps):.1f} us/pkt"
        for a, b in itertools.pairwise(ordered) if b.fwd_pps > a.fwd_pps
    ]
    if marginal:
        lines += ["", "marginal server cost per extra forwarded packet:", *marginal]
    notes = [f"  N={r.subs}: {'; '.join(r.disturbances())}" for r in results if r.disturbances()]
    if notes:
        lines += ["", "disturbed (rerun these):", *notes]
    return "\n".join(lines)


def parse_subs(text: str) -> list[int]:
    subs = [int(x) for x in text.replace(" ", ",").split(",") if x]
    if not subs or any(n < 1 or n > 1999 for n in subs):
        raise argparse.ArgumentTypeError("subscriber counts are 1..1999 (the room holds 2000 with the host)")
    return subs


async def run_all(subs: Sequence[int], cfg: BenchConfig, *, on_result: Callable[[PointResult], Awaitable[None]]
                  | None = None) -> list[PointResult]:
    media = load_media(cfg.media)
    results = []
    for n in subs:
        result = await run_point(n, cfg, media)
        results.append(result)
        if on_result is not None:
            await on_result(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.forwarding", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subs", type=parse_subs, default=list(DEFAULT_SUBS), help="subscriber counts, e.g. 1,10,50,100")
    ap.add_argument("--large", action="store_true", help=f"add N = {', '.join(map(str, LARGE_SUBS))}")
    ap.add_argument("--window", type=float, default=10.0, help="measured seconds per N (default 10)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after the last subscriber joined (default 5)")
    ap.add_argument("--gen-procs", type=int, default=0,
                    help="generator processes (default: 1 below 100 subscribers, else 2)")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each N, wait up to this many seconds for other CPU load to drop below "
                         "0.25 cores (default 30; 0: do not wait)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra `urok serve` argument (repeatable)")
    ap.add_argument("--log-dir", type=Path, help="keep each server's log here (server-N<n>.log)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per N (RESULT {...})")
    args = ap.parse_args(argv)
    subs = list(args.subs) + ([n for n in LARGE_SUBS if n not in args.subs] if args.large else [])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiortc").setLevel(logging.ERROR)  # VP8 errors before the first keyframe are expected
    cfg = BenchConfig(window_s=args.window, warmup_s=args.warmup, gen_procs=args.gen_procs,
                      server_args=tuple(args.server_arg), log_dir=args.log_dir, quiet_wait_s=args.quiet_wait)
    media = load_media(cfg.media)
    print(f"server: {CHECKOUT} at {checkout_version()}, urok serve --dev {' '.join(cfg.server_args)}".rstrip(),
          flush=True)
    print(f"load: 1 publisher, {media.describe()}; window {cfg.window_s:g} s, warm-up {cfg.warmup_s:g} s; "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)

    async def show(r: PointResult) -> None:
        print(f"N={r.subs}: {r.connected} connected, {r.fwd_pps:.0f} pkt/s, loss {r.loss_pct:.2f}%, "
              f"{r.server_us_per_pkt or 0:.1f} us/pkt", flush=True)
        if args.json:
            print("RESULT " + r.to_json(), flush=True)

    _install_uvloop()
    results = asyncio.run(run_all(subs, cfg, on_result=show))
    print()
    print(format_table(results))
    return 0 if all(r.connected == r.subs for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

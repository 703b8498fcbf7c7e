"""Noise suppression in worker processes: each with its own GIL, so a busy event loop cannot starve it.

Measured (benchmarks/noise_suppression.py, this 2-core machine): on the audio *threads* a cleaned
20 ms frame took ~1.5 ms of CPU (now ~0.6 ms: media/rnnoise.py) but several GIL hand-overs
(decode, RNNoise, encode); with
the event loop busy in Python (forwarding a large lesson, the aiortc clients of the tests) each
hand-over waits for the loop's switch interval (5 ms), and a frame took 21 ms of wall time with the
loop 50% busy, 48 ms with it 80% busy: the suppressor fell behind and dropped.  A process costs a
pipe write and read per packet each way (~100 bytes, a few microseconds) and keeps up whatever the
loop does, as long as a core is free.

:class:`CleanStream` is one microphone's state (Opus decoder with concealment -> RNNoise -> Opus
encoder), used by a thread (media/noise_suppressor.py) or in a child here.  :class:`AudioProcesses`
is the app's pool (``audio_workers`` processes, started at the first stream, spawned: no fork of a
process with threads); :meth:`AudioProcesses.lane` is one stream's way through it.  Packets go to
the child in order; each is answered (its cleaned frames, possibly none) so the parent knows how
many are on their way: more than the lane's limit, or more bytes than :data:`PIPE_BUDGET` for the
child (30 microphones at once), and the packet is dropped (counted) rather than the loop blocking
on a full pipe.  A child that dies closes its lanes (``on_error``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
import multiprocessing
import select
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import numpy.typing as npt

from .opus_codec import OpusEncoder
from .rnnoise import Denoiser
from .rtp_opus_decoder import RTP_CLOCK, RtpOpusDecoder

__all__ = ["FRAME", "AudioProcesses", "CleanFrame", "CleanStream", "ProcessLane", "audio_level", "clean_encoder"]

log = logging.getLogger("urok.media")

FRAME = 960  # 20 ms at 48 kHz: one output packet
# Opus payload, t (s), audio level (-dBov), voice probability, when its packet arrived (monotonic)
CleanFrame = tuple[bytes, float, int, float, float]

_OPEN, _PACKET, _CLOSE, _PING = 0, 1, 2, 3
_REQUEST = struct.Struct("<BId")  # kind, stream id, arrived
_REPLY = struct.Struct("<IHdII")  # stream id, frames, busy (s), lost, garbage (the decoder's counts)
_FRAME = struct.Struct("<dBfdH")  # t, level, probability, arrived, payload length
PIPE_BUDGET = 48 * 1024  # packet bytes a child may have unread (a Linux pipe holds 64 KiB)


def clean_encoder() -> OpusEncoder:
    """The cleaned microphone's encoder.  ``audio``: RNNoise cleaned it already (libopus' speech
    pre-processing would only cost fidelity).  Complexity 1: measured on real speech through
    publisher Opus -> RNNoise -> this encoder (benchmarks/noise_suppression.py), the same pause
    SNR, spectral SNR (within 1 dB) and SI-SDR (within 0.1 dB) as complexity 5, for half the CPU
    (84 against 166 us per 20 ms: an eighth of the whole per-stream budget).  Still SILK/hybrid
    (signal: voice), which is what carries the in-band FEC (CELT-only would not)."""
    return OpusEncoder(application="audio", complexity=1)


def audio_level(pcm: npt.NDArray[np.int16]) -> int:
    """RFC 6464 level of a frame: -dBov, 0 (loudest) .. 127 (silence)."""
    x = pcm.astype(np.float32)
    power = float(np.dot(x, x)) / max(1, len(x))
    if power <= 0.0:
        return 127
    return max(0, min(127, round(-10.0 * math.log10(power / (32768.0 * 32768.0)))))


class CleanStream:
    """One microphone: RTP packets in, cleaned 20 ms Opus frames out (not thread-safe: one caller)."""

    def __init__(self) -> None:
        self.decoder = RtpOpusDecoder(48000)
        self._denoiser = Denoiser()
        self._encoder = clean_encoder()
        self.busy_s = 0.0

    def feed(self, packet: bytes, arrived: float) -> list[CleanFrame]:
        started = time.perf_counter()
        out: list[CleanFrame] = []
        for pcm, t in self.decoder.feed(packet):
            for i in range(0, len(pcm) - FRAME + 1, FRAME):
                clean, probability = self._denoiser.process(pcm[i:i + FRAME])
                out.append((self._encoder.encode(clean), t + i / RTP_CLOCK, audio_level(clean), probability, arrived))
        self.busy_s += time.perf_counter() - started
        return out

    def close(self) -> None:
        self.decoder.close()
        self._denoiser.close()


def _child_main(conn: Connection) -> None:
    """A worker process: requests in, replies out, until the parent closes the pipe."""
    streams: dict[int, CleanStream] = {}
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        kind, sid, arrived = _REQUEST.unpack_from(msg)
        if kind == _OPEN:
            streams[sid] = CleanStream()
        elif kind == _PING:  # the parent waits for the imports to be done
            conn.send_bytes(_REPLY.pack(0, 0, 0.0, 0, 0))
        elif kind == _CLOSE:
            stream = streams.pop(sid, None)
            if stream is not None:
                stream.close()
        else:
            stream = streams.get(sid)
            frames: list[CleanFrame] = []
            if stream is not None:
                try:
                    frames = stream.feed(msg[_REQUEST.size:], arrived)
                except Exception:  # one stream's failure is not the others'
                    log.exception("audio process: stream %d failed", sid)
            d = stream.decoder if stream is not None else None
            parts = [_REPLY.pack(sid, len(frames), stream.busy_s if stream else 0.0,
                                 d.lost if d else 0, d.garbage if d else 0)]
            for payload, t, level, probability, at in frames:
                parts.append(_FRAME.pack(t, level, probability, at, len(payload)))
                parts.append(payload)
            try:
                conn.send_bytes(b"".join(parts))
            except (EOFError, OSError):
                return


class ProcessLane:
    """One stream's way through a child: :meth:`put` on the receive path, ``deliver(frames)`` on
    the loop with each packet's cleaned frames."""

    def __init__(self, pool: _Child, sid: int, deliver: Callable[[list[CleanFrame]], None],
                 on_error: Callable[[], None], limit: int) -> None:
        self._child = pool
        self.sid = sid
        self._deliver = deliver
        self._on_error = on_error
        self.limit = limit
        self.pending = 0  # packets sent and not answered yet
        self.dropped = 0  # packets not sent: ``limit`` were on their way (the child is behind)
        self.errors = 0
        self.busy_s = 0.0
        self.lost = 0
        self.garbage = 0
        self.closed = False
        self._sizes: collections.deque[int] = collections.deque()

    def put(self, packet: bytes, arrived: float) -> None:
        if self.closed:
            return
        msg = _REQUEST.pack(_PACKET, self.sid, arrived) + packet
        if self.pending >= self.limit or not self._child.room_for(len(msg)):
            self.dropped += 1
            return
        self.pending += 1
        self._sizes.append(len(msg))
        self._child.send(msg, len(msg))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._child.forget(self)

    def _reply(self, frames: list[CleanFrame], busy: float, lost: int, garbage: int) -> None:
        self.pending = max(0, self.pending - 1)
        if self._sizes:  # answers come in the order the packets went
            self._child.unsent(self._sizes.popleft())
        self.busy_s, self.lost, self.garbage = busy, lost, garbage
        if frames and not self.closed:
            try:
                self._deliver(frames)
            except Exception:
                self.errors += 1
                if self.errors == 1:
                    log.exception("audio delivery failed (further failures of this stream only counted)")

    def _died(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._on_error()
            except Exception:
                log.exception("audio lane on_error failed")


class _Child:
    """One worker process and its pipe, read on the loop.  Started on a thread: ``Process.start``
    of a spawned child waits for the new interpreter to take its start-up data (100-400 ms here),
    which on the loop would stall every forwarded packet; what is sent meanwhile waits in
    :attr:`_backlog` (bounded by the lanes' limits)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ctx: Any) -> None:
        self._loop = loop
        self._ctx = ctx
        self.process: Any = None
        self.conn: Connection | None = None
        self.lanes: dict[int, ProcessLane] = {}
        self.waiting: list[asyncio.Future[None]] = []
        self.alive = True
        self._backlog: list[bytes] = []
        self._poller: Any = None
        self.in_pipe = 0  # bytes of packets sent and not answered yet
        self.started = loop.run_in_executor(None, self._spawn)
        self.started.add_done_callback(self._spawned)

    def _spawn(self) -> tuple[Any, Connection]:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_child_main, args=(child,), name="urok-audio", daemon=True)
        process.start()
        child.close()
        return process, parent

    def _spawned(self, fut: asyncio.Future[tuple[Any, Connection]]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            log.error("audio process did not start: %r", None if fut.cancelled() else fut.exception())
            self._dead()
            return
        self.process, conn = fut.result()
        if not self.alive:  # closed meanwhile
            conn.close()
            return
        self.conn = conn
        # readable-yet checks through one poll object: Connection.poll() builds a selector per call
        # (~50 us of CPU, twice per packet)
        self._poller = select.poll()
        self._poller.register(conn.fileno(), select.POLLIN)
        self._loop.add_reader(conn.fileno(), self._readable)
        backlog, self._backlog = self._backlog, []
        for msg in backlog:
            self.send(msg)

    def send(self, msg: bytes, counted: int = 0) -> None:
        if not self.alive:
            return
        self.in_pipe += counted
        if self.conn is None:
            self._backlog.append(msg)
            return
        try:
            self.conn.send_bytes(msg)
        except (OSError, ValueError):
            self._dead()

    def room_for(self, size: int) -> bool:
        """Whether ``size`` more bytes fit in what the pipe holds without the loop blocking on it
        (Linux: 64 KiB; the child answers each packet, so this is what it has not read yet)."""
        return self.in_pipe + size <= PIPE_BUDGET

    def unsent(self, size: int) -> None:
        self.in_pipe = max(0, self.in_pipe - size)

    def forget(self, lane: ProcessLane) -> None:
        while lane._sizes:
            self.unsent(lane._sizes.popleft())
        if self.lanes.pop(lane.sid, None) is not None:
            self.send(_REQUEST.pack(_CLOSE, lane.sid, 0.0))

    def _readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            while self._poller.poll(0):
                self._dispatch(conn.recv_bytes())
        except (EOFError, OSError):
            self._dead()

    def _dispatch(self, msg: bytes) -> None:
        sid, n, busy, lost, garbage = _REPLY.unpack_from(msg)
        at = _REPLY.size
        frames: list[CleanFrame] = []
        for _ in range(n):
            t, level, probability, arrived, size = _FRAME.unpack_from(msg, at)
            at += _FRAME.size
            frames.append((msg[at:at + size], t, level, probability, arrived))
            at += size
        if sid == 0:  # a ping's answer
            while self.waiting:
                fut = self.waiting.pop()
                if not fut.done():
                    fut.set_result(None)
            return
        lane = self.lanes.get(sid)
        if lane is not None:
            lane._reply(frames, busy, lost, garbage)

    def _dead(self) -> None:
        if not self.alive:
            return
        self.alive = False
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.conn.fileno())
        pid = self.process.pid if self.process is not None else None
        log.error("audio process %s ended: its %d streams stop", pid, len(self.lanes))
        lanes, self.lanes = list(self.lanes.values()), {}
        for lane in lanes:
            lane._died()
        while self.waiting:
            fut = self.waiting.pop()
            if not fut.done():
                fut.set_exception(RuntimeError("audio process ended"))

    def close(self) -> None:
        self.alive = False
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.conn.fileno())
            self.conn.close()  # the child reads EOF and ends
        if self.process is not None:
            self.process.join(2.0)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(1.0)


class AudioProcesses:
    """``processes`` worker processes (>= 1) for noise suppression, started at the first lane."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self._children: list[_Child] = []
        self._ids = itertools.count(1)
        self.closed = False

    async def start(self, timeout: float = 60.0) -> None:
        """Start every process now and wait until each has its imports done (a test or a tool that
        wants the first packets cleaned; the server starts them at the first stream instead)."""
        loop = asyncio.get_running_loop()
        self._children = [c for c in self._children if c.alive]
        while len(self._children) < self.processes:
            self._children.append(_Child(loop, multiprocessing.get_context("spawn")))
        futures = []
        for child in self._children:
            fut: asyncio.Future[None] = loop.create_future()
            child.waiting.append(fut)
            child.send(_REQUEST.pack(_PING, 0, 0.0))
            futures.append(fut)
        await asyncio.wait_for(asyncio.gather(*futures), timeout)

    def lane(self, deliver: Callable[[list[CleanFrame]], None], on_error: Callable[[], None], *,
             limit: int = 15) -> ProcessLane:
        """A new stream on the least busy child (call on the loop)."""
        if self.closed:
            raise RuntimeError("audio processes closed")
        loop = asyncio.get_running_loop()
        self._children = [c for c in self._children if c.alive]
        if len(self._children) < self.processes:
            self._children.append(_Child(loop, multiprocessing.get_context("spawn")))
        child = min(self._children, key=lambda c: len(c.lanes))
        lane = ProcessLane(child, next(self._ids), deliver, on_error, limit)
        child.lanes[lane.sid] = lane
        child.send(_REQUEST.pack(_OPEN, lane.sid, 0.0))
        return lane

    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children if c.alive and c.process is not None]

    def close(self) -> None:
        self.closed = True
        children, self._children = self._children, []
        for child in children:
            child.close()

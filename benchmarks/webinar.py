"""Webinar load benchmark: one host -> N viewers through a real urok server.

    .venv/bin/python -m benchmarks.webinar --viewers 100,500,1000,2000 [--procs 2] [--window 15]

For each N a fresh server (``urok serve --dev`` in a subprocess, media on one free ICE-lite UDP
port) gets a room created over REST with ``{"mode": "webinar", "guest_policy": "ALWAYS_ACCEPT"}``.
A ``host`` publishes the "low layer" a viewer of a large room receives: aiortc cannot publish real
simulcast, so the low layer is encoded alone, VP8 320x180 15 fps ~300 kbit/s (a keyframe every
2 s), plus Opus 20 ms; both pre-encoded once (:mod:`benchmarks.media_prep`) and looped.

N ``viewer`` tokens are minted over REST before the clock starts; the viewers then join from
``--procs`` generator processes (multiprocessing, spawn), at most ``--concurrency`` joins at a time
per process.  Each viewer: WebSocket join, answers every ``subscriber_offer``, sends ``subscribe
{tracks: [{track_id: <the host's video>, quality: "low"}]}`` (a large room sends video only on
request; the audio of the loudest speakers comes by default), completes ICE (the server is
ICE-lite) and DTLS, then only counts its RTP packets.  ``--count batch`` (the default) counts
them as datagrams in C: once DTLS is up, the viewer's ICE socket is taken off the event loop and
read by its process's :class:`BatchDrainer` every ``--batch-tick-ms`` (``benchmarks._rxbatch``:
epoll, recvmmsg until empty, the SRTP RTP datagrams counted per viewer from their clear header;
STUN, DTLS and SRTCP handed back to aioice and aiortc).  ``--count raw`` counts them the same way
in Python, before aioice and aiortc see them: the RTP header of an SRTP packet is in the clear,
so payload type, sequence number and SSRC are read without decrypting (:func:`raw_rtp_tap`, hooked
per viewer on its ICE connection's socket protocol once DTLS is up; STUN, DTLS and SRTCP still go
to aioice and aiortc).  ``--count srtp`` counts them right after aiortc's SRTP decryption (no
depacketizer, jitter buffer or decoder; :meth:`benchmarks.forwarding.Participant._hook_counters`),
through aiortc's whole receive path, which costs the generator 2-3x what forwarding a packet
costs the server.

Per N it prints: viewers connected, the join time of the whole audience (the first viewer's
connect to the last viewer's first video packet) and per-viewer join percentiles, per-viewer RTP
packets/s against the publisher's, loss (against the publisher's rate x N, and from sequence-number
gaps), the server's CPU (``/proc`` utime+stime) during the join and the window, its RSS idle (host
publishing, no viewer) and loaded, RSS per viewer, the generator's CPU and RSS, the rest of the
machine's CPU and /proc/loadavg, the server's event-loop lag (``GET /healthz`` answer times) and the
generator's.  After the window everybody leaves.  See docs/benchmarks.md.

The generator's and the publisher's ICE consent checks are retransmitted (a check fails without an
answer within 7.5 s, as tolerant as a browser) instead of aioice's 0.5 s (``--strict-consent``):
see :func:`_tolerant_query_consent`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import random
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import aioice.stun

from benchmarks.cpu_limit import children, cpu_quota, throttled_s
from benchmarks.forwarding import (
    CHECKOUT,
    Counter,
    Participant,
    ProcSample,
    Rest,
    ServerProcess,
    _install_uvloop,
    _status_value,
    admin_token,
    checkout_version,
    loopback_ice,
    machine_busy_s,
    media_tracks,
    pipe_recv,
    sample_tree,
    udp_receive_drops,
)
from benchmarks.media_prep import EncodedMedia, MediaSpec, load_media
from tests.redis_server import redis_server_running

log = logging.getLogger("urok.bench.webinar")

DEFAULT_VIEWERS = (100, 500, 1000, 2000)
MAX_VIEWERS = 1999  # a room holds at most 2000 participants (max_participants), the host included
# the low simulcast layer, encoded alone (aiortc publishes no simulcast)
LOW_LAYER = MediaSpec(width=320, height=180, fps=15, video_bitrate=300_000, gop=30)


# ---- ICE consent like a browser's ------------------------------------------------------------------------
CONSENT_RETRANSMISSIONS = 3  # a consent check fails without an answer within 0.5 + 1 + 2 + 4 = 7.5 s


async def _tolerant_query_consent(self: Any) -> None:
    """aioice's ``Connection.query_consent`` (RFC 7675 consent freshness) with retransmissions.

    aioice counts a check as failed when its answer is over 0.5 s late (``retransmissions=0``) and
    closes the connection after 6 failures in a row (~30 s): a server whose event loop answers STUN
    0.5 s late for half a minute loses every aiortc client, the publisher first, and the run
    collapses.  Browsers tolerate far longer (RFC 7675 allows 30 s without an answer; libwebrtc keeps
    a connection writable for about 15 s), so by default the generator and the publisher
    retransmit each check (7.5 s in all); ``--strict-consent`` keeps aioice's own behaviour."""
    failures = 0
    while True:
        await asyncio.sleep(aioice.ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in self._nominated.values():
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(request, pair.remote_addr,
                                            integrity_key=self.remote_password.encode("utf8"),
                                            retransmissions=CONSENT_RETRANSMISSIONS)
                failures = 0
            except aioice.stun.TransactionError:
                failures += 1
            if failures >= aioice.ice.CONSENT_FAILURES:
                self._query_consent_task = None
                await self.close()
                return


@contextlib.contextmanager
def tolerant_consent(enabled: bool = True) -> Iterator[None]:
    if not enabled:
        yield
        return
    original = aioice.ice.Connection.query_consent
    aioice.ice.Connection.query_consent = _tolerant_query_consent  # type: ignore[method-assign]
    try:
        yield
    finally:
        aioice.ice.Connection.query_consent = original  # type: ignore[method-assign]


# ---- a viewer -------------------------------------------------------------------------------------------
COUNT_MODES = ("batch", "raw", "srtp")  # where a viewer counts its RTP packets (see the module's docstring)
# bytes the SRTP authentication tag adds to an RTP packet, per DTLS-SRTP profile (no MKI)
SRTP_TAG_BYTES = {b"SRTP_AEAD_AES_256_GCM": 16, b"SRTP_AEAD_AES_128_GCM": 16, b"SRTP_AES128_CM_SHA1_80": 10,
                  b"SRTP_AES128_CM_SHA1_32": 4}
_RTP_HEADER = struct.Struct("!xBHxxxxI")  # byte 1 (marker + payload type), sequence number, SSRC


def now_ms() -> int:
    """The raw mode's packet clock (time.monotonic(), ms): the tap and its SRTP-level fallback share it."""
    return int(time.monotonic() * 1000)


@dataclass
class ViewerCounter(Counter):
    """:class:`Counter` plus the arrival of the first audio and video packet and the video count."""

    video_pts: set[int] = field(default_factory=set)
    video: int = 0
    first_audio_t: float = 0.0  # time.monotonic() (one clock for every process of the machine)
    first_video_t: float = 0.0
    notify: Callable[[], None] | None = None

    def count(self, data: bytes, arrival_ms: int) -> None:
        super().count(data, arrival_ms)
        if len(data) < 2:
            return
        if (data[1] & 0x7F) in self.video_pts:
            self.video += 1
            if not self.first_video_t:
                self.first_video_t = time.monotonic()
                if self.notify is not None:
                    self.notify()
        elif not self.first_audio_t:
            self.first_audio_t = time.monotonic()
            if self.notify is not None:
                self.notify()


def raw_rtp_tap(counter: ViewerCounter, forward: Callable[[bytes, Any], None], tag_bytes: int
                ) -> Callable[[bytes, Any], None]:
    """A ``datagram_received`` for one viewer's ICE socket (aioice's ``StunProtocol``) once DTLS is
    up: an SRTP RTP packet is counted from its clear header and goes no further (aioice, the DTLS
    transport, SRTP and the RTP parser never see it); anything else (STUN: consent answers; DTLS;
    SRTCP, whose second byte is 192..223) goes to ``forward``, the protocol's own handler.

    Counts exactly what :meth:`ViewerCounter.count` counts after SRTP: packets, bytes without the
    ``tag_bytes`` SRTP adds (the decrypted length), the gap between packets (:func:`now_ms`), the
    highest extended sequence number per SSRC, video by payload type and the first audio and video
    arrival.  It does not authenticate: a forged or replayed packet would be counted (the server on
    127.0.0.1 sends none; the viewers send no NACKs, so there are no retransmissions either)."""
    unpack = _RTP_HEADER.unpack_from
    monotonic = time.monotonic
    streams = counter.streams
    video_pts = counter.video_pts  # updated in place at each offer
    min_len = 12 + tag_bytes

    def datagram_received(data: bytes, addr: Any) -> None:
        if len(data) < min_len or not 127 < data[0] < 192 or 191 < data[1] < 224:
            forward(data, addr)
            return
        c = counter
        now = int(monotonic() * 1000)
        c.rtp += 1
        c.rtp_bytes += len(data) - tag_bytes
        last = c.last_ms
        if last and now - last > c.max_gap_ms:
            c.max_gap_ms = now - last
        c.last_ms = now
        b1, seq, ssrc = unpack(data)
        stream = streams.get(ssrc)
        if stream is None:
            streams[ssrc] = [seq, seq]
        else:
            delta = (seq - stream[1]) & 0xFFFF
            if 0 < delta < 0x8000:  # newer (a reordered or repeated packet changes nothing)
                stream[1] += delta
        if (b1 & 0x7F) in video_pts:
            c.video += 1
            if not c.first_video_t:
                c.first_video_t = monotonic()
                if c.notify is not None:
                    c.notify()
        elif not c.first_audio_t:
            c.first_audio_t = monotonic()
            if c.notify is not None:
                c.notify()

    return datagram_received


class _Sink(asyncio.DatagramProtocol):
    """Takes the ``connection_lost`` of an ICE socket's event-loop transport that :class:`BatchTransport`
    replaced (aioice's protocol must not see it: its socket lives on)."""


class BatchTransport(asyncio.DatagramTransport):
    """The transport of one viewer's ICE socket protocol once :class:`BatchDrainer` reads its socket
    (``--count batch``): sends with ``sendto`` on a dup of the socket (non-blocking; a full buffer
    drops the datagram, as UDP may), reads nothing (the drainer does), and on ``close`` leaves the
    drainer, closes the dup and tells the protocol, as the event loop's transport would."""

    def __init__(self, sock: socket.socket, protocol: Any, drainer: BatchDrainer, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._sock, self._protocol, self._drainer = sock, protocol, drainer
        self.slot = -1
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._sock if name == "socket" else super().get_extra_info(name, default)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            if addr is None:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.slot >= 0:
            self._drainer.remove(self.slot)
        self._sock.close()
        try:
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)
        except RuntimeError:  # no loop running (interpreter teardown)
            self._protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()


class BatchDrainer:
    """``--count batch``: the viewer sockets of one generator process, read every ``tick_s`` in C
    (``benchmarks._rxbatch.Drainer``: epoll, then recvmmsg on every readable socket until it is
    empty), their SRTP RTP datagrams counted there per viewer, SRTCP (the server's sender reports,
    of no use to a counting client) counted and dropped; the other datagrams (STUN, DTLS) go to
    each viewer's own ``datagram_received``.  The counts reach the viewers'
    :class:`ViewerCounter` at each :meth:`sync` (the snapshots) and at each first audio or video packet."""

    def __init__(self, tick_s: float = 0.01) -> None:
        from benchmarks import _rxbatch  # ImportError off Linux or unbuilt: the viewers count raw

        self.c = _rxbatch.Drainer()
        self.tick_s = tick_s
        self.forward: dict[int, Callable[[bytes, Any], None]] = {}
        self.counters: dict[int, ViewerCounter] = {}
        self.forward_errors = 0
        self._task: asyncio.Task[None] | None = None

    def take_over(self, protocol: Any, tag_bytes: int, counter: ViewerCounter) -> int:
        """Read ``protocol``'s socket from now on (its event-loop transport is closed, a
        :class:`BatchTransport` on a dup of the socket sends for it); the count goes on from ``counter``."""
        old = protocol.transport
        sock = socket.socket(fileno=os.dup(old.get_extra_info("socket").fileno()))
        slot = -1
        try:
            sock.setblocking(False)
            extra = {k: old.get_extra_info(k) for k in ("sockname", "peername")}
            new = BatchTransport(sock, protocol, self, extra)
            slot = self.c.add(sock.fileno(), tag_bytes)
            self.c.set_video_pts(slot, counter.video_pts)
            self.c.seed(slot, counter.rtp, counter.rtp_bytes, counter.video, counter.last_ms, counter.max_gap_ms,
                        counter.first_audio_t, counter.first_video_t,
                        [(ssrc, first, last) for ssrc, (first, last) in counter.streams.items()])
        except BaseException:  # nothing changed: the event loop's transport still reads the socket
            if slot >= 0:
                self.c.remove(slot)
            sock.close()
            raise
        self.forward[slot] = protocol.datagram_received
        self.counters[slot] = counter
        new.slot = slot
        old.set_protocol(_Sink())
        old.close()  # the socket stays open: the dup holds it
        protocol.transport = new
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return slot

    def remove(self, slot: int) -> None:
        self.c.remove(slot)
        self.sync(slot)
        self.forward.pop(slot, None)

    def sync(self, slot: int, take_gap: bool = False) -> None:
        """Copy the C counts of ``slot`` into its :class:`ViewerCounter` (``take_gap``: the C max gap restarts)."""
        c = self.counters[slot]
        (c.rtp, c.rtp_bytes, c.video, c.last_ms, c.max_gap_ms, fa, fv, streams, _overflow,
         _errors) = self.c.read(slot, take_gap)
        c.streams = {ssrc: [first, last] for ssrc, first, last in streams}
        if (fa and not c.first_audio_t) or (fv and not c.first_video_t):
            c.first_audio_t, c.first_video_t = fa, fv
            if c.notify is not None:
                c.notify()

    def sync_all(self) -> None:
        for slot in self.counters:
            self.sync(slot, take_gap=True)

    def drain(self) -> None:
        others, firsts = self.c.drain()
        for slot, data, addr in others:
            forward = self.forward.get(slot)
            if forward is not None:
                try:
                    forward(data, addr)
                except Exception:  # one viewer's STUN / DTLS / SRTCP handling must not stop the others
                    self.forward_errors += 1
                    log.exception("a viewer's datagram_received failed")
        for slot in firsts:
            self.sync(slot)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.drain()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class Viewer(Participant):
    """A :class:`Participant` that also notes the host's video track (``track_published``), counts
    ``room_update`` events and tells its counter which payload types are video.  ``count="batch"``:
    once the subscriber connection is up, its socket is read and its RTP counted in C by the
    process's :class:`BatchDrainer` (``batch``; without one, or when the take-over fails: raw);
    ``"raw"``: counted at the socket in Python (:func:`raw_rtp_tap`); ``"srtp"``: after SRTP
    (:meth:`Participant._hook_counters`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, counter: ViewerCounter, count: str = "raw",
                 batch: BatchDrainer | None = None) -> None:
        if count not in COUNT_MODES:
            raise ValueError(f"count must be one of {COUNT_MODES}, not {count!r}")
        self.batch = batch
        self.batch_slot = -1  # the BatchDrainer slot of this viewer's socket (-1: none)
        self.video_track = ""
        self.room_updates = 0
        self.vcounter = counter
        self.count_mode = count
        self.tapped: set[int] = set()  # ids of the ICE socket protocols counted at the socket (raw or batch)
        self.tap_error = ""
        self.lost_at = 0.0  # when the subscriber connection failed or closed while we did not close it
        self.closing = False
        super().__init__(ws, counter=counter)
        counter.notify = self._changed.set
        self.sub.on("connectionstatechange", self._state_changed)

    def _state_changed(self) -> None:
        if self.sub.connectionState == "connected":
            self._tap_datagrams()
        if self.sub.connectionState in ("failed", "closed") and not self.closing and not self.lost_at:
            self.lost_at = time.monotonic()
        if self.sub.connectionState in ("failed", "closed"):
            self._leave_batch()

    def _leave_batch(self) -> None:
        if self.batch is not None and self.batch_slot >= 0:
            self.batch.remove(self.batch_slot)  # the counts stay (in the counter)

    def _on_event(self, event: str, m: dict[str, Any]) -> None:
        if event == "track_published" and m.get("kind") == "video" and not self.video_track:
            self.video_track = str(m["track_id"])
        elif event == "room_update":
            self.room_updates += 1

    def _hook_counters(self) -> None:
        sdp = self.sub.remoteDescription.sdp if self.sub.remoteDescription is not None else ""
        for line in sdp.splitlines():
            if line.startswith("m=video"):
                self.vcounter.video_pts.update(int(pt) for pt in line.split()[3:] if pt.isdigit())
        if self.batch is not None and self.batch_slot >= 0:
            self.batch.c.set_video_pts(self.batch_slot, self.vcounter.video_pts)
        if self.count_mode == "srtp":
            super()._hook_counters()
            return
        # raw and batch: until the socket is tapped (DTLS done), and for the datagrams already queued
        # then, count after SRTP on the same clock as the tap, so that each packet is counted once
        # (batch: in the C slot, which took the counter's state over)
        counter = self.vcounter
        viewer = self
        for transceiver in self.sub.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None or id(dtls) in self._hooked:
                continue
            self._hooked.add(id(dtls))

            async def rtp_count(data: bytes, arrival_time_ms: int) -> None:
                if viewer.batch is not None and viewer.batch_slot >= 0:
                    if viewer.batch.c.count(viewer.batch_slot, data):
                        viewer.batch.sync(viewer.batch_slot)
                else:
                    counter.count(data, now_ms())

            async def rtcp_count(data: bytes) -> None:
                counter.rtcp += 1

            dtls._handle_rtp_data, dtls._handle_rtcp_data = rtp_count, rtcp_count
        if self.sub.connectionState == "connected":
            self._tap_datagrams()

    def _tap_datagrams(self) -> None:
        """Raw mode, DTLS up: replace ``datagram_received`` on this connection's nominated ICE socket
        protocol(s) (an instance attribute: no other connection of the process is touched).  Batch
        mode: hand the socket to the :class:`BatchDrainer` (raw when that fails)."""
        if self.count_mode == "batch" and self._batch_take_over():
            return
        if self.count_mode not in ("raw", "batch"):
            return
        try:
            for dtls, profile, tag_bytes in self._secured_transports():
                if tag_bytes is None:
                    self.tap_error = f"unknown SRTP profile {profile!r}: counting after SRTP"
                    continue
                for pair in dtls.transport._connection._nominated.values():
                    protocol = pair.protocol
                    if id(protocol) not in self.tapped:
                        self.tapped.add(id(protocol))
                        protocol.datagram_received = raw_rtp_tap(self.vcounter, protocol.datagram_received,
                                                                 tag_bytes)
        except AttributeError as e:  # aiortc/aioice internals changed: the SRTP-level count goes on
            self.tap_error = f"cannot tap the ICE socket ({e!r}): counting after SRTP"

    def _secured_transports(self) -> Iterator[tuple[Any, Any, int | None]]:
        """``(dtls transport, SRTP profile, SRTP tag bytes or None)`` of each of the subscriber
        connection's DTLS transports whose SRTP keys are in place (before that, SRTP packets would
        be dropped: they are not counted yet)."""
        for transceiver in self.sub.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None or dtls._rx_srtp is None:
                continue
            profile = dtls._ssl.get_selected_srtp_profile()
            yield dtls, profile, SRTP_TAG_BYTES.get(profile)

    def _batch_take_over(self) -> bool:
        """Batch mode, DTLS up: the drainer reads this connection's one nominated ICE socket from now
        on.  False (and ``tap_error`` says why) when it cannot: the raw tap is used instead."""
        if self.batch_slot >= 0:
            return True
        if self.batch is None:
            self.tap_error = "batch: benchmarks._rxbatch unavailable: counting raw"
            return False
        try:
            for dtls, profile, tag_bytes in self._secured_transports():
                if tag_bytes is None:
                    self.tap_error = f"batch: unknown SRTP profile {profile!r}: counting raw"
                    return False
                pairs = list(dtls.transport._connection._nominated.values())
                if len(pairs) != 1 or self.tapped:
                    self.tap_error = f"batch: {len(pairs)} nominated ICE pairs: counting raw"
                    return False
                protocol = pairs[0].protocol
                self.batch_slot = self.batch.take_over(protocol, tag_bytes, self.vcounter)
                self.tapped.add(id(protocol))
                return True
        except (AttributeError, OSError, ValueError) as e:  # internals changed, or the fd: raw
            self.tap_error = f"batch: cannot take the ICE socket over ({e!r}): counting raw"
        return False

    def alive(self) -> bool:
        return self.error is None and self.sub.connectionState == "connected"

    async def close(self) -> None:
        self.closing = True
        await super().close()
        self._leave_batch()


@dataclass
class JoinRecord:
    """One viewer's join, in time.monotonic() seconds (0.0: did not happen)."""

    start: float = 0.0  # the WebSocket connect began (a join slot was free)
    welcome: float = 0.0
    subscribed: float = 0.0  # the `subscribe` response
    first_audio: float = 0.0
    first_video: float = 0.0
    error: str = ""


class ViewerGroup:
    """The viewers of one generator process: joins them (bounded concurrency), snapshots them."""

    def __init__(self, base: str, tokens: Sequence[str], *, concurrency: int, join_timeout: float,
                 count: str = "raw", batch_tick_s: float = 0.01) -> None:
        self.base, self.tokens = base, list(tokens)
        self.concurrency, self.join_timeout, self.count = concurrency, join_timeout, count
        self.batch: BatchDrainer | None = None
        self.batch_error = ""
        if count == "batch":
            try:
                self.batch = BatchDrainer(batch_tick_s)
            except ImportError as e:  # each viewer then counts raw and says so (tap_errors)
                self.batch_error = repr(e)
        self.counters = [ViewerCounter() for _ in self.tokens]
        self.records = [JoinRecord() for _ in self.tokens]
        self.members: list[Viewer] = []
        self.http: aiohttp.ClientSession | None = None
        self.max_lag_ms = 0.0  # the longest event-loop stall of this process since the last snapshot
        self.join_lag_ms = 0.0  # ... during the join

    async def watch_lag(self, step_s: float = 0.05) -> None:
        """How late this process's event loop wakes up (a stall over 0.5 s fails aioice's consent checks)."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(step_s)
            self.max_lag_ms = max(self.max_lag_ms, (time.monotonic() - t - step_s) * 1000)

    async def _join_one(self, i: int, sem: asyncio.Semaphore) -> None:
        """Join, subscribe, ICE + DTLS under the semaphore (what loads the server's listen backlog
        and handshakes); the wait for the first packets (video starts at the next keyframe) outside."""
        rec, counter = self.records[i], self.counters[i]
        assert self.http is not None
        try:
            async with sem:
                rec.start = time.monotonic()
                p = await Viewer.join(self.http, self.base, self.tokens[i], self.join_timeout, counter=counter,
                                      count=self.count, batch=self.batch)
                assert isinstance(p, Viewer)
                self.members.append(p)
                rec.welcome = time.monotonic()
                left = self.join_timeout - (rec.welcome - rec.start)
                await p.wait(lambda: bool(p.video_track), left, "track_published (video)")
                await p.request("subscribe", left, tracks=[{"track_id": p.video_track, "quality": "low"}])
                rec.subscribed = time.monotonic()
                left = self.join_timeout - (rec.subscribed - rec.start)
                await p.wait(lambda: p.answered > 0 and p.sub.connectionState == "connected", left,
                             "the subscriber connection (ICE + DTLS)")
            left = self.join_timeout - (time.monotonic() - rec.start)
            await p.wait(lambda: bool(counter.first_audio_t and counter.first_video_t), left,
                         "the first audio and video packets")
        except Exception as e:  # counted as not connected
            rec.error = str(e)[:300] or repr(e)
        rec.first_audio, rec.first_video = counter.first_audio_t, counter.first_video_t

    async def join_all(self) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sem = asyncio.Semaphore(self.concurrency)
        progress = asyncio.create_task(self._progress())
        try:
            await asyncio.gather(*(self._join_one(i, sem) for i in range(len(self.tokens))))
        finally:
            progress.cancel()
            self.join_lag_ms, self.max_lag_ms = self.max_lag_ms, 0.0

    async def _progress(self, every_s: float = 10.0) -> None:
        """A line on stderr every ``every_s`` during a long join."""
        t0 = time.monotonic()
        while True:
            await asyncio.sleep(every_s)
            r = self.records
            log.warning("generator %d at %.0f s: %d started, %d welcomed, %d subscribed, %d with media, %d failed, "
                        "%d connections lost", os.getpid(), time.monotonic() - t0, sum(1 for x in r if x.start),
                        sum(1 for x in r if x.welcome), sum(1 for x in r if x.subscribed),
                        sum(1 for c in self.counters if c.first_video_t and c.first_audio_t),
                        sum(1 for x in r if x.error), sum(1 for p in self.members if p.lost_at))

    def _take_lag(self) -> float:
        lag, self.max_lag_ms = self.max_lag_ms, 0.0
        return lag

    def snapshot(self) -> dict[str, Any]:
        if self.batch is not None:
            self.batch.drain()  # what is queued now counts in this snapshot
            self.batch.sync_all()
        max_gap = max((c.max_gap_ms for c in self.counters), default=0)
        for c in self.counters:
            c.max_gap_ms = 0
        return {
            "rtp": [c.rtp for c in self.counters], "video": sum(c.video for c in self.counters),
            "rtp_bytes": sum(c.rtp_bytes for c in self.counters),
            "seq_span": sum(c.seq_span() for c in self.counters), "max_gap_ms": max_gap,
            "alive": sum(1 for p in self.members if p.alive()),
            "lost": sum(1 for p in self.members if p.lost_at), "lag_ms": self._take_lag(),
            "room_updates": sum(p.room_updates for p in self.members),
            "tapped": sum(1 for p in self.members if p.tapped),
            "batched": sum(1 for p in self.members if p.batch_slot >= 0),
            "batch_stats": self.batch.c.stats() if self.batch is not None else {},
            "tap_errors": sorted({p.tap_error for p in self.members if p.tap_error})[:3],
            "cpu_s": time.process_time(), "sys_s": os.times().system,
            "rss_kb": _status_value(os.getpid(), "VmRSS"), "t": time.monotonic(),
        }

    async def close(self) -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(p.close() for p in self.members), return_exceptions=True)
        if self.batch is not None:
            self.batch.close()
        if self.http is not None:
            await self.http.close()
        return time.monotonic() - t0


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _worker_main(conn: Connection, base: str, tokens: list[str], concurrency: int, join_timeout: float,
                 strict_consent: bool = False, count: str = "raw", batch_tick_s: float = 0.01) -> None:
    """A generator process: 'ready' once imported; on 'go' joins its viewers and sends their
    :class:`JoinRecord`s; then answers 'snap' and 'stop' on the pipe."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    _raise_fd_limit()
    _install_uvloop()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        group = ViewerGroup(base, tokens, concurrency=concurrency, join_timeout=join_timeout, count=count,
                            batch_tick_s=batch_tick_s)
        conn.send(("ready", _status_value(os.getpid(), "VmRSS")))
        lag = asyncio.create_task(group.watch_lag())
        closed_s = 0.0
        try:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "go":
                await group.join_all()
                conn.send(("joined", [asdict(r) for r in group.records], group.join_lag_ms))
                while True:
                    cmd = await loop.run_in_executor(None, conn.recv)
                    if cmd == "snap":
                        conn.send(("snap", group.snapshot()))
                    elif cmd == "stop":
                        break
        finally:
            lag.cancel()
            closed_s = await group.close()
        conn.send(("bye", closed_s))

    with loopback_ice(), tolerant_consent(not strict_consent):
        asyncio.run(main())


class WorkerHandle:
    def __init__(self, base: str, tokens: list[str], concurrency: int, join_timeout: float,
                 strict_consent: bool = False, count: str = "raw", batch_tick_s: float = 0.01) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main,
                                args=(child, base, tokens, concurrency, join_timeout, strict_consent, count,
                                      batch_tick_s),
                                daemon=True)
        self.proc.start()
        child.close()
        self.pid = self.proc.pid or 0

    async def recv(self, timeout: float) -> Any:
        return await pipe_recv(self.conn, self.proc, timeout)

    async def stop(self) -> float:
        """Everybody in this process leaves; returns how long closing took (s)."""
        closed_s = 0.0
        with contextlib.suppress(Exception):
            self.conn.send("stop")
            msg = await self.recv(120)
            closed_s = float(msg[1])
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
        return closed_s


# ---- one measurement -------------------------------------------------------------------------------------------
def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


LOG_PROBLEMS = re.compile(r"\b(ERROR|CRITICAL|Traceback|WARNING)\b")


@dataclass
class WebinarResult:
    """One N: the audience's join, what the viewers got and what it cost, over the window."""

    viewers: int
    connected: int  # got the first audio and video packet within the join timeout
    alive_end: int  # still connected at the end of the window
    join_s: float  # the first viewer's connect -> the last connected viewer's first video packet
    join_p50_s: float  # per viewer: its connect -> its first video packet
    join_p95_s: float
    join_max_s: float
    welcome_p95_s: float  # per viewer: connect -> welcome
    window_s: float
    pub_pps: float  # the publisher's RTP packets/s (audio + video)
    pub_video_pps: float
    viewer_pps: float  # mean RTP packets/s received per viewer (all N, the unconnected count as 0)
    min_viewer_pps: float
    max_viewer_pps: float
    video_share: float  # share of the received packets that are video
    loss_pct: float  # 1 - received / (pub_pps x N)
    seq_loss_pct: float  # gaps in the sequence numbers the connected viewers received
    max_gap_ms: int
    recv_mbps: float  # all viewers
    server_cpu_s_per_s: float  # during the window
    server_us_per_pkt: float | None
    server_join_cpu_s: float  # server CPU-seconds from the first connect to the last viewer's media
    server_threads: int
    server_procs: int
    server_rss_idle_mb: float  # the host publishing, no viewer
    server_rss_mb: float  # at the end of the window
    rss_per_viewer_kb: float  # (RSS - idle RSS) / connected
    gen_cpu_s_per_s: float  # the generator processes during the window
    gen_rss_mb: float  # the generator processes at the end of the window
    gen_procs: int
    pub_cpu_s_per_s: float  # this process (the publisher) during the window
    other_cpu_s_per_s: float  # the rest of the machine during the window
    udp_drops_per_s: float
    room_updates_per_viewer_s: float
    loadavg_before: str
    loadavg_after: str
    close_s: float  # everybody leaving
    server_log_problems: int  # lines with WARNING / ERROR / Traceback in the server's log
    failures: list[str] = field(default_factory=list)
    lost: int = 0  # viewers whose subscriber connection failed or closed after joining
    host_state: str = ""  # the host's publisher connection at the end of the window
    host_events: list[str] = field(default_factory=list)  # its state changes (s after publishing)
    server_rtp_in_pps: float = 0.0  # the server's own counters (/metrics) over the window
    server_rtp_out_pps: float = 0.0
    join_udp_drops: int = 0  # kernel receive-buffer drops during the join (whole machine)
    join_fwd_pkts: int = 0  # RTP packets the server forwarded during the join (to the viewers already in)
    server_join_lag_max_s: float = 0.0  # GET /healthz answer time during the join (the server's loop)
    server_join_lag_p95_s: float = 0.0
    server_lag_max_s: float = 0.0  # ... during the window
    gen_join_lag_ms: float = 0.0  # the longest event-loop stall of a generator process during the join
    gen_lag_ms: float = 0.0  # ... during the window
    count: str = "batch"  # where the viewers counted their packets (--count)
    tapped: int = 0  # raw, batch: viewers counting at the socket at the window's end (the others after SRTP)
    batched: int = 0  # batch: viewers whose socket the C drainer read at the window's end (the others: raw)
    gen_us_per_pkt: float | None = None  # generator CPU per received RTP packet (all of it: background too)
    batch_stats: dict[str, int] = field(default_factory=dict)  # batch: the drainers' counters over the window
    tap_errors: list[str] = field(default_factory=list)
    gen_sys_pct: float = 0.0  # the kernel's share (stime: sockets, epoll) of the generator processes' CPU

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def join_ms_per_viewer(self) -> float | None:
        """Server CPU per joining viewer: the join's CPU less the forwarding done meanwhile (its packets at
        the window's cost per packet)."""
        if self.server_us_per_pkt is None or not self.connected:
            return None
        return (self.server_join_cpu_s - self.join_fwd_pkts * self.server_us_per_pkt / 1e6) * 1000 / self.connected

    def holds(self) -> bool:
        return self.connected == self.viewers and self.alive_end == self.viewers and self.loss_pct < 1.0

    def disturbances(self) -> list[str]:
        notes = []
        if self.other_cpu_s_per_s > 0.5:
            notes.append(f"other load on the machine {self.other_cpu_s_per_s:.2f} cores")
        if self.udp_drops_per_s > 0:
            notes.append(f"{self.udp_drops_per_s:.0f} datagrams/s dropped by the kernel (a receive buffer was full)")
        if self.loss_pct - self.seq_loss_pct > 1.0 and self.connected == self.viewers:
            notes.append(f"{self.loss_pct - self.seq_loss_pct:.1f}% of the packets were not counted in the window "
                         "but not lost either (a backlog: a generator process did not get the CPU)")
        if self.count == "batch" and self.batched < self.tapped:
            notes.append(f"{self.tapped - self.batched} viewer(s) counted raw, not by the C drainer: "
                         f"{'; '.join(self.tap_errors) or 'not taken over'}")
        if self.count in ("raw", "batch") and self.tapped < self.connected:
            notes.append(f"{self.connected - self.tapped} viewer(s) counted after SRTP, not at the socket "
                         f"(the generator's CPU is not comparable): {'; '.join(self.tap_errors) or 'not tapped'}")
        return notes


@dataclass
class WebinarConfig:
    window_s: float = 15.0
    warmup_s: float = 5.0
    procs: int = 2
    concurrency: int = 50  # joins at a time per generator process
    join_timeout_s: float = 60.0  # per viewer
    media: MediaSpec = LOW_LAYER
    log_dir: Path | None = None
    server_env: dict[str, str] = field(default_factory=dict)
    strict_consent: bool = False  # aioice's own consent checks (see _tolerant_query_consent)
    count: str = "batch"  # "batch": read and counted in C (BatchDrainer); "raw": at the sockets in Python;
    # "srtp": after aiortc's SRTP
    batch_tick_s: float = 0.01  # batch: how often each generator process drains its viewers' sockets
    workers: int = 1  # `urok serve --workers N` (> 1: with a throwaway redis-server)
    span_after: int = 0  # > 0: the room spans the workers after this many participants (signaling/cluster/span.py)
    worker_cpu: float = 0.0  # > 0: each worker process limited to this share of a core (benchmarks/cpu_limit.py)

    def procs_for(self, n: int) -> int:
        return max(1, min(self.procs, n))


async def _mint_tokens(rest: Rest, room_id: str, n: int, parallel: int = 16) -> list[str]:
    sem = asyncio.Semaphore(parallel)

    async def one(i: int) -> str:
        async with sem:
            r = await rest.call("POST", f"/v1/rooms/{room_id}/tokens", {
                "identity": f"viewer-{i}", "name": f"Viewer {i}", "role": "viewer", "registered": True})
            return str(r["token"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _probe(http: aiohttp.ClientSession, base: str, out: list[tuple[float, float]], every_s: float = 0.5
                 ) -> None:
    """``GET /healthz`` every ``every_s``: how long the server's event loop takes to answer (10 s: no answer)."""
    while True:
        t = time.monotonic()
        try:
            async with http.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as r:
                await r.read()
            out.append((t, time.monotonic() - t))
        except (TimeoutError, aiohttp.ClientError, OSError):
            out.append((t, 10.0))
        await asyncio.sleep(max(0.0, every_s - (time.monotonic() - t)))


async def server_metrics(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The server's own counters (``GET /metrics``, Prometheus text): media and STUN."""
    out: dict[str, float] = {}
    with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
        async with http.get(base + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as r:
            for line in (await r.text()).splitlines():
                if line.startswith(("urok_media_", "urok_participants")) and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    out[name.removeprefix("urok_media_")] = float(value)
    return out


def _host_watch(host: Participant, t0: float, events: list[str]) -> None:
    """Note the host's publisher connection state changes (seconds after ``t0``)."""
    def changed() -> None:
        events.append(f"{time.monotonic() - t0:.1f}s {host.pub.connectionState}")
    host.pub.on("connectionstatechange", changed)


async def _run_against(server: ServerProcess, n: int, cfg: WebinarConfig, media: EncodedMedia) -> WebinarResult:
    admin = admin_token()
    workers: list[WorkerHandle] = []
    close_s = 0.0
    async with aiohttp.ClientSession() as http:
        rest = Rest(http, server.base, admin)
        room = await rest.call("POST", "/v1/rooms", {"name": "webinar benchmark", "mode": "webinar",
                                                     "guest_policy": "ALWAYS_ACCEPT"})
        room_id = str(room["room_id"])
        host = await Participant.join(http, server.base, await rest.token(room_id, "bench-host", "host"),
                                      cfg.join_timeout_s)
        try:
            await host.publish(media_tracks(media), 30)
            video_sent = _count_video_sent(host)
            host_events: list[str] = []
            probes: list[tuple[float, float]] = []  # (time, /healthz latency s)
            _host_watch(host, time.monotonic(), host_events)
            tokens = await _mint_tokens(rest, room_id, n)
            procs = cfg.procs_for(n)
            workers = [WorkerHandle(server.base, tokens[i::procs], cfg.concurrency, cfg.join_timeout_s,
                                    cfg.strict_consent, cfg.count, cfg.batch_tick_s) for i in range(procs)]
            for w in workers:
                await w.recv(60)  # imported and ready
            await asyncio.sleep(1.0)  # the host's stream settles
            rss_idle = sample_tree(server.pid).rss_kb
            load_before = loadavg()
            srv_go = sample_tree(server.pid)
            m_go, drops_go = await server_metrics(http, server.base), udp_receive_drops()
            for w in workers:
                w.conn.send("go")
            records: list[JoinRecord] = []
            gen_join_lag = 0.0
            probe = asyncio.create_task(_probe(http, server.base, probes))
            for w in workers:
                msg = await w.recv(cfg.join_timeout_s + 30 + 2 * n)
                records += [JoinRecord(**r) for r in msg[1]]
                gen_join_lag = max(gen_join_lag, float(msg[2]))
            srv_joined = sample_tree(server.pid)
            t_joined = time.monotonic()
            m_joined, drops_joined = await server_metrics(http, server.base), udp_receive_drops()
            log.warning("N=%d: joined; host publisher connection: %s; server counters during the join: %s; "
                        "udp receive-buffer drops %d", n, host.pub.connectionState,
                        {k: v - m_go.get(k, 0.0) for k, v in m_joined.items() if v != m_go.get(k, 0.0)},
                        drops_joined - drops_go)
            await asyncio.sleep(cfg.warmup_s)

            async def snap() -> tuple[list[dict[str, Any]], int, int, float, ProcSample, float, int, float]:
                for w in workers:
                    w.conn.send("snap")
                sent, sent_video, t = host.sent_rtp, video_sent[0], time.monotonic()
                srv, busy, drops = sample_tree(server.pid), machine_busy_s(), udp_receive_drops()
                own = time.process_time()
                snaps = [(await w.recv(30))[1] for w in workers]
                return snaps, sent, sent_video, t, srv, busy, drops, own

            m0 = await server_metrics(http, server.base)
            s0, pub0, vid0, t0, srv0, busy0, drops0, own0 = await snap()
            await asyncio.sleep(cfg.window_s)
            s1, pub1, vid1, t1, srv1, busy1, drops1, own1 = await snap()
            m1 = await server_metrics(http, server.base)
            host_state = host.pub.connectionState
            probe.cancel()
            load_after = loadavg()
        finally:
            closes = [await w.stop() for w in workers]
            close_s = max(closes, default=0.0)
            await host.close()
        with contextlib.suppress(Exception):
            await rest.call("DELETE", f"/v1/rooms/{room_id}")

    ok = [r for r in records if not r.error and r.first_video]
    failures = [r.error for r in records if r.error]
    start = min((r.start for r in records if r.start), default=0.0)
    join_s = max((r.first_video for r in ok), default=start) - start
    per_join = [r.first_video - r.start for r in ok]
    welcome = [r.welcome - r.start for r in records if r.welcome]
    dt = t1 - t0  # this process's window (the publisher's); each generator process has its own
    # per viewer, its packets over its own process's window (a busy process answers a snapshot late)
    per_viewer = [(b - a) / (y["t"] - x["t"]) for x, y in zip(s0, s1, strict=True)
                  for a, b in zip(x["rtp"], y["rtp"], strict=True)]
    pkts = sum(sum(y["rtp"]) - sum(x["rtp"]) for x, y in zip(s0, s1, strict=True))
    recv_pps = sum(per_viewer)
    video = sum(y["video"] - x["video"] for x, y in zip(s0, s1, strict=True))
    span = sum(y["seq_span"] - x["seq_span"] for x, y in zip(s0, s1, strict=True))
    pub_pps = (pub1 - pub0) / dt
    expected = pub_pps * n
    gen_cpu = sum(y["cpu_s"] - x["cpu_s"] for x, y in zip(s0, s1, strict=True))
    gen_sys = sum(y["sys_s"] - x["sys_s"] for x, y in zip(s0, s1, strict=True))
    srv_cpu = srv1.cpu_s - srv0.cpu_s
    own_cpu = own1 - own0
    log_problems = 0
    with contextlib.suppress(OSError):
        log_problems = sum(1 for line in server.log_path.read_text(errors="replace").splitlines()
                           if LOG_PROBLEMS.search(line))
    return WebinarResult(
        viewers=n, connected=len(ok), alive_end=sum(int(y["alive"]) for y in s1),
        join_s=round(join_s, 2), join_p50_s=_pct(per_join, 0.5), join_p95_s=_pct(per_join, 0.95),
        join_max_s=max(per_join, default=0.0), welcome_p95_s=_pct(welcome, 0.95),
        window_s=round(dt, 2), pub_pps=pub_pps, pub_video_pps=(vid1 - vid0) / dt,
        viewer_pps=recv_pps / n, min_viewer_pps=min(per_viewer), max_viewer_pps=max(per_viewer),
        video_share=video / pkts if pkts else 0.0,
        loss_pct=max(0.0, 100 * (1 - recv_pps / expected)) if expected else 100.0,
        seq_loss_pct=max(0.0, 100 * (1 - pkts / span)) if span else 100.0,
        max_gap_ms=max(int(y["max_gap_ms"]) for y in s1),
        recv_mbps=sum((y["rtp_bytes"] - x["rtp_bytes"]) / (y["t"] - x["t"]) for x, y in zip(s0, s1, strict=True))
        * 8 / 1e6,
        server_cpu_s_per_s=srv_cpu / dt, server_us_per_pkt=srv_cpu / dt * 1e6 / recv_pps if recv_pps else None,
        server_threads=srv1.threads, server_procs=srv1.procs,
        server_join_cpu_s=srv_joined.cpu_s - srv_go.cpu_s,
        server_rss_idle_mb=rss_idle / 1024, server_rss_mb=srv1.rss_kb / 1024,
        rss_per_viewer_kb=(srv1.rss_kb - rss_idle) / len(ok) if ok else 0.0,
        gen_cpu_s_per_s=sum((y["cpu_s"] - x["cpu_s"]) / (y["t"] - x["t"]) for x, y in zip(s0, s1, strict=True)),
        gen_rss_mb=sum(int(y["rss_kb"]) for y in s1) / 1024, gen_procs=len(workers),
        pub_cpu_s_per_s=own_cpu / dt,
        other_cpu_s_per_s=max(0.0, (busy1 - busy0) - srv_cpu - gen_cpu - own_cpu) / dt,
        udp_drops_per_s=(drops1 - drops0) / dt,
        room_updates_per_viewer_s=sum(y["room_updates"] - x["room_updates"] for x, y in zip(s0, s1, strict=True))
        / dt / n,
        loadavg_before=load_before, loadavg_after=load_after, close_s=round(close_s, 2),
        server_log_problems=log_problems, failures=failures[:5],
        lost=sum(int(y["lost"]) for y in s1), host_state=host_state, host_events=host_events,
        server_rtp_in_pps=(m1.get("rtp_in_total", 0) - m0.get("rtp_in_total", 0)) / dt,
        server_rtp_out_pps=(m1.get("rtp_out_total", 0) - m0.get("rtp_out_total", 0)) / dt,
        join_udp_drops=drops_joined - drops_go,
        join_fwd_pkts=int(m_joined.get("rtp_out_total", 0) - m_go.get("rtp_out_total", 0)),
        server_join_lag_max_s=max((d for t, d in probes if t < t_joined), default=0.0),
        server_join_lag_p95_s=_pct([d for t, d in probes if t < t_joined], 0.95),
        server_lag_max_s=max((d for t, d in probes if t >= t0), default=0.0),
        gen_join_lag_ms=gen_join_lag, gen_lag_ms=max(float(y["lag_ms"]) for y in s1),
        gen_sys_pct=100 * gen_sys / gen_cpu if gen_cpu else 0.0,
        count=cfg.count, tapped=sum(int(y["tapped"]) for y in s1), batched=sum(int(y["batched"]) for y in s1),
        gen_us_per_pkt=gen_cpu / pkts * 1e6 if pkts else None,
        batch_stats={k: sum(int(y["batch_stats"].get(k, 0)) - int(x["batch_stats"].get(k, 0))
                            for x, y in zip(s0, s1, strict=True))
                     for k in sorted({k for y in s1 for k in y["batch_stats"]})},
        tap_errors=sorted({e for y in s1 for e in y["tap_errors"]})[:3],
    )


def _count_video_sent(host: Participant) -> list[int]:
    """Count the host's video RTP packets apart (on top of :meth:`Participant._hook_sent`): the
    returned one-element list holds the count."""
    sdp = host.pub.localDescription.sdp
    video_pts = {int(pt) for line in sdp.splitlines() if line.startswith("m=video")
                 for pt in line.split()[3:] if pt.isdigit()}
    sent = [0]
    for dtls in {id(t.sender.transport): t.sender.transport for t in host.pub.getTransceivers()}.values():
        send = dtls._send_rtp

        async def counted(data: bytes, _send: Any = send) -> None:
            if len(data) > 1 and (data[1] & 0x7F) in video_pts:
                sent[0] += 1
            await _send(data)

        dtls._send_rtp = counted
    return sent


async def run_point(n: int, cfg: WebinarConfig | None = None, media: EncodedMedia | None = None) -> WebinarResult:
    """A fresh server, one host publishing, ``n`` viewers, one measured window; the server is stopped after."""
    cfg = cfg or WebinarConfig()
    media = media or load_media(cfg.media)
    log_path = cfg.log_dir / f"server-webinar-N{n}.log" if cfg.log_dir else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    _raise_fd_limit()  # the server inherits it
    with contextlib.ExitStack() as stack:
        env = dict(cfg.server_env)
        args: list[str] = []
        if cfg.workers > 1:  # several workers find each other's rooms through Redis
            redis = stack.enter_context(redis_server_running())
            if redis is None:
                raise RuntimeError(f"--workers {cfg.workers} needs redis-server (make system-deps installs it)")
            env.update(UROK_REDIS_URL=redis.url, UROK_SPAN_AFTER=str(cfg.span_after))
            args = ["--workers", str(cfg.workers)]
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with loopback_ice():
                server = await ServerProcess.start(log_path=log_path, args=args, timeout=60.0)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            groups: list[Path] = []
            if cfg.worker_cpu > 0:  # a worker as small as the run needs (see benchmarks/cpu_limit.py)
                pids = children(server.pid) if cfg.workers > 1 else [server.pid]
                groups = stack.enter_context(cpu_quota(pids, cfg.worker_cpu))
                print(f"N={n}: {len(pids)} worker process(es) limited to {cfg.worker_cpu:g} core each", flush=True)
            with loopback_ice(), tolerant_consent(not cfg.strict_consent):
                result = await _run_against(server, n, cfg, media)
            if groups:
                print(f"N={n}: the workers waited {throttled_s(groups):.1f} s in all for their CPU quota", flush=True)
            return result
        finally:
            server.stop()
    raise AssertionError("unreachable")


# ---- table ----------------------------------------------------------------------------------------------
COLUMNS: list[tuple[str, Callable[[WebinarResult], str]]] = [
    ("N", lambda r: f"{r.viewers}"),
    ("conn", lambda r: f"{r.connected}"),
    ("alive", lambda r: f"{r.alive_end}"),
    ("join s", lambda r: f"{r.join_s:.1f}"),
    ("p50/p95 s", lambda r: f"{r.join_p50_s:.1f}/{r.join_p95_s:.1f}"),
    ("pkt/s/viewer", lambda r: f"{r.viewer_pps:.1f}"),
    ("pub pkt/s", lambda r: f"{r.pub_pps:.1f}"),
    ("loss %", lambda r: f"{r.loss_pct:.2f}"),
    ("seq loss %", lambda r: f"{r.seq_loss_pct:.2f}"),
    ("max gap ms", lambda r: f"{r.max_gap_ms}"),
    ("Mb/s", lambda r: f"{r.recv_mbps:.0f}"),
    ("SFU cpu/s", lambda r: f"{r.server_cpu_s_per_s:.2f}"),
    ("us/pkt", lambda r: "-" if r.server_us_per_pkt is None else f"{r.server_us_per_pkt:.1f}"),
    ("join cpu s", lambda r: f"{r.server_join_cpu_s:.1f}"),
    ("ms/join", lambda r: "-" if r.join_ms_per_viewer() is None else f"{r.join_ms_per_viewer():.1f}"),
    ("thr", lambda r: f"{r.server_threads}"),
    ("RSS idle/MB", lambda r: f"{r.server_rss_idle_mb:.0f}/{r.server_rss_mb:.0f}"),
    ("KB/viewer", lambda r: f"{r.rss_per_viewer_kb:.0f}"),
    ("gen cpu/s", lambda r: f"{r.gen_cpu_s_per_s:.2f}"),
    ("gen us/pkt", lambda r: "-" if r.gen_us_per_pkt is None else f"{r.gen_us_per_pkt:.1f}"),
    ("gen MB", lambda r: f"{r.gen_rss_mb:.0f}"),
    ("other cpu/s", lambda r: f"{r.other_cpu_s_per_s:.2f}"),
    ("loadavg", lambda r: r.loadavg_before.split()[0] + "/" + r.loadavg_after.split()[0]),
    ("udp drop/s", lambda r: f"{r.udp_drops_per_s:.0f}"),
    ("srv lag s", lambda r: f"{r.server_join_lag_max_s:.1f}/{r.server_lag_max_s:.1f}"),
    ("gen lag s", lambda r: f"{r.gen_join_lag_ms / 1000:.1f}/{r.gen_lag_ms / 1000:.1f}"),
]


def format_table(results: Sequence[WebinarResult]) -> str:
    rows = [[name for name, _ in COLUMNS]] + [[fmt(r) for _, fmt in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    held = [r for r in results if r.holds()]
    if held:
        best = max(held, key=lambda r: r.viewers)
        per_viewer_cpu = best.server_cpu_s_per_s / best.viewers
        lines += ["", f"largest N with every viewer connected and < 1% loss: {best.viewers}; per viewer there: "
                  f"server {per_viewer_cpu * 1000:.2f} ms CPU/s, {best.rss_per_viewer_kb:.0f} KB RSS, "
                  f"{best.join_ms_per_viewer() or 0:.1f} ms CPU to join (forwarding excluded); generator "
                  f"{best.gen_cpu_s_per_s / best.viewers * 1000:.2f} ms CPU/s, "
                  f"{best.gen_rss_mb * 1024 / best.viewers:.0f} KB"]
    ordered = sorted(results, key=lambda r: r.viewers)
    marginal = [
        f"  N {a.viewers:>4} -> {b.viewers:>4}: server "
        f"{(b.server_cpu_s_per_s - a.server_cpu_s_per_s) * 1000 / (b.viewers - a.viewers):.2f} ms CPU/s and "
        f"{(b.server_rss_mb - a.server_rss_mb) * 1024 / (b.viewers - a.viewers):.0f} KB per extra viewer"
        for a, b in itertools.pairwise(ordered) if b.viewers > a.viewers]
    if marginal:
        lines += ["", "marginal cost:", *marginal]
    notes = [f"  N={r.viewers}: {'; '.join(r.disturbances())}" for r in results if r.disturbances()]
    if notes:
        lines += ["", "disturbed (rerun these):", *notes]
    fails = [f"  N={r.viewers}: {r.viewers - r.connected} not connected, {r.connected - r.alive_end} dropped; "
             f"e.g. {r.failures[:2]}" for r in results if r.failures or r.alive_end < r.connected]
    if fails:
        lines += ["", "viewers missing:", *fails]
    return "\n".join(lines)


COUNT_WHERE = {"batch": "at the socket, read and counted in C every tick (batch)",
               "raw": "at the socket (raw)", "srtp": "after SRTP"}


def _counted(r: WebinarResult) -> str:
    if r.count == "srtp":
        return "after SRTP"
    where = f"at the socket by {r.tapped} viewers"
    if r.count == "batch":
        b = r.batch_stats
        where += (f", {r.batched} of them in C ({b.get('drains', 0)} drains, {b.get('recvmmsg', 0)} recvmmsg calls "
                  f"for {b.get('datagrams', 0)} datagrams, {b.get('others', 0)} passed on to aioice/aiortc)")
    return where


def parse_viewers(text: str) -> list[int]:
    out = []
    for x in text.replace(" ", ",").split(","):
        if not x:
            continue
        n = int(x)
        if n < 1 or n > 2000:
            raise argparse.ArgumentTypeError("viewer counts are 1..2000")
        out.append(min(n, MAX_VIEWERS))  # 2000 -> 1999: the room holds 2000 with the host
    if not out:
        raise argparse.ArgumentTypeError("no viewer count")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.webinar", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", type=parse_viewers, default=list(DEFAULT_VIEWERS),
                    help="viewer counts, e.g. 100,500,1000,2000 (2000 runs 1999: max_participants is 2000 "
                         "with the host)")
    ap.add_argument("--procs", type=int, default=2, help="generator processes (default 2)")
    ap.add_argument("--window", type=float, default=15.0, help="measured seconds per N (default 15)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after the last viewer's media (default 5)")
    ap.add_argument("--concurrency", type=int, default=50, help="joins at a time per generator process (50)")
    ap.add_argument("--join-timeout", type=float, default=60.0, help="seconds one viewer may take to join (60)")
    ap.add_argument("--strict-consent", action="store_true",
                    help="aioice's own ICE consent checks: an answer over 0.5 s late is a failure, 6 in a row close "
                         "the connection (default: retransmit each check for 7.5 s, closer to a browser)")
    ap.add_argument("--count", choices=COUNT_MODES, default="batch",
                    help="where a viewer counts its RTP packets: batch (default) its socket is read with recvmmsg "
                         "and counted in C (benchmarks._rxbatch) every --batch-tick-ms, from the clear RTP header "
                         "of each SRTP packet; raw at its socket in Python, before aioice and aiortc; srtp after "
                         "aiortc's SRTP decryption, through aiortc's whole receive path (2.3x the CPU per packet "
                         "of raw)")
    ap.add_argument("--batch-tick-ms", type=float, default=10.0,
                    help="batch: how often each generator process reads its viewers' sockets (default 10 ms)")
    ap.add_argument("--stop-on-fail", action="store_true",
                    help="skip the larger N once one does not hold (a viewer missing or loss >= 1%%)")
    ap.add_argument("--log-dir", type=Path, help="keep each server's log here (server-webinar-N<n>.log)")
    ap.add_argument("--workers", type=int, default=1,
                    help="urok serve --workers N (> 1 starts a throwaway redis-server; default 1)")
    ap.add_argument("--span-after", type=int, default=0,
                    help="with --workers: the room spans the workers after this many participants "
                         "(span_after; 0: the room stays on one worker)")
    ap.add_argument("--worker-cpu", type=float, default=0.0,
                    help="limit each worker process to this share of a core (cgroups, root; 0: no limit), to show "
                         "one worker's capacity and 1.5x of it on a small machine")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per N (RESULT {...})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    cfg = WebinarConfig(window_s=args.window, warmup_s=args.warmup, procs=args.procs,
                        concurrency=args.concurrency, join_timeout_s=args.join_timeout, log_dir=args.log_dir,
                        strict_consent=args.strict_consent, count=args.count,
                        batch_tick_s=args.batch_tick_ms / 1000, workers=args.workers, span_after=args.span_after,
                        worker_cpu=args.worker_cpu)
    media = load_media(cfg.media)
    print(f"server: {CHECKOUT} at {checkout_version()}, urok serve --dev --workers {cfg.workers} (span_after "
          f"{cfg.span_after}; each worker {cfg.worker_cpu or 'unlimited'} cores), UROK_RTC_UDP_PORT=0", flush=True)
    print(f"load: 1 host publishing the low layer alone (no simulcast from aiortc): {media.describe()}; "
          f"viewers in {cfg.procs} process(es), {cfg.concurrency} joins at a time each; window {cfg.window_s:g} s, "
          f"warm-up {cfg.warmup_s:g} s; ICE consent {'strict (aioice)' if cfg.strict_consent else 'tolerant'}; "
          f"viewers count RTP {COUNT_WHERE[cfg.count]}; "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", flush=True)
    _install_uvloop()

    async def run_all() -> list[WebinarResult]:
        results: list[WebinarResult] = []
        for n in args.viewers:
            r = await run_point(n, cfg, media)
            results.append(r)
            print(f"N={r.viewers}: {r.connected} connected ({r.alive_end} at the end), join {r.join_s:.1f} s, "
                  f"loss {r.loss_pct:.2f}% (seq {r.seq_loss_pct:.2f}%), server {r.server_cpu_s_per_s:.2f} cpu/s "
                  f"{r.server_rss_mb:.0f} MB, generator {r.gen_cpu_s_per_s:.2f} cpu/s "
                  f"({r.gen_sys_pct:.0f}% in the kernel) {r.gen_rss_mb:.0f} MB, "
                  f"loadavg {r.loadavg_before} -> {r.loadavg_after}, everybody left in {r.close_s:.1f} s; "
                  f"{r.lost} viewer connections lost; host publisher {r.host_state} ({', '.join(r.host_events)}); "
                  f"server counted {r.server_rtp_in_pps:.0f} RTP/s in, {r.server_rtp_out_pps:.0f} out; "
                  f"counted {_counted(r)}; generator {r.gen_us_per_pkt or 0:.1f} us CPU per packet received",
                  flush=True)
            if args.json:
                print("RESULT " + r.to_json(), flush=True)
            if args.stop_on_fail and not r.holds():
                print(f"N={n} did not hold: stopping here", flush=True)
                break
        return results

    results = asyncio.run(run_all())
    print()
    print(format_table(results))
    return 0 if all(r.holds() for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Network benchmark: a urok server and aiortc clients on impaired links (issue 12, part 1).

    .venv/bin/python -m benchmarks.network                          # every scenario, 30 s windows
    .venv/bin/python -m benchmarks.network --scenario loss --duration 60
    .venv/bin/python -m benchmarks.network --server-checkout /tmp/urok-before   # another tree's server
    .venv/bin/python -m benchmarks.network --publisher chromium --camera 1280x720 --subscriber chromium \
        --scenario downlink --subscribers 1 --before 5 --duration 20 --repeat 6  # the downlink goals, per run

Needs root (network namespaces, :mod:`tests.netns`).  The server (``python -m signaling serve --dev``,
from this checkout or ``--server-checkout``) runs in its own namespace on 198.18.0.1 with its media
on one fixed UDP port; the publisher and every subscriber run in this process, each in a namespace
of its own with its own link to the server, so an impairment touches one client's link only.  The
publisher sends pre-encoded VP8 (640x360, 30 fps, ~1 Mbit/s, a keyframe every 2 s) and Opus 20 ms
(:mod:`benchmarks.media_prep`), looped: it cannot adapt its bit rate (aiortc publishes no
simulcast either).  Each subscriber decodes the video (aiortc: its jitter buffer, its NACKs and PLIs
to the server, libvpx).

Scenarios (the issue's goals in brackets):

* ``clean``: the reference: 20 ms delay each way on the publisher's link, no loss (what the
  accounting reads on a link that loses nothing).
* ``loss``: 5% random loss on the publisher's uplink, 20 ms delay each way on its link.  Per
  subscriber: the share of the media packets it received [>= 99.5%] and the longest freeze
  [<= 500 ms].
* ``downlink``: one subscriber's downlink goes from unlimited to 500 kbit/s and back (a second
  subscriber stays on a clean link); per phase the received share, the longest freeze, the decoded
  frame size (the layer, with a simulcast publisher) and frames per second, and a per-second trace
  [low layer within 5 s, no freeze over 1 s after that, high layer within 15 s of the lift].
* ``uplink``: the publisher limited to 800 kbit/s up; freezes after the first 5 s [<= 1 s].

What is measured: the publisher counts the RTP packets it sends per stream (first transmissions,
from its sequence numbers; retransmissions apart); each subscriber counts the packets it receives
per stream by their sequence numbers, RTX unwrapped (a repaired packet counts once), so the
received share in a window is the distinct sequence numbers received over the span they cover
(the SFU keeps a plain stream's sequence numbers contiguous: a packet lost upstream stays a gap
downstream); a freeze is the longest gap between two decoded video frames (or from the last frame
to the end of the window).  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from benchmarks.forwarding import CHECKOUT, Participant, Rest, admin_token, machine_busy_s, media_tracks
from benchmarks.media_prep import EncodedMedia, MediaSpec, _Pattern, load_media
from benchmarks.network_chromium import ChromiumPublisher, ChromiumSubscriberPage, InboundWindow
from benchmarks.webinar import tolerant_consent
from sfu import aiortc_compat
from tests.netns import SERVER_ADDRESS, ClientLink, Impairment, NetnsUnavailable, Network

SCENARIOS = ("clean", "loss", "downlink", "uplink")
HTTP_PORT = 8080
RTC_UDP_PORT = 7882


# ---- accounting -------------------------------------------------------------------------------------------
class SeqTally:
    """Distinct extended sequence numbers of one stream and when each first arrived."""

    def __init__(self) -> None:
        self.highest: int | None = None
        self.first_seen: dict[int, float] = {}
        self.duplicates = 0

    def extend(self, seq: int) -> int:
        if self.highest is None:
            return seq
        delta = ((seq - self.highest + 0x8000) & 0xFFFF) - 0x8000
        return self.highest + delta

    def add(self, seq: int, now: float) -> int:
        ext = self.extend(seq)
        if self.highest is None or ext > self.highest:
            self.highest = ext
        if ext in self.first_seen:
            self.duplicates += 1
        else:
            self.first_seen[ext] = now
        return ext

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        """(distinct packets that arrived in [t0, t1), the sequence span they cover)."""
        seqs = [s for s, t in self.first_seen.items() if t0 <= t < t1]
        return (len(seqs), max(seqs) - min(seqs) + 1) if seqs else (0, 0)


def rtp_payload_offset(data: bytes) -> int:
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    return offset


@dataclass
class Frame:
    t: float
    height: int


class NetParticipant(Participant):
    """A benchmark participant on a 198.18.x.x link: candidates from the server's namespace."""

    async def _candidate(self, m: dict[str, Any]) -> None:
        target = "subscriber" if m.get("target") == "subscriber" else "publisher"
        pc = self.sub if target == "subscriber" else self.pub
        if pc is None or pc.remoteDescription is None:
            self._early[target].append(m)
            return
        cand = m.get("candidate")
        if not isinstance(cand, dict) or not cand.get("candidate"):
            return
        line = str(cand["candidate"]).removeprefix("a=").removeprefix("candidate:")
        if SERVER_ADDRESS not in line.split():
            return
        c = candidate_from_sdp(line)
        c.sdpMid, c.sdpMLineIndex = cand.get("sdpMid"), cand.get("sdpMLineIndex") or 0
        with contextlib.suppress(Exception):
            await pc.addIceCandidate(c)


class Publisher(NetParticipant):
    """Counts what its connection sends: first transmissions per kind, retransmissions apart."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.sent: dict[str, SeqTally] = {"audio": SeqTally(), "video": SeqTally()}
        self.retransmitted = 0
        self.bytes_at: list[tuple[float, int]] = []  # (time, RTP bytes sent so far), per packet
        self._bytes = 0
        self.media_bytes_at: list[tuple[float, int]] = []  # the same, first transmissions only
        self._media_bytes = 0

    def _hook_sent(self) -> None:
        media: dict[int, str] = {}
        rtx: set[int] = set()
        for t in self.pub.getTransceivers():
            media[t.sender._ssrc] = t.kind
            rtx.add(t.sender._rtx_ssrc)
        for dtls in {id(t.sender.transport): t.sender.transport for t in self.pub.getTransceivers()}.values():
            send = dtls._send_rtp

            async def counted(data: bytes, _send: Any = send) -> None:
                if len(data) >= 12 and not 192 <= data[1] <= 223:
                    self._bytes += len(data)
                    self.bytes_at.append((time.monotonic(), self._bytes))
                    ssrc = int.from_bytes(data[8:12], "big")
                    kind = media.get(ssrc)
                    if ssrc in rtx:
                        self.retransmitted += 1
                    elif kind is not None:
                        tally = self.sent[kind]
                        seq = (data[2] << 8) | data[3]
                        if tally.highest is not None and tally.extend(seq) <= tally.highest:
                            self.retransmitted += 1  # re-sent without RTX
                        else:
                            now = time.monotonic()
                            tally.add(seq, now)
                            self._media_bytes += len(data)
                            self.media_bytes_at.append((now, self._media_bytes))
                await _send(data)

            dtls._send_rtp = counted

    def kbps_between(self, t0: float, t1: float) -> float:
        return _kbps(self.bytes_at, t0, t1)

    def media_kbps_between(self, t0: float, t1: float) -> float:
        return _kbps(self.media_bytes_at, t0, t1)

    def sent_between(self, kind: str, t0: float, t1: float) -> int:
        return self.sent[kind].window(t0, t1)[0]

    def first_video_at(self) -> float:
        return min(self.sent["video"].first_seen.values(), default=time.monotonic())


def _kbps(bytes_at: list[tuple[float, int]], t0: float, t1: float) -> float:
    inside = [b for t, b in bytes_at if t0 <= t < t1]
    return (inside[-1] - inside[0]) * 8 / (t1 - t0) / 1000 if len(inside) > 1 else 0.0


class LivePatternTrack(VideoStreamTrack):
    """The benchmark's test pattern, encoded live by aiortc (whose VP8 encoder follows the REMB it
    receives, 250 kbit/s..1.5 Mbit/s): a publisher that can adapt, unlike the pre-encoded one."""

    def __init__(self, spec: MediaSpec) -> None:
        super().__init__()
        self._pattern = _Pattern(spec.width, spec.height, spec.fps)
        self._i = 0

    async def recv(self) -> Any:
        pts, time_base = await self.next_timestamp()
        frame = self._pattern.frame(self._i)
        self._i += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


class Subscriber(NetParticipant):
    """Counts what arrives per kind (RTX unwrapped), decodes the video and times its frames."""

    def __init__(self, *a: Any, label: str = "", **kw: Any) -> None:
        super().__init__(*a, decode=True, **kw)
        self.label = label
        self.got: dict[str, SeqTally] = {"audio": SeqTally(), "video": SeqTally()}
        self.frames: list[Frame] = []
        self.bytes_at: list[tuple[float, int]] = []  # (time, RTP bytes so far), per packet
        self._bytes = 0
        self._pt: dict[int, tuple[str, bool]] = {}  # payload type -> (kind, is RTX)

    def _hook_counters(self) -> None:
        for t in self.sub.getTransceivers():
            for codec in getattr(t, "_codecs", []):
                self._pt[codec.payloadType] = (t.kind, codec.mimeType.lower().endswith("/rtx"))
        for transceiver in self.sub.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None or id(dtls) in self._hooked:
                continue
            self._hooked.add(id(dtls))
            rtp_next = dtls._handle_rtp_data

            async def rtp_pass(data: bytes, arrival_time_ms: int, _next: Any = rtp_next) -> None:
                self._count(data)
                await _next(data, arrival_time_ms)

            dtls._handle_rtp_data = rtp_pass

    def _count(self, data: bytes) -> None:
        if len(data) < 12:
            return
        now = time.monotonic()
        self.counter.rtp += 1
        self._bytes += len(data)
        self.bytes_at.append((now, self._bytes))
        kind, is_rtx = self._pt.get(data[1] & 0x7F, ("", False))
        if not kind:
            return
        seq = (data[2] << 8) | data[3]
        if is_rtx:
            offset = rtp_payload_offset(data)
            end = len(data) - (data[-1] if data[0] & 0x20 else 0)
            if end - offset < 2:
                return  # padding only (a probe)
            seq = int.from_bytes(data[offset:offset + 2], "big")
        self.got[kind].add(seq, now)

    async def _decode(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                self.frames.append(Frame(time.monotonic(), int(getattr(frame, "height", 0))))
                self.counter.frames += 1

    def longest_freeze(self, t0: float, t1: float) -> float:
        return longest_freeze([f.t for f in self.frames], t0, t1)

    def has_frames(self) -> bool:
        return bool(self.frames)

    def has_video(self) -> bool:
        return self.got["video"].highest is not None

    def frames_between(self, t0: float, t1: float) -> list[Frame]:
        return [f for f in self.frames if t0 <= f.t < t1]

    def kbps_between(self, t0: float, t1: float) -> float:
        return _kbps(self.bytes_at, t0, t1)


def longest_freeze(times: Sequence[float], t0: float, t1: float) -> float:
    """The longest gap between frames (their ``times``, in order) that overlaps [t0, t1], in seconds
    (a gap that began before t0 counts from t0; the last frame to t1 counts too)."""
    prev, longest = None, 0.0
    for t in times:
        if t >= t0:
            start = t0 if prev is None or prev < t0 else prev
            longest = max(longest, min(t, t1) - start)
        if t >= t1:
            break
        prev = t
    last = max((t for t in times if t < t1), default=None)
    return max(longest, t1 - max(t0, last if last is not None else t0))


class ChromiumSubscriber:
    """The web client in headless Chromium as a subscriber (``--subscriber chromium``): the frames
    its <video> presents (requestVideoFrameCallback: time and height) and, from getStats, what it
    received (packets received and lost per kind, bytes) instead of sequence numbers."""

    def __init__(self, page: ChromiumSubscriberPage, label: str) -> None:
        self.page, self.label = page, label
        self.got = {"audio": InboundWindow(page, "audio"), "video": InboundWindow(page, "video")}

    @property
    def frames(self) -> list[Frame]:
        return [Frame(t, h) for t, h in self.page.frames]

    def has_frames(self) -> bool:
        return bool(self.page.frames)

    def frames_between(self, t0: float, t1: float) -> list[Frame]:
        return [Frame(t, h) for t, h in self.page.frames if t0 <= t < t1]

    def longest_freeze(self, t0: float, t1: float) -> float:
        return longest_freeze([t for t, _ in self.page.frames], t0, t1)

    def kbps_between(self, t0: float, t1: float) -> float:
        return self.page.kbps_between(t0, t1)

    def browser_freezes(self) -> dict[str, float]:
        """Chromium's own freeze count and duration (inbound-rtp) so far, NACKs and PLIs it sent."""
        last = self.page.samples[-1].video if self.page.samples else {}
        return {k: float(last.get(k, 0)) for k in ("freezes", "freeze_s", "nacks", "plis")}

    async def close(self) -> None:
        await self.page.close()


AnySubscriber = Subscriber | ChromiumSubscriber


# ---- results ----------------------------------------------------------------------------------------------
@dataclass
class SubPhase:
    subscriber: str
    link: str
    video_received: int
    video_span: int
    audio_received: int
    audio_span: int
    freeze_s: float
    fps: float
    heights: dict[int, int]  # decoded frame height -> frames
    kbps: float

    @property
    def media_pct(self) -> float:
        span = self.video_span + self.audio_span
        return 100.0 * (self.video_received + self.audio_received) / span if span else 0.0

    @property
    def video_pct(self) -> float:
        return 100.0 * self.video_received / self.video_span if self.video_span else 0.0


@dataclass
class Phase:
    name: str
    seconds: float
    publisher_link: str
    video_sent: int
    audio_sent: int
    publisher_kbps: float  # RTP the publisher sent, retransmissions included
    publisher_media_kbps: float  # first transmissions only (what its encoder makes)
    subscribers: list[SubPhase]


@dataclass
class ScenarioResult:
    scenario: str
    backend: str
    server_checkout: str
    phases: list[Phase]
    publisher_retransmitted: int
    trace: list[dict[str, Any]] = field(default_factory=list)  # per second, the impaired subscriber (downlink)
    publisher: str = "prepared"  # prepared, live or chromium
    # downlink: s from the limit to the first frame below the layer before it, from the lift to the first
    # frame back on that layer, the longest freeze from 5 s after the limit to the lift
    times: dict[str, float | None] = field(default_factory=dict)
    machine_busy_cores: float = 0.0  # the whole machine's CPU use over the run (everything on it), in cores
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Mark:
    t: float
    pub_link: str  # the publisher's uplink from this mark on
    sub_links: list[str]  # each subscriber's downlink from this mark on


# ---- the run ----------------------------------------------------------------------------------------------
@dataclass
class NetConfig:
    duration: float = 30.0  # the measured window (loss, uplink); each limited/after phase (downlink)
    subscribers: int = 2
    server_checkout: Path = CHECKOUT
    media: MediaSpec = field(default_factory=MediaSpec)
    live: bool = False  # the publisher encodes live (follows REMB) instead of sending pre-encoded VP8
    chromium: bool = False  # the publisher is a headless Chromium on the web client (simulcast q/h/f)
    chromium_subscribers: bool = False  # each subscriber is a headless Chromium on the web client
    before: float = 10.0  # downlink: seconds unlimited before the limit
    camera: tuple[int, int] | None = None  # chromium: the camera size asked for (None: the client's 640x480)
    join_timeout: float = 30.0
    log_dir: Path | None = None  # the server's log is kept there when given


def _server_cmd() -> list[str]:
    return [sys.executable, "-m", "signaling", "serve", "--dev", "--host", SERVER_ADDRESS, "--port", str(HTTP_PORT)]


def _log_tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def _wait_healthy(http: aiohttp.ClientSession, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    base = f"http://{SERVER_ADDRESS}:{HTTP_PORT}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{_log_tail(log_path)}")
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
            async with http.get(base + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz in 60 s")


class Run:
    """One scenario: the network, the server, a publisher and subscribers; close() removes all."""

    def __init__(self, net: Network, cfg: NetConfig, media: EncodedMedia | None) -> None:
        self.net, self.cfg, self.media = net, cfg, media
        self.pub_link = net.add_client("pub")
        self.sub_links = [net.add_client(f"sub{i + 1}") for i in range(cfg.subscribers)]
        self.http: list[aiohttp.ClientSession] = []
        self.publisher: Publisher | ChromiumPublisher | None = None
        self.subs: list[AnySubscriber] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.data_dir = Path(tempfile.mkdtemp(prefix="urok-net-data-"))
        log_dir = cfg.log_dir or self.data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "server.log"

    def start_server(self) -> None:
        checkout = self.cfg.server_checkout.resolve()
        env = {**os.environ, "UROK_RTC_UDP_PORT": str(RTC_UDP_PORT), "UROK_DATA_DIR": str(self.data_dir),
               "UROK_DEMO_ROOM": "false", "PYTHONPATH": str(checkout)}
        with self.log_path.open("wb") as out:
            self.server = self.net.server.popen(_server_cmd(), stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=checkout, env=env)

    async def session(self, link: ClientLink) -> aiohttp.ClientSession:
        with link.namespace.entered():
            http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.http.append(http)
        return http

    async def connect(self) -> None:
        """Publisher first (in its namespace), then each subscriber in its own; every socket a client
        opens is made while this thread is in that client's namespace."""
        self.start_server()
        assert self.server is not None
        base = f"http://{SERVER_ADDRESS}:{HTTP_PORT}"
        with self.pub_link.namespace.entered():
            http = await self.session(self.pub_link)
            await _wait_healthy(http, self.server, self.log_path)
            rest = Rest(http, base, admin_token())
            self.room_id = await rest.create_room()
            token = await rest.token(self.room_id, "publisher", "participant")
            if self.cfg.chromium:
                url = f"{base}/join/{self.room_id}?token={token}"
                self.publisher = await ChromiumPublisher.start(self.pub_link.namespace, url, base,
                                                               self.cfg.join_timeout, self.cfg.camera)
            else:
                pub = await Publisher.join(http, base, token, self.cfg.join_timeout)
                assert isinstance(pub, Publisher) and self.media is not None
                self.publisher = pub
                audio, video = media_tracks(self.media)
                tracks = [audio, LivePatternTrack(self.media.spec) if self.cfg.live else video]
                await pub.publish(tracks, self.cfg.join_timeout)
        for i, link in enumerate(self.sub_links):
            if self.cfg.chromium_subscribers:
                await self._chromium_subscriber(link, base, i)
                continue
            with link.namespace.entered():
                http = await self.session(link)
                token = await Rest(http, base, admin_token()).token(self.room_id, f"viewer{i + 1}", "participant")
                aio = await Subscriber.join(http, base, token, self.cfg.join_timeout, label=f"sub{i + 1}")
                assert isinstance(aio, Subscriber)
                self.subs.append(aio)
                try:
                    await aio.wait_receiving(self.cfg.join_timeout)
                    # the first video packet (ICE and DTLS done) before this namespace is left
                    await aio.wait(aio.has_video, self.cfg.join_timeout, "a video packet")
                except RuntimeError as e:
                    raise RuntimeError(f"{aio.label}: {e} ({aio.describe()})") from e
        # a decoded frame (a keyframe came through) when the link lets one through: a warm-up, not a
        # condition (a publisher over its uplink's rate may never get one through)
        for sub in self.subs:
            if isinstance(sub, Subscriber):
                with contextlib.suppress(RuntimeError):
                    await sub.wait(sub.has_frames, 5, "a decoded video frame")

    async def _chromium_subscriber(self, link: ClientLink, base: str, i: int) -> None:
        with link.namespace.entered():  # the session's sockets are opened by its requests: all in here
            http = await self.session(link)
            token = await Rest(http, base, admin_token()).token(self.room_id, f"viewer{i + 1}", "participant")
        page = await ChromiumSubscriberPage.start(link.namespace, f"{base}/join/{self.room_id}?token={token}", base,
                                                  self.cfg.join_timeout)
        sub = ChromiumSubscriber(page, f"sub{i + 1}")
        self.subs.append(sub)
        deadline = time.monotonic() + self.cfg.join_timeout
        while not sub.has_frames():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sub.label}: Chromium presented no video frame in {self.cfg.join_timeout:.0f} s "
                                   f"(stats {page.samples[-1:]}, console {page.console[-10:]})")
            await asyncio.sleep(0.2)

    def mark(self) -> Mark:
        """Now, and what each link does from now on (a phase is labelled by the mark that starts it)."""
        return Mark(time.monotonic(), self.pub_link.uplink.current.describe(),
                    [link.downlink.current.describe() for link in self.sub_links])

    def phase(self, name: str, m0: Mark, t1: float) -> Phase:
        assert self.publisher is not None
        t0 = m0.t
        subs: list[SubPhase] = []
        for sub, link_desc in zip(self.subs, m0.sub_links, strict=True):
            vr, vs = sub.got["video"].window(t0, t1)
            ar, as_ = sub.got["audio"].window(t0, t1)
            frames = sub.frames_between(t0, t1)
            heights: dict[int, int] = {}
            for f in frames:
                heights[f.height] = heights.get(f.height, 0) + 1
            subs.append(SubPhase(sub.label, link_desc, vr, vs, ar, as_, sub.longest_freeze(t0, t1),
                                 len(frames) / (t1 - t0), heights, sub.kbps_between(t0, t1)))
        pub = self.publisher
        return Phase(name, t1 - t0, m0.pub_link, pub.sent_between("video", t0, t1), pub.sent_between("audio", t0, t1),
                     pub.kbps_between(t0, t1), pub.media_kbps_between(t0, t1), subs)

    async def close(self) -> None:
        for p in [*self.subs, *([self.publisher] if self.publisher else [])]:
            with contextlib.suppress(Exception):
                await p.close()  # Chromium too: its processes are the driver's, not the namespace's
        for http in self.http:
            await http.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _trace(sub: AnySubscriber, t_start: float, t_end: float, marks: dict[str, float],
           publisher: Publisher | ChromiumPublisher | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    t = t_start
    while t + 1 <= t_end + 1e-6:
        frames = sub.frames_between(t, t + 1)
        heights = sorted({f.height for f in frames})
        row = {"t": round(t - marks["limit"], 1), "fps": len(frames), "height": heights,
               "kbps": round(sub.kbps_between(t, t + 1)), "freeze_ms": round(1000 * sub.longest_freeze(t, t + 1))}
        if isinstance(publisher, ChromiumPublisher):
            row["pub"] = publisher.second(t, t + 1)
        rows.append(row)
        t += 1
    return rows


def layer_times(sub: AnySubscriber, limit: float, lift: float, end: float) -> dict[str, float | None]:
    """From a subscriber's decoded frames: the height it decoded in the 2 s before the limit (the
    layer it was on), seconds from the limit to its first frame below that height (None: never), the
    longest freeze from 5 s after the limit (and from that first lower frame) to the lift, and seconds
    from the lift to its first frame back at that height (None: not within the window)."""
    before = [f.height for f in sub.frames_between(limit - 2, limit)]
    high = max(before, default=0)
    down = next((f.t - limit for f in sub.frames_between(limit, lift) if f.height < high), None)
    up = next((f.t - lift for f in sub.frames_between(lift, end) if f.height >= high), None) if high else None
    return {"height_before": float(high), "down_s": down, "up_s": up,
            "freeze_after_5s_s": sub.longest_freeze(limit + 5, lift) if lift > limit + 5 else None,
            "freeze_after_down_s": sub.longest_freeze(limit + down, lift) if down is not None else None}


async def _wait_top_layer(run: Run, timeout: float) -> float | None:
    """Chromium starts at 300 kbit/s and adds layers as its estimate grows: wait until the first
    subscriber decodes the highest layer the publisher sends (the camera's height when one was
    asked for) for 2 s running; seconds since the publisher's first video (None: not within
    ``timeout``, the run goes on)."""
    pub, sub = run.publisher, run.subs[0]
    assert isinstance(pub, ChromiumPublisher)
    deadline = time.monotonic() + timeout
    held = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = time.monotonic()
        second = pub.second(now - 1, now)
        heights = [second["layers"][rid]["height"] for rid in second.get("active", [])]
        top = max(heights, default=0)
        if run.cfg.camera is not None:
            top = max(top, run.cfg.camera[1])
        frames = sub.frames_between(now - 1, now)
        held = held + 1 if frames and top and min(f.height for f in frames) >= top else 0
        if held >= 2:
            return round(now - pub.first_video_at(), 1)
    return None


async def run_scenario(scenario: str, cfg: NetConfig, media: EncodedMedia | None = None,
                       on_ready: Callable[[Network], None] | None = None) -> ScenarioResult:
    """One scenario on a network of its own; everything it made is gone when it returns."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
    if media is None and not cfg.chromium:  # Chromium sends its fake camera
        media = load_media(cfg.media)
    # aioice's host addresses are process-wide: a loopback worker made earlier in this process (a test
    # before this one) would leave the clients nothing to gather in their namespaces
    with Network() as net, tolerant_consent(), aiortc_compat.host_addresses(None):
        run = Run(net, cfg, media)
        busy0, wall0 = machine_busy_s(), time.monotonic()
        kind = "chromium" if cfg.chromium else "live" if cfg.live else "prepared"
        result = ScenarioResult(scenario, net.backend, str(cfg.server_checkout), [], 0, publisher=kind)
        try:
            if on_ready is not None:
                on_ready(net)
            pub = run.pub_link
            if scenario in ("loss", "clean"):
                pub.uplink.apply(Impairment(loss_pct=5 if scenario == "loss" else 0, delay_ms=20))
                pub.downlink.apply(Impairment(delay_ms=20))
            elif scenario == "uplink":
                pub.uplink.apply(Impairment(rate_kbit=800))
            await run.connect()
            if scenario in ("loss", "clean"):
                await asyncio.sleep(2)  # the subscribers' jitter buffers settle
                m0 = run.mark()
                await asyncio.sleep(cfg.duration)
                name = "5% loss up, 20 ms each way" if scenario == "loss" else "20 ms each way (reference)"
                result.phases.append(run.phase(name, m0, time.monotonic()))
            elif scenario == "uplink":
                # "after the first 5 s" of the publisher's media
                assert run.publisher is not None
                first = run.publisher.first_video_at()
                await asyncio.sleep(max(0.0, first + 5 - time.monotonic()))
                m0 = run.mark()
                await asyncio.sleep(cfg.duration)
                t1 = time.monotonic()
                result.phases.append(run.phase("800 kbit/s up, after 5 s", m0, t1))
                if cfg.chromium:  # the publisher's adaptation, second by second from its first video
                    result.trace = _trace(run.subs[0], first, t1, {"limit": first}, run.publisher)
                    result.times = {f"{s.label}_freeze_after_5s_s": s.longest_freeze(first + 5, t1)
                                    for s in run.subs}
            else:
                limited = run.sub_links[0]
                top_s = await _wait_top_layer(run, 60) if cfg.chromium else None
                m0 = run.mark()
                await asyncio.sleep(cfg.before)
                limited.downlink.apply(Impairment(rate_kbit=500))
                m1 = run.mark()
                await asyncio.sleep(cfg.duration)
                limited.downlink.apply(Impairment())
                m2 = run.mark()
                await asyncio.sleep(cfg.duration)
                t3 = time.monotonic()
                result.phases.append(run.phase("before (unlimited)", m0, m1.t))
                result.phases.append(run.phase("500 kbit/s down", m1, m2.t))
                m1_5 = Mark(m1.t + 5, m1.pub_link, m1.sub_links)
                result.phases.append(run.phase("500 kbit/s down, after 5 s", m1_5, m2.t))
                result.phases.append(run.phase("lifted", m2, t3))
                result.trace = _trace(run.subs[0], m0.t, t3, {"limit": m1.t}, run.publisher)
                result.times = layer_times(run.subs[0], m1.t, m2.t, t3)
                if top_s is not None:
                    result.times = {"top_layer_after_s": top_s, **result.times}
            assert run.publisher is not None
            result.publisher_retransmitted = run.publisher.retransmitted
            for sub in run.subs:  # Chromium's own account (inbound-rtp freezeCount, totalFreezesDuration)
                if isinstance(sub, ChromiumSubscriber):
                    result.times.update({f"{sub.label}_chromium_{k}": v for k, v in sub.browser_freezes().items()})
        except (RuntimeError, TimeoutError, OSError) as e:
            result.error = (f"{e!r}\n{traceback.format_exc(limit=-4)}"
                            f"--- server log tail ---\n{_log_tail(run.log_path, 1500)}")
        finally:
            await run.close()
            result.machine_busy_cores = round((machine_busy_s() - busy0) / (time.monotonic() - wall0), 2)
    return result


# ---- output -------------------------------------------------------------------------------------------------
def format_table(results: Sequence[ScenarioResult]) -> str:
    head = (f"{'scenario':<9} {'phase':<28} {'pub link':<20} {'sent v/a':>9} {'pub kbit/s':>15} {'subscriber':<11} "
            f"{'sub link':<14} {'media %':>8} {'video %':>8} {'freeze ms':>9} {'fps':>5} {'height':>9} {'kbit/s':>7}")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.error:
            lines.append(f"{r.scenario:<9} ERROR: {r.error}")
            continue
        for ph in r.phases:
            for s in ph.subscribers:
                height = "/".join(str(h) for h, _ in sorted(s.heights.items(), key=lambda kv: -kv[1])) or "-"
                lines.append(
                    f"{r.scenario:<9} {ph.name:<28} {ph.publisher_link:<20} {ph.video_sent:>4}/{ph.audio_sent:<4} "
                    f"{ph.publisher_media_kbps:>7.0f}/{ph.publisher_kbps:<7.0f} "
                    f"{s.subscriber:<11} {s.link:<14} {s.media_pct:>8.2f} {s.video_pct:>8.2f} "
                    f"{1000 * s.freeze_s:>9.0f} {s.fps:>5.1f} {height:>9} {s.kbps:>7.0f}")
        lines.append(f"{'':<9} publisher retransmissions (answers to NACKs): {r.publisher_retransmitted}; "
                     f"pub kbit/s: media (first transmissions)/all sent; impairments: {r.backend}; "
                     f"publisher: {r.publisher}; machine busy {r.machine_busy_cores:.2f} cores over the run")
        if r.trace:
            since = (f"t from the limit; lifted at t={r.phases[1].seconds:.0f}" if r.scenario == "downlink"
                     else "t from the publisher's first video")
            pub_cols = (" | publisher: layer kbit/s (height), available kbit/s, limited by"
                        if "pub" in r.trace[0] else "")
            lines.append(f"{'':<9} sub1 per second ({since}): t fps height kbit/s freeze_ms{pub_cols}")
            lines.extend(f"{'':<11}{row['t']:>+6.0f} {row['fps']:>3} {'/'.join(map(str, row['height'])) or '-':>7} "
                         f"{row['kbps']:>6} {row['freeze_ms']:>6}" + _pub_cols(row.get("pub")) for row in r.trace)
        if r.times:
            lines.append(f"{'':<9} " + ", ".join(
                f"{k} {'-' if v is None else round(v, 2)}" for k, v in r.times.items()))
    return "\n".join(lines)


def _pub_cols(pub: dict[str, Any] | None) -> str:
    if pub is None:
        return ""
    if not pub:
        return " |"
    layers = " ".join(f"{rid}:{pub['layers'][rid]['kbps']}({pub['layers'][rid]['height']})" for rid in pub["active"])
    limits = sorted({la["limit"] for la in pub["layers"].values() if la["limit"] and la["limit"] != "none"})
    return f" | {layers or '-'}, {pub['available_kbps'] or '-'}" + (f", {'/'.join(limits)}" if limits else "")


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.network", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="all", help=f"{', '.join(SCENARIOS)} or all (comma-separated)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="measured seconds (loss, uplink); seconds limited and seconds after (downlink)")
    p.add_argument("--subscribers", type=int, default=2)
    p.add_argument("--server-checkout", type=Path, default=CHECKOUT,
                   help="run the server from this tree (e.g. `git archive <commit>` unpacked): before/after")
    p.add_argument("--publisher", choices=("prepared", "live", "chromium"), default="prepared",
                   help="prepared: pre-encoded VP8 ~1 Mbit/s (cannot adapt); live: aiortc encodes the pattern and "
                        "follows the server's REMB (250 kbit/s..1.5 Mbit/s); chromium: headless Chromium on the web "
                        "client, fake camera 640x480 in three simulcast layers q/h/f, transport-cc")
    p.add_argument("--subscriber", choices=("aiortc", "chromium"), default="aiortc",
                   help="aiortc: decodes in this process (its jitter buffer waits for a lost packet until 128 "
                        "more arrive); chromium: the web client in headless Chromium, frames timed by "
                        "requestVideoFrameCallback")
    p.add_argument("--camera", default="client",
                   help="chromium: the fake camera's size, WxH (e.g. 1280x720: three layers) or client (the web "
                        "client's 640x480 ideal: Chromium sends two layers)")
    p.add_argument("--before", type=float, default=10.0, help="downlink: seconds unlimited before the limit")
    p.add_argument("--repeat", type=int, default=1,
                   help="run each scenario this many times (downlink: a table of the goals per run at the end)")
    p.add_argument("--log-dir", type=Path, help="keep the server's log here")
    p.add_argument("--json", action="store_true", help="also print each result as a JSON line")
    args = p.parse_args(argv)
    scenarios = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    cfg = NetConfig(duration=args.duration, subscribers=max(1, args.subscribers),
                    server_checkout=args.server_checkout, log_dir=args.log_dir, live=args.publisher == "live",
                    chromium=args.publisher == "chromium", before=args.before,
                    chromium_subscribers=args.subscriber == "chromium",
                    camera=None if args.camera == "client" else _size(args.camera))
    media = load_media(cfg.media)
    video = (f"Chromium on the web client (fake camera {args.camera}, simulcast q/h/f)" if cfg.chromium
             else "live VP8 (aiortc's encoder, follows REMB)" if cfg.live else "pre-encoded")
    print(f"media: {media.describe()}; publisher video: {video}; server: {cfg.server_checkout}", flush=True)
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        for _ in range(max(1, args.repeat)):
            try:
                r = asyncio.run(run_scenario(scenario, cfg, media))
            except NetnsUnavailable as e:
                print(f"network namespaces unavailable: {e}", file=sys.stderr)
                return 2
            results.append(r)
            if args.json:
                print(r.to_json(), flush=True)
            print(format_table([r]), flush=True)
    print()
    print(format_table(results))
    downlink = [r for r in results if r.scenario == "downlink" and not r.error]
    if len(downlink) > 1:
        print()
        print(format_downlink_goals(downlink))
    return 1 if any(r.error for r in results) else 0


def format_downlink_goals(results: Sequence[ScenarioResult]) -> str:
    """One line per downlink run: the issue's three goals (low layer within 5 s of the limit, no
    freeze over 1 s after that, the high layer back within 15 s of the lift) and whether each held."""
    def cell(value: float | None, limit: float) -> str:
        verdict = "ok" if value is not None and value <= limit else "MISSED"
        return f"{'-' if value is None else f'{value:.2f}':>6} {verdict:<6}"

    lines = [f"{'run':>3}  {'down s (<= 5)':<13}  {'freeze after s (<= 1)':<21}  {'back up s (<= 15)':<17}"]
    for i, r in enumerate(results, 1):
        t = r.times
        lines.append(f"{i:>3}  {cell(t.get('down_s'), 5.0):<13}  {cell(t.get('freeze_after_down_s'), 1.0):<21}  "
                     f"{cell(t.get('up_s'), 15.0):<17}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

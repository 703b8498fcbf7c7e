"""A real aiortc participant that speaks the urok protocol: publisher and subscriber peer connections
over the WebSocket signalling, decoding what it receives (test support, not a mock)."""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.exceptions import InvalidStateError
from aiortc.sdp import candidate_from_sdp

from tests.conftest import Server, WsClient

WIDTH, HEIGHT = 320, 240


class PatternVideoTrack(VideoStreamTrack):
    """30 fps frames with changing content (the encoder makes real P-frames)."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.width, self.height, self._n = width, height, 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=self.width, height=self.height, format="yuv420p")
        self._n += 1
        for i, plane in enumerate(frame.planes):
            plane.update(bytes([(self._n * 7 + i * 50) & 0xFF]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone at a given amplitude (0..32767): aiortc computes the RFC 6464 level from it."""

    def __init__(self, amplitude: int) -> None:
        super().__init__()
        self.amplitude = amplitude
        self._phase = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paced silence, 20 ms
        assert isinstance(frame, av.AudioFrame)
        n, rate = frame.samples, frame.sample_rate
        samples = array.array("h", (int(self.amplitude * math.sin(2 * math.pi * 440 * (self._phase + i) / rate))
                                    for i in range(n)))
        self._phase += n
        tone = av.AudioFrame(format="s16", layout="mono", samples=n)
        tone.planes[0].update(samples.tobytes())
        tone.sample_rate, tone.pts, tone.time_base = rate, frame.pts, frame.time_base
        return tone


@dataclass
class Received:
    track_id: str
    kind: str
    frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    first_frame_at: float | None = None
    ended: bool = False
    last_size: tuple[int, int] | None = None


class RtcClient:
    """One participant: `ws` for signalling, `pub` / `sub` peer connections."""

    def __init__(self, ws: WsClient, *, drop: Callable[[bytes], bool] | None = None,
                 expect_refused_answer: bool = False,
                 mangle_answer: Callable[[str], str] | None = None) -> None:
        self.ws = ws
        self.pub: RTCPeerConnection | None = None
        self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received: dict[str, Received] = {}
        self.offers = 0
        self.answered = 0
        self.first_answer_at: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._seen = 0
        self._drop = drop
        # A refused `subscriber_answer` or a renegotiation that failed here stops every later offer
        # (the server waits for a valid answer): it is recorded, and close() fails the test unless the
        # test said it expects one (issue 20, item 7: this used to end the pump silently).
        self.refused_answers: list[dict[str, Any]] = []
        self.negotiation_errors: list[str] = []
        self.expect_refused_answer = expect_refused_answer
        self._mangle_answer = mangle_answer
        self._closing = False
        self.sub.on("track", self._on_track)
        self._tasks.append(asyncio.create_task(self._pump()))

    @classmethod
    async def join(cls, server: Server, room_id: str, identity: str, **kw: Any) -> RtcClient:
        opts = {k: kw.pop(k) for k in ("drop", "expect_refused_answer", "mangle_answer") if k in kw}
        ws = await server.join(room_id, identity, **kw)
        return cls(ws, **opts)

    @property
    def participant_id(self) -> str:
        return str(self.ws.events[0]["participant_id"])

    async def _pump(self) -> None:
        try:
            await self._answer_offers()
        except (AssertionError, InvalidStateError, ConnectionError, TimeoutError, ValueError) as e:
            # the socket closing (leave, removal, room end, close()) ends the pump normally; anything
            # else broke a renegotiation
            if not self._closing and not self.ws.closed.is_set():
                self.negotiation_errors.append(repr(e))

    async def _answer_offers(self) -> None:
        """Answer every subscriber_offer in order; apply trickled candidates."""
        while True:
            await self.ws.wait_for(lambda: len(self.ws.events) > self._seen, timeout=3600)
            while self._seen < len(self.ws.events):
                e = self.ws.events[self._seen]
                self._seen += 1
                if e["event"] == "subscriber_offer":
                    self.offers += 1
                    await self.sub.setRemoteDescription(RTCSessionDescription(e["sdp"], "offer"))
                    if self._drop is not None:
                        self._install_drop()
                    await self.sub.setLocalDescription(await self.sub.createAnswer())
                    sdp = self.sub.localDescription.sdp
                    if self._mangle_answer is not None:
                        sdp = self._mangle_answer(sdp)
                    r = await self.ws.request("subscriber_answer", sdp=sdp)
                    if not r["ok"]:
                        self.refused_answers.append(r)
                        continue
                    self.answered += 1
                    if self.first_answer_at is None:
                        self.first_answer_at = time.monotonic()
                elif e["event"] == "ice_candidate" and e.get("candidate"):
                    pc = self.sub if e["target"] == "subscriber" else self.pub
                    if pc is not None:
                        c = candidate_from_sdp(e["candidate"]["candidate"].removeprefix("candidate:"))
                        c.sdpMid, c.sdpMLineIndex = e["candidate"].get("sdpMid"), e["candidate"].get("sdpMLineIndex")
                        await pc.addIceCandidate(c)

    def _install_drop(self) -> None:
        """Drop some SRTP packets as they arrive from the network (before SRTP, as a lossy link would:
        a retransmission must not look like a replay)."""
        transceivers = self.sub.getTransceivers()
        if not transceivers:
            return
        connection = transceivers[0].receiver.transport.transport._connection
        if getattr(connection, "_urok_drop_installed", False):
            return
        original = connection.data_received
        drop = self._drop
        assert drop is not None

        def lossy(data: bytes, component: int) -> None:
            is_rtp = len(data) > 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223
            if is_rtp and drop(data):
                return
            original(data, component)

        connection.data_received = lossy  # type: ignore[method-assign]
        setattr(connection, "_urok_drop_installed", True)  # noqa: B010 - marks an aioice object we patched

    def _on_track(self, track: MediaStreamTrack) -> None:
        rec = Received(track_id=track.id, kind=track.kind)
        self.received[track.id] = rec
        self._tasks.append(asyncio.create_task(self._consume(track, rec)))

    async def _consume(self, track: MediaStreamTrack, rec: Received) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if rec.first_frame_at is None:
                    rec.first_frame_at = time.monotonic()
                rec.frames += 1
                if track.kind == "video" and isinstance(frame, av.VideoFrame):
                    rec.sizes.add((frame.width, frame.height))
                    rec.last_size = (frame.width, frame.height)
        rec.ended = True

    async def publish(self, *, video: bool = True, audio: bool = True, screen: bool = False,
                      amplitude: int | None = None) -> dict[str, Any]:
        self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sources: dict[str, str] = {}
        tracks: list[tuple[MediaStreamTrack, str]] = []
        if audio:
            tracks.append((AudioStreamTrack() if amplitude is None else ToneTrack(amplitude), "microphone"))
        if video:
            tracks.append((PatternVideoTrack(), "camera"))
        if screen:
            tracks.append((PatternVideoTrack(640, 360), "screen"))
        transceivers = [(self.pub.addTransceiver(t, direction="sendonly"), s) for t, s in tracks]
        await self.pub.setLocalDescription(await self.pub.createOffer())
        for tr, source in transceivers:
            assert tr.mid is not None  # set by setLocalDescription
            sources[tr.mid] = source
        r = await self.ws.request("publish", timeout=15, sdp=self.pub.localDescription.sdp, sources=sources)
        assert r["ok"], r
        await self.pub.setRemoteDescription(RTCSessionDescription(r["sdp"], "answer"))
        return r

    def frames(self, kind: str, of: set[str] | None = None) -> int:
        return sum(r.frames for r in self.received.values() if r.kind == kind and (of is None or r.track_id in of))

    def video_sizes(self) -> set[tuple[int, int]]:
        return set().union(*(r.sizes for r in self.received.values() if r.kind == "video"))

    def check_negotiation(self) -> None:
        """Fail unless every subscriber offer was answered and accepted (or the test expects a refusal)."""
        assert not self.negotiation_errors, (self.participant_id, self.negotiation_errors)
        if not self.expect_refused_answer:
            assert not self.refused_answers, (self.participant_id, "subscriber_answer refused", self.refused_answers)

    async def close(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        await self.sub.close()
        if self.pub is not None:
            await self.pub.close()
        await self.ws.close()
        self.check_negotiation()


async def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()

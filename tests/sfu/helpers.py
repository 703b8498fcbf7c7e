"""Real aiortc clients for the forwarding-core tests (no mocks of the thing under test)."""

from __future__ import annotations

import asyncio
import contextlib
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
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

from sfu import WebRtcTransport

WIDTH, HEIGHT = 320, 240


class SmallVideoTrack(VideoStreamTrack):  # type: ignore[misc]
    """30 fps 320x240 frames with changing content (so the encoder makes real P-frames)."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        self._n += 1
        for i, plane in enumerate(frame.planes):
            value = (self._n * 7 + i * 50) & 0xFF
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def client_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def connect_publisher(
    transport: WebRtcTransport, video: bool = True, audio: bool = True, video_mime: str | None = None
) -> tuple[RTCPeerConnection, dict[str, str]]:
    """A client peer connection sending camera+microphone; returns (pc, {kind: mid})."""
    pc = client_pc()
    if video:
        vt = pc.addTransceiver(SmallVideoTrack(), direction="sendonly")
        if video_mime is not None:
            vt.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == video_mime]
            )
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    mids = {t.kind: t.mid for t in pc.getTransceivers()}
    return pc, mids


@dataclass
class TrackStats:
    kind: str
    frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    first_frame_at: float | None = None


class SubscriberClient:
    """A client peer connection that answers the server's offers and decodes what it gets."""

    def __init__(self) -> None:
        self.pc = client_pc()
        self.tracks: list[TrackStats] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        stats = TrackStats(kind=track.kind)
        self.tracks.append(stats)
        self._tasks.append(asyncio.ensure_future(self._consume(track, stats)))

    async def _consume(self, track: MediaStreamTrack, stats: TrackStats) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if stats.first_frame_at is None:
                    stats.first_frame_at = time.monotonic()
                stats.frames += 1
                if track.kind == "video":
                    stats.sizes.add((frame.width, frame.height))

    async def negotiate(self, transport: WebRtcTransport) -> str:
        offer = await transport.create_offer()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await transport.accept_answer(self.pc.localDescription.sdp)
        return offer

    def frames(self, kind: str) -> int:
        return sum(t.frames for t in self.tracks if t.kind == kind)

    def first_frame_at(self, kind: str) -> float | None:
        times = [t.first_frame_at for t in self.tracks if t.kind == kind and t.first_frame_at]
        return min(times) if times else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


async def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def dtls_transport(pc: RTCPeerConnection) -> Any:
    """The (bundled) DTLS transport of a client peer connection (test helper)."""
    return pc.getTransceivers()[0].receiver.transport




class NoisyVideoTrack(SmallVideoTrack):
    """Like SmallVideoTrack but with detailed content, so frames span several packets."""

    def __init__(self, noisy_rows: int = HEIGHT) -> None:
        super().__init__()
        import random

        rnd = random.Random(7)
        size = WIDTH * noisy_rows
        flat = bytes([128]) * (WIDTH * HEIGHT - size)
        self._noise = [bytes(rnd.getrandbits(8) for _ in range(size)) + flat for _ in range(4)]

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        self._n += 1
        noise = self._noise[self._n % len(self._noise)]
        for plane in frame.planes:
            plane.update(noise[: plane.buffer_size])
        frame.pts = pts
        frame.time_base = time_base
        return frame


async def sendonly_offer(kinds: list[str]) -> str:
    """A real aiortc offer with one sendonly m-line per kind (mids "0", "1", ...)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()

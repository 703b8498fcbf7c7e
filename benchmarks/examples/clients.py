"""aiortc clients for the examples: a publisher that sends a tone and a moving pattern, a subscriber
that decodes what it gets (a stand-in for a room's participants, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
from array import array
from dataclasses import dataclass, field

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import AudioStreamTrack

from sfu import WebRtcTransport

SAMPLE_RATE = 48000
SAMPLES = 960  # 20 ms


def tone_frame(n: int, frequency: float, amplitude: float) -> av.AudioFrame:
    """The ``n``-th 20 ms of a sine (mono, s16, 48 kHz)."""
    start = n * SAMPLES
    samples = array("h", (int(amplitude * 32767 * math.sin(2 * math.pi * frequency * (start + i) / SAMPLE_RATE))
                          for i in range(SAMPLES)))
    frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
    frame.planes[0].update(samples.tobytes())
    frame.sample_rate = SAMPLE_RATE
    frame.pts = start
    frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
    return frame


def opus_tone(count: int, frequency: float = 440.0, amplitude: float = 0.3) -> list[bytes]:
    """``count`` encoded Opus packets of 20 ms of a sine (aiortc's encoder: libopus)."""
    encoder = OpusEncoder()
    packets: list[bytes] = []
    for n in range(count):
        payloads, _ts = encoder.encode(tone_frame(n, frequency, amplitude))
        packets.extend(payloads)
    return packets


class ToneTrack(AudioStreamTrack):
    """A sine at ``frequency`` Hz, in real time."""

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self._frequency = frequency
        self._amplitude = amplitude
        self._n = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paces 20 ms frames, keeps aiortc's timestamps
        tone = tone_frame(self._n, self._frequency, self._amplitude)
        self._n += 1
        tone.pts, tone.time_base = frame.pts, frame.time_base
        return tone


class PatternTrack(VideoStreamTrack):
    """320x240 frames whose content changes every frame (so the encoder makes real P-frames)."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        self._n += 1
        for i, plane in enumerate(frame.planes):
            plane.update(bytes([(self._n * 7 + i * 50) & 0xFF]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def client_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def publish(transport: WebRtcTransport, tracks: list[MediaStreamTrack]) -> tuple[RTCPeerConnection, list[str]]:
    """A publisher client sending ``tracks`` through ``transport``; returns its pc and the mids."""
    pc = client_pc()
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, [str(t.mid) for t in pc.getTransceivers()]


@dataclass
class Received:
    kind: str
    frames: int = 0
    rms: list[float] = field(default_factory=list)  # audio: per decoded frame
    sizes: set[tuple[int, int]] = field(default_factory=set)  # video


class Subscriber:
    """A client that answers the server's offers and decodes what it receives."""

    def __init__(self) -> None:
        self.pc = client_pc()
        self.tracks: list[Received] = []
        self.offers = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        received = Received(track.kind)
        self.tracks.append(received)
        self._tasks.append(asyncio.ensure_future(self._read(track, received)))

    async def _read(self, track: MediaStreamTrack, received: Received) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                received.frames += 1
                if isinstance(frame, av.AudioFrame):
                    # packed s16: the plane's buffer may be longer than samples x channels
                    count = frame.samples * len(frame.layout.channels)
                    samples = array("h", bytes(frame.planes[0])[: 2 * count])
                    received.rms.append(math.sqrt(sum(s * s for s in samples) / max(1, len(samples))) / 32768)
                elif isinstance(frame, av.VideoFrame):
                    received.sizes.add((frame.width, frame.height))

    async def negotiate(self, transport: WebRtcTransport) -> None:
        offer = await transport.create_offer()
        self.offers += 1
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await transport.accept_answer(self.pc.localDescription.sdp)

    def frames(self, kind: str) -> int:
        return sum(t.frames for t in self.tracks if t.kind == kind)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()

"""RTP packets made from encoded media in Python, for a :class:`~sfu.direct_producer.DirectProducer`.

A feature that has encoded frames (a bot's voice, a noise-suppressed microphone, a file) but no RTP
turns them into packets here: one sequence of sequence numbers and one RTP clock per packetizer,
both starting at random values (RFC 3550 5.1). The payload format itself is the encoder's:

- Opus (RFC 7587): one Opus packet (one or more 2.5-60 ms frames, as ``libopus`` returns it) is one
  RTP payload; the timestamp advances by the duration at 48 kHz, whatever the sampling rate that
  was encoded. :class:`OpusPacketizer`.
- VP8 (RFC 7741) and H.264 (RFC 6184): the encoder's packetizer already makes the payloads (with
  their payload descriptors; aiortc's ``Vp8Encoder.encode`` returns them); a frame's payloads share
  one timestamp and the last one carries the marker bit: :meth:`RtpPacketizer.frame`.

Pure: no clock, no I/O (the caller decides when a packet is sent).
"""

from __future__ import annotations

import random
import struct

__all__ = ["OPUS_CLOCK_RATE", "OpusPacketizer", "RtpPacketizer"]

OPUS_CLOCK_RATE = 48000  # RFC 7587: always 48 kHz on the wire
_HEADER = struct.Struct("!BBHII")
_LEVEL_EXT = struct.Struct("!HHBBH")  # 0xBEDE, 1 word, id/len, level byte, padding


class RtpPacketizer:
    """Numbers packets and keeps the RTP clock of one outgoing stream.

    ``payload_type`` / ``ssrc`` are written into each packet (a DirectProducer overwrites both with
    its own anyway); ``audio_level_id``: the one-byte header extension id of RFC 6464 audio levels
    (0: never written)."""

    __slots__ = ("audio_level_id", "clock_rate", "payload_type", "sequence_number", "ssrc", "timestamp")

    def __init__(
        self, clock_rate: int, payload_type: int = 0, ssrc: int = 0, *, audio_level_id: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        rnd = rng or random.Random()
        self.clock_rate = clock_rate
        self.payload_type = payload_type & 0x7F
        self.ssrc = ssrc & 0xFFFFFFFF
        self.audio_level_id = audio_level_id
        self.sequence_number = rnd.getrandbits(16)  # of the next packet
        self.timestamp = rnd.getrandbits(32)  # of the next frame

    def packet(
        self, payload: bytes, *, marker: bool = False, audio_level: int | None = None, voice: bool = False
    ) -> bytes:
        """One packet at the current timestamp (the clock does not advance: see :meth:`advance`).
        ``audio_level``: -dBov 0..127 (0 loudest), written when ``audio_level_id`` is set, with
        the voice activity flag ``voice``."""
        seq = self.sequence_number
        self.sequence_number = (seq + 1) & 0xFFFF
        ext = audio_level is not None and 0 < self.audio_level_id < 15
        first = 0x90 if ext else 0x80
        header = _HEADER.pack(first, (0x80 if marker else 0) | self.payload_type, seq, self.timestamp, self.ssrc)
        if ext:
            assert audio_level is not None
            level = min(max(int(audio_level), 0), 127) | (0x80 if voice else 0)
            header += _LEVEL_EXT.pack(0xBEDE, 1, self.audio_level_id << 4, level, 0)
        return header + bytes(payload)

    def advance(self, seconds: float) -> None:
        """Move the RTP clock on by ``seconds`` of media (the next frame's timestamp)."""
        self.timestamp = (self.timestamp + round(seconds * self.clock_rate)) & 0xFFFFFFFF

    def frame(self, payloads: list[bytes], duration_s: float) -> list[bytes]:
        """The packets of one video frame (the encoder's payloads, in order): one timestamp, the
        marker bit on the last; then the clock advances by ``duration_s``."""
        packets = [self.packet(p, marker=i == len(payloads) - 1) for i, p in enumerate(payloads)]
        self.advance(duration_s)
        return packets


class OpusPacketizer(RtpPacketizer):
    """Opus packets (RFC 7587) on the 48 kHz RTP clock."""

    __slots__ = ()

    def __init__(
        self, payload_type: int = 111, ssrc: int = 0, *, audio_level_id: int = 0, rng: random.Random | None = None
    ) -> None:
        super().__init__(OPUS_CLOCK_RATE, payload_type, ssrc, audio_level_id=audio_level_id, rng=rng)

    def packetize(
        self, frame: bytes, duration_s: float = 0.02, *, audio_level: int | None = None, voice: bool = False
    ) -> bytes:
        """One encoded Opus packet of ``duration_s`` seconds (2.5 ms .. 120 ms) as one RTP packet;
        the clock then advances by that duration."""
        if not 0.0025 <= duration_s <= 0.12:
            raise ValueError("an Opus packet lasts 2.5 ms to 120 ms")
        packet = self.packet(frame, audio_level=audio_level, voice=voice)
        self.advance(duration_s)
        return packet

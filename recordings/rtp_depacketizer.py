"""RTP payloads back into codec frames (no decoding): VP8 (RFC 7741), VP9 (RFC 9628), H.264 (RFC 6184,
single NAL units, STAP-A, FU-A) and Opus (RFC 7587, one frame per packet).

A ``FrameAssembler`` takes a track's packets in the order the direct consumer delivers them and
returns whole frames with their extended RTP timestamp.  A sequence gap inside a video frame drops
that frame and every frame up to the next keyframe (a decoder cannot use them); the assembler says
so through ``want_keyframe`` and the recorder asks the publisher for one.  Audio frames stand alone:
a lost packet is only a gap in the file (the timestamps keep the timeline).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ANNEX_B = b"\x00\x00\x00\x01"
_SEQ_TS = struct.Struct("!HI")


class Depacketizer:
    """One codec's payload format: strip the descriptor, say where a frame starts and whether it is
    a keyframe.  ``payload`` is the RTP payload (after header, extensions and padding)."""

    def unwrap(self, payload: bytes) -> tuple[bytes, bool, bool]:
        """(the codec bytes of this packet, starts a frame, starts a keyframe)."""
        raise NotImplementedError

    def frame(self, parts: list[bytes]) -> bytes:
        return b"".join(parts)


class OpusDepacketizer(Depacketizer):
    def unwrap(self, payload: bytes) -> tuple[bytes, bool, bool]:
        return payload, True, True


class Vp8Depacketizer(Depacketizer):
    def unwrap(self, payload: bytes) -> tuple[bytes, bool, bool]:
        if not payload:
            raise ValueError("empty VP8 payload")
        b0 = payload[0]
        i = 1
        if b0 & 0x80:  # X: extension byte
            b1 = payload[1]
            i = 2
            if b1 & 0x80:  # I: picture id, 7 or 15 bits
                i += 2 if payload[i] & 0x80 else 1
            if b1 & 0x40:  # L: TL0PICIDX
                i += 1
            if b1 & 0x30:  # T or K: TID/Y/KEYIDX
                i += 1
        start = bool(b0 & 0x10) and (b0 & 0x0F) == 0
        data = payload[i:]
        key = start and bool(data) and not (data[0] & 0x01)  # the frame tag's P bit: 0 = key frame
        return data, start, key


class Vp9Depacketizer(Depacketizer):
    def unwrap(self, payload: bytes) -> tuple[bytes, bool, bool]:
        if not payload:
            raise ValueError("empty VP9 payload")
        b0 = payload[0]
        i = 1
        if b0 & 0x80:  # I: picture id
            i += 2 if payload[i] & 0x80 else 1
        flexible = bool(b0 & 0x10)
        if b0 & 0x20:  # L: layer indices (+ TL0PICIDX in non-flexible mode)
            i += 1 if flexible else 2
        if flexible and b0 & 0x40:  # P and F: up to 3 reference differences
            while payload[i] & 0x01:
                i += 1
            i += 1
        if b0 & 0x02:  # V: scalability structure
            ss = payload[i]
            i += 1
            if ss & 0x10:  # Y: spatial layer sizes
                i += 4 * ((ss >> 5) + 1)
            if ss & 0x08:  # G: picture group description
                n = payload[i]
                i += 1
                for _ in range(n):
                    i += 1 + ((payload[i] >> 2) & 0x03)
        start = bool(b0 & 0x08)  # B
        key = start and not (b0 & 0x40)  # not inter-picture predicted
        return payload[i:], start, key


class H264Depacketizer(Depacketizer):
    """Annex B out: a start code before every NAL unit, which the Matroska muxer turns into its
    length-prefixed form; SPS and PPS ride in the keyframes (and become the file's extradata)."""

    def unwrap(self, payload: bytes) -> tuple[bytes, bool, bool]:
        if not payload:
            raise ValueError("empty H.264 payload")
        nal_type = payload[0] & 0x1F
        if nal_type == 24:  # STAP-A: aggregated NAL units, each with a 16-bit size
            out = bytearray()
            key = False
            i = 1
            while i + 2 <= len(payload):
                size = (payload[i] << 8) | payload[i + 1]
                nal = payload[i + 2:i + 2 + size]
                if nal:
                    key = key or (nal[0] & 0x1F) in (5, 7)
                out += ANNEX_B + nal
                i += 2 + size
            return bytes(out), True, key
        if nal_type == 28:  # FU-A: a fragment of one NAL unit
            fu = payload[1]
            inner = fu & 0x1F
            if fu & 0x80:  # S: the first fragment carries the reconstructed NAL header
                header = bytes([(payload[0] & 0xE0) | inner])
                return ANNEX_B + header + payload[2:], True, inner in (5, 7)
            return payload[2:], False, False
        return ANNEX_B + payload, True, nal_type in (5, 7)


def depacketizer_for(codec: str) -> Depacketizer:
    """``codec``: the producer's mime type ("video/VP8", "audio/opus", ...)."""
    name = codec.split("/")[-1].lower()
    if name == "opus":
        return OpusDepacketizer()
    if name == "vp8":
        return Vp8Depacketizer()
    if name == "vp9":
        return Vp9Depacketizer()
    if name == "h264":
        return H264Depacketizer()
    raise ValueError(f"no recording for codec {codec!r}")


@dataclass(slots=True)
class Frame:
    data: bytes
    timestamp: int  # extended (unwrapped) RTP timestamp
    keyframe: bool


class FrameAssembler:
    """Packets of one track, in delivery order, into frames."""

    def __init__(self, depacketizer: Depacketizer, *, video: bool) -> None:
        self.depacketizer = depacketizer
        self.video = video
        self.want_keyframe = video  # a file starts on a keyframe
        self.dropped_frames = 0
        self.bad_packets = 0
        self._parts: list[bytes] = []
        self._part_ts = -1
        self._part_key = False
        self._next_seq = -1
        self._last_ts = -1  # 32-bit timestamp of the last packet
        self._wraps = 0
        self._broken = False  # a packet of the current frame is missing

    def _extend(self, ts: int) -> int:
        if self._last_ts >= 0:
            if ts < self._last_ts and self._last_ts - ts > 0x80000000:
                self._wraps += 1
            elif ts > self._last_ts and ts - self._last_ts > 0x80000000:
                return ts + ((self._wraps - 1) << 32)  # a late packet from before the wrap
        self._last_ts = ts
        return ts + (self._wraps << 32)

    def push(self, packet: bytes, out: list[Frame]) -> None:
        """Feed one RTP packet; complete frames are appended to ``out``."""
        # the header parsed inline (sequence, timestamp, marker, payload bounds): this runs once per
        # recorded packet, and sfu.parse_header's full record costs as much as the rest of the work
        try:
            n = len(packet)
            b0 = packet[0]
            if n < 12 or b0 >> 6 != 2:
                raise ValueError("not an RTP packet")
            seq_number, timestamp = _SEQ_TS.unpack_from(packet, 2)
            pos = 12 + 4 * (b0 & 0x0F)
            if b0 & 0x10:
                pos += 4 + 4 * ((packet[pos + 2] << 8) | packet[pos + 3])
            end = n - packet[-1] if b0 & 0x20 else n
            if pos > end or (end == n and b0 & 0x20):
                raise ValueError("RTP header longer than the packet")
            data, start, key = self.depacketizer.unwrap(packet[pos:end])
        except (ValueError, IndexError):
            self.bad_packets += 1
            return
        seq = seq_number
        gap = 0
        if self._next_seq >= 0:
            gap = (seq - self._next_seq) & 0xFFFF
            if gap >= 0x8000:  # older than what came already (a late repair): its frame is gone
                return
        self._next_seq = (seq + 1) & 0xFFFF
        ts = self._extend(timestamp)
        if not self.video:
            if data:
                out.append(Frame(data, ts, True))
            return
        if gap:  # a packet is missing: the frame it was in, and those that refer to it, cannot decode
            self._broken = True
        if ts != self._part_ts:  # a new frame (the last one's marker may be what was lost)
            if self._parts:
                self._finish(out)
            self._part_ts = ts
            self._part_key = key
            if not start:
                self._broken = True
        self._parts.append(data)
        if packet[1] & 0x80:  # the marker: the frame's last packet
            self._finish(out)

    def _finish(self, out: list[Frame]) -> None:
        if self._broken:
            self.dropped_frames += 1
            self.want_keyframe = True
        elif self._part_key or not self.want_keyframe:
            if self._part_key:
                self.want_keyframe = False
            out.append(Frame(self.depacketizer.frame(self._parts), self._part_ts, self._part_key))
        else:
            self.dropped_frames += 1  # waiting for a keyframe
        self._parts = []
        self._part_ts = -1
        self._broken = False

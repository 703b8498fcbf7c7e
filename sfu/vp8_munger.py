"""VP8 picture ids across a simulcast layer switch (RFC 7741 4.2).

Each simulcast layer numbers its frames with its own PictureID (15 bits) and TL0PICIDX (8 bits).
A consumer that switches layers rewrites sequence numbers and timestamps (``sfu.seq_manager``) but
a receiver also orders VP8 frames by picture id: libwebrtc's frame buffer drops a frame whose id is
older than the last one decoded, so a switch to a layer whose ids lag behind froze the subscriber
until they caught up (2-6 s after an up-switch, Chromium subscriber, benchmarks/network.py,
2026-12-07). mediasoup (``RTC::Codecs::VP8::EncodingContext``) and LiveKit (``VP8Munger``) rewrite
both fields for the same reason; this is the project's own small version: at a switch the new
layer's first picture id is made the one after the last sent (and TL0PICIDX likewise); from then on
every packet of the consumer gets the same offsets. Offsets of 0 (a consumer that never switched)
rewrite nothing and leave the consumer free to use the compiled fan-out.
"""

from __future__ import annotations

__all__ = ["Vp8Munger", "vp8_picture_ids"]


def vp8_picture_ids(data: bytes | bytearray, start: int, end: int) -> tuple[int, int, int, int]:
    """``(pid_pos, pid_bits, tl0_pos, _)`` of a VP8 payload descriptor starting at ``start``:
    the offset of the PictureID field (-1: none), its width (7 or 15 bits), the offset of TL0PICIDX
    (-1: none), and the descriptor's length (0 when it is truncated)."""
    if end - start < 1:
        return -1, 0, -1, 0
    b0 = data[start]
    pos = start + 1
    pid_pos = tl0_pos = -1
    bits = 0
    if b0 & 0x80:  # X
        if pos >= end:
            return -1, 0, -1, 0
        x = data[pos]
        pos += 1
        if x & 0x80:  # I: picture id
            if pos >= end:
                return -1, 0, -1, 0
            pid_pos = pos
            if data[pos] & 0x80:  # M: 15 bits
                bits = 15
                pos += 2
            else:
                bits = 7
                pos += 1
        if x & 0x40:  # L: TL0PICIDX
            tl0_pos = pos
            pos += 1
        if x & 0x30:  # T or K
            pos += 1
    if pos > end:
        return -1, 0, -1, 0
    return pid_pos, bits, tl0_pos, pos - start


def _read(data: bytes | bytearray, pid_pos: int, bits: int) -> int:
    if bits == 15:
        return ((data[pid_pos] & 0x7F) << 8) | data[pid_pos + 1]
    return data[pid_pos] & 0x7F


class Vp8Munger:
    """One consumer's picture id and TL0PICIDX offsets (module docstring)."""

    __slots__ = ("pid_offset", "tl0_offset")

    def __init__(self) -> None:
        self.pid_offset = 0  # added to every picture id (mod 2^15, or 2^7 for 7-bit ids)
        self.tl0_offset = 0  # added to every TL0PICIDX (mod 256)

    @property
    def active(self) -> bool:
        """Whether packets need rewriting (the consumer then stays on the Python path)."""
        return bool(self.pid_offset or self.tl0_offset)

    def outgoing(self, data: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
        """``(picture id, tl0picidx)`` as this consumer sends them for the payload at ``start``
        (-1 for a field the descriptor lacks)."""
        pid_pos, bits, tl0_pos, _ = vp8_picture_ids(data, start, end)
        pid = -1 if pid_pos < 0 else (_read(data, pid_pos, bits) + self.pid_offset) & (0x7FFF if bits == 15 else 0x7F)
        tl0 = -1 if tl0_pos < 0 else (data[tl0_pos] + self.tl0_offset) & 0xFF
        return pid, tl0

    def switch(self, last_sent: tuple[int, int], data: bytes | bytearray, start: int, end: int) -> None:
        """A switch at the new layer's packet ``data`` (payload at ``start``): its picture id and
        TL0PICIDX go out as the ones after ``last_sent`` (:meth:`outgoing` of the last packet sent
        before the switch); a field that either side lacks keeps its offset."""
        pid_pos, bits, tl0_pos, _ = vp8_picture_ids(data, start, end)
        last_pid, last_tl0 = last_sent
        if pid_pos >= 0 and last_pid >= 0:
            mask = 0x7FFF if bits == 15 else 0x7F
            self.pid_offset = (last_pid + 1 - _read(data, pid_pos, bits)) & mask
        if tl0_pos >= 0 and last_tl0 >= 0:
            self.tl0_offset = (last_tl0 + 1 - data[tl0_pos]) & 0xFF

    def rewrite(self, buf: bytearray, start: int, end: int) -> None:
        """Apply the offsets to the payload descriptor at ``start`` in place."""
        pid_pos, bits, tl0_pos, _ = vp8_picture_ids(buf, start, end)
        if pid_pos >= 0 and self.pid_offset:
            if bits == 15:
                pid = (_read(buf, pid_pos, 15) + self.pid_offset) & 0x7FFF
                buf[pid_pos] = 0x80 | (pid >> 8)
                buf[pid_pos + 1] = pid & 0xFF
            else:
                buf[pid_pos] = (buf[pid_pos] + self.pid_offset) & 0x7F
        if tl0_pos >= 0 and self.tl0_offset:
            buf[tl0_pos] = (buf[tl0_pos] + self.tl0_offset) & 0xFF

"""RTP header parsing and in-place rewriting helpers (RFC 3550, RFC 8285, RFC 7741, RFC 6184).

Only the fields the forwarding core needs are read, with :mod:`struct` on ``bytes``/``bytearray``;
no per-packet objects are created. Everything here is pure and unit-tested on captured packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SEQ_TS_SSRC = struct.Struct("!HII")  # at offset 2
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")
EXT_HEADER = struct.Struct("!HH")

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000

# extension URIs
EXT_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
EXT_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
EXT_RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
EXT_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
EXT_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# Extensions that describe the publisher's m-line/stream and must never reach a subscriber as-is.
NEVER_FORWARDED = frozenset({EXT_MID, EXT_RID, EXT_RRID})


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """Offsets and fields of one RTP packet (used off the hot path and in tests)."""

    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    ext_profile: int  # 0 when no extension block
    ext_start: int  # first byte of the extension elements (after the 4-byte block header)
    ext_end: int
    payload_start: int
    payload_end: int  # excludes padding


def parse_header(data: bytes | bytearray) -> RtpHeader:
    """Parse and bounds-check an RTP header; raises ``ValueError`` on malformed packets."""
    n = len(data)
    if n < 12:
        raise ValueError("RTP packet shorter than 12 bytes")
    b0 = data[0]
    if b0 >> 6 != 2:
        raise ValueError("RTP version is not 2")
    seq, ts, ssrc = SEQ_TS_SSRC.unpack_from(data, 2)
    pos = 12 + 4 * (b0 & 0x0F)
    profile = 0
    ext_start = ext_end = pos
    if b0 & 0x10:
        if pos + 4 > n:
            raise ValueError("RTP extension header truncated")
        profile, words = EXT_HEADER.unpack_from(data, pos)
        ext_start = pos + 4
        ext_end = ext_start + 4 * words
        pos = ext_end
    end = n
    if b0 & 0x20:
        if n == 0 or data[-1] == 0:
            raise ValueError("RTP padding length is zero")
        end = n - data[-1]
    if pos > end:
        raise ValueError("RTP header longer than packet")
    return RtpHeader(
        marker=bool(data[1] & 0x80),
        payload_type=data[1] & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        ext_profile=profile,
        ext_start=ext_start,
        ext_end=ext_end,
        payload_start=pos,
        payload_end=end,
    )


def iter_extensions(
    data: bytes | bytearray, profile: int, start: int, end: int
) -> list[tuple[int, int, int]]:
    """``(id, value_start, value_end)`` of each element; raises ``ValueError`` if truncated."""
    out: list[tuple[int, int, int]] = []
    pos = start
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = data[pos]
            if b == 0:
                pos += 1
                continue
            ext_id = b >> 4
            if ext_id == 15:
                break
            length = (b & 0x0F) + 1
            if pos + 1 + length > end:
                raise ValueError("one-byte header extension truncated")
            out.append((ext_id, pos + 1, pos + 1 + length))
            pos += 1 + length
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos < end:
            b = data[pos]
            if b == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise ValueError("two-byte header extension truncated")
            length = data[pos + 1]
            if pos + 2 + length > end:
                raise ValueError("two-byte header extension truncated")
            out.append((b, pos + 2, pos + 2 + length))
            pos += 2 + length
    return out


def one_byte_extension_byte(data: bytes | bytearray, start: int, end: int, ext_id: int) -> int:
    """First value byte of one-byte-header (0xBEDE) extension ``ext_id`` in ``data[start:end]``, or -1.

    Hot path for audio levels: no allocation; a malformed block just ends the scan.
    """
    pos = start
    while pos < end:
        b = data[pos]
        if b == 0:  # padding
            pos += 1
            continue
        eid = b >> 4
        if eid == 15:
            return -1
        length = (b & 0x0F) + 1
        if eid == ext_id:
            return data[pos + 1] if pos + 1 < end else -1
        pos += 1 + length
    return -1


def find_extension(data: bytes | bytearray, ext_id: int) -> bytes | None:
    """Value of extension ``ext_id`` in an RTP packet, or None (also when malformed)."""
    try:
        h = parse_header(data)
        if not h.ext_profile:
            return None
        for i, s, e in iter_extensions(data, h.ext_profile, h.ext_start, h.ext_end):
            if i == ext_id:
                return bytes(data[s:e])
    except ValueError:
        return None
    return None


def make_id_map(src: dict[str, int], dst: dict[str, int]) -> bytes | None:
    """Map publisher extension ids to subscriber ids by URI.

    Returns a 256-byte table (index: source id, value: destination id, 0 = drop), or ``None``
    when the rewrite is the identity for every id the publisher negotiated (nothing to do).
    """
    table = bytearray(256)
    identity = True
    for uri, src_id in src.items():
        dst_id = dst.get(uri, 0) if uri not in NEVER_FORWARDED else 0
        if not 0 < src_id < 256:
            continue
        table[src_id] = dst_id
        if dst_id != src_id:
            identity = False
    return None if identity else bytes(table)


def rewrite_extensions(buf: bytearray, profile: int, start: int, end: int, id_map: bytes) -> None:
    """Remap extension ids in place; a dropped element becomes padding (zero bytes).

    Zero bytes are valid padding between elements in both the one-byte and the two-byte form
    (RFC 8285 4.2/4.3), so the packet keeps its length and the header stays valid even when every
    element is dropped. In the one-byte form a destination id above 14 cannot be written: dropped.
    The block must have been validated by :func:`parse_header`/:func:`iter_extensions` already;
    a truncated element stops the rewrite (the rest is zeroed).
    """
    pos = start
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = buf[pos]
            if b == 0:
                pos += 1
                continue
            ext_id = b >> 4
            if ext_id == 15:
                break
            nxt = pos + 2 + (b & 0x0F)
            new = id_map[ext_id]
            if nxt > end:
                buf[pos:end] = bytes(end - pos)
                return
            if new == 0 or new > 14:
                buf[pos:nxt] = bytes(nxt - pos)
            elif new != ext_id:
                buf[pos] = (new << 4) | (b & 0x0F)
            pos = nxt
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos < end:
            b = buf[pos]
            if b == 0:
                pos += 1
                continue
            if pos + 2 > end:
                buf[pos:end] = bytes(end - pos)
                return
            nxt = pos + 2 + buf[pos + 1]
            if nxt > end:
                buf[pos:end] = bytes(end - pos)
                return
            new = id_map[b]
            if new == 0:
                buf[pos:nxt] = bytes(nxt - pos)
            elif new != b:
                buf[pos] = new
            pos = nxt


def rewrite_header(
    buf: bytearray, payload_type: int, sequence_number: int, timestamp: int, ssrc: int
) -> None:
    """Set PT (keeping the marker bit), sequence number, timestamp and SSRC in place."""
    buf[1] = (buf[1] & 0x80) | payload_type
    SEQ_TS_SSRC.pack_into(buf, 2, sequence_number, timestamp, ssrc)


def seq_newer(a: int, b: int) -> bool:
    """True when 16-bit sequence number ``a`` is after ``b`` (RFC 1982 arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def vp8_is_keyframe(data: bytes | bytearray, start: int, end: int) -> bool:
    """True if this VP8 payload (RFC 7741) starts a keyframe.

    The payload descriptor must have S=1 and PID=0 (start of partition 0) and the first byte of the
    VP8 payload header must have P (bit 0) = 0.
    """
    if end - start < 1:
        return False
    b0 = data[start]
    if not b0 & 0x10 or b0 & 0x07:
        return False
    pos = start + 1
    if b0 & 0x80:  # X: extended control bits
        if pos >= end:
            return False
        x = data[pos]
        pos += 1
        if x & 0x80:  # I: picture id
            if pos >= end:
                return False
            pos += 2 if data[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    if pos >= end:
        return False
    return not data[pos] & 0x01


H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def h264_is_keyframe(data: bytes | bytearray, start: int, end: int) -> bool:
    """True if this H.264 payload (RFC 6184) carries an SPS or the start of an IDR slice."""
    if end - start < 1:
        return False
    nal = data[start] & 0x1F
    if nal in (H264_IDR, H264_SPS):
        return True
    if nal == H264_STAP_A:
        pos = start + 1
        while pos + 2 < end:
            size = (data[pos] << 8) | data[pos + 1]
            if size == 0:
                return False
            if data[pos + 2] & 0x1F in (H264_IDR, H264_SPS):
                return True
            pos += 2 + size
        return False
    if nal == H264_FU_A:
        if end - start < 2:
            return False
        fu = data[start + 1]
        return bool(fu & 0x80) and (fu & 0x1F) in (H264_IDR, H264_SPS)
    return False


def is_keyframe(mime_type: str, data: bytes | bytearray, start: int, end: int) -> bool:
    """Keyframe start for ``video/VP8`` or ``video/H264`` payloads; False for anything else."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return vp8_is_keyframe(data, start, end)
    if mime == "video/h264":
        return h264_is_keyframe(data, start, end)
    return False

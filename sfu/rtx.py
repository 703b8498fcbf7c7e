"""RTX (RFC 4588): retransmissions on a stream of their own, and back.

An RTX packet is the original packet sent again with the RTX stream's payload type, SSRC and
sequence number, and the original sequence number (OSN, 2 bytes, network order) in front of the
original payload (RFC 4588 section 4). The RTX payload type names its media payload type in
``a=fmtp:<rtx pt> apt=<media pt>``; in session-multiplexed RTX (the one WebRTC uses) the pairing
of the two SSRCs is ``a=ssrc-group:FID <media ssrc> <rtx ssrc>`` (or, for rid simulcast, the
repaired-rtp-stream-id header extension). Header extensions and CSRCs are carried as they are;
padding stays at the end (its count byte still counts the same bytes).

Both directions build the result with one copy of the payload (a ``memoryview`` join into fresh
``bytes``; a 12-byte fixed header packed anew), and refuse malformed input with ``None`` instead
of raising: these run on packets from the network.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_FIXED = struct.Struct("!BBHII")  # b0, marker|pt, sequence, timestamp, ssrc
_EXT_WORDS = struct.Struct("!2xH")
_OSN = struct.Struct("!H")


def _payload_bounds(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """``(start, end)`` of an RTP packet's payload (after CSRCs and extension, before padding), or
    None when the packet is not RTP version 2 or its header/padding runs past its end."""
    n = len(data)
    if n < 12 or data[0] >> 6 != 2:
        return None
    b0 = data[0]
    pos = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        if pos + 4 > n:
            return None
        pos += 4 + (_EXT_WORDS.unpack_from(data, pos)[0] << 2)
    end = n
    if b0 & 0x20:
        pad = data[n - 1]
        if pad == 0:
            return None
        end = n - pad
    if pos > end:
        return None
    return pos, end


def original_sequence(data: bytes | bytearray | memoryview) -> int | None:
    """The OSN of an RTX packet, or None when it carries none (padding-only probes, malformed)."""
    bounds = _payload_bounds(data)
    if bounds is None or bounds[1] - bounds[0] < 2:
        return None
    return int(_OSN.unpack_from(data, bounds[0])[0])


def unwrap(data: bytes | bytearray | memoryview, media_pt: int, media_ssrc: int) -> bytes | None:
    """The original packet inside an RTX packet: payload type ``media_pt`` (the ``apt`` of the RTX
    payload type), SSRC ``media_ssrc``, sequence number the OSN, payload without the OSN; marker,
    timestamp, CSRCs, extensions and padding as they are. None for a packet without an OSN
    (Chromium's padding-only RTX probes: nothing to recover) or not parseable as RTP."""
    bounds = _payload_bounds(data)
    if bounds is None:
        return None
    start, end = bounds
    if end - start < 2:
        return None
    b0, b1, _seq, ts, _ssrc = _FIXED.unpack_from(data, 0)
    osn = _OSN.unpack_from(data, start)[0]
    view = memoryview(data)
    return b"".join((
        _FIXED.pack(b0, (b1 & 0x80) | (media_pt & 0x7F), osn, ts, media_ssrc),
        view[12:start],
        view[start + 2:],
    ))


def wrap(data: bytes | bytearray | memoryview, rtx_pt: int, rtx_ssrc: int, rtx_seq: int) -> bytes | None:
    """An RTX packet carrying ``data`` (an RTP packet of the media stream): payload type ``rtx_pt``,
    SSRC ``rtx_ssrc``, sequence number ``rtx_seq`` (the RTX stream's own counter), the original
    sequence number in front of the payload. None when ``data`` is not parseable as RTP."""
    bounds = _payload_bounds(data)
    if bounds is None:
        return None
    start = bounds[0]
    b0, b1, seq, ts, _ssrc = _FIXED.unpack_from(data, 0)
    view = memoryview(data)
    return b"".join((
        _FIXED.pack(b0, (b1 & 0x80) | (rtx_pt & 0x7F), rtx_seq & 0xFFFF, ts, rtx_ssrc),
        view[12:start],
        _OSN.pack(seq),
        view[start:],
    ))


PADDING_SIZE = 255  # bytes of padding in a padding-only packet (the count is one byte: at most 255)


def padding(rtx_pt: int, rtx_ssrc: int, rtx_seq: int, timestamp: int, size: int = PADDING_SIZE) -> bytes:
    """A padding-only RTX packet (RFC 3550 5.1 padding, no payload and so no OSN, as Chromium's
    bandwidth probes): a 12-byte header with the P bit, ``size`` (1..255) bytes of padding whose
    last byte is their count. A receiver finds nothing to recover in it and drops it after
    counting its bytes; it exists to make traffic (sfu.probe)."""
    size = min(max(size, 1), 255)
    return b"".join((
        _FIXED.pack(0xA0, rtx_pt & 0x7F, rtx_seq & 0xFFFF, timestamp & 0xFFFFFFFF, rtx_ssrc),
        bytes(size - 1),
        bytes((size,)),
    ))


class RtxUnwrapper:
    """The RTX side of one received media stream: which payload types are RTX of which media
    payload type (``{rtx pt: apt}``, :func:`sfu.sdp.rtx_payload_types`), and the media SSRC the
    RTX SSRC repairs. :meth:`unwrap` returns the original packet, or None for a packet whose
    payload type is not an RTX one of this stream or that carries no OSN."""

    __slots__ = ("apt", "media_ssrc", "packets", "padding")

    def __init__(self, apt: Mapping[int, int], media_ssrc: int) -> None:
        self.apt: dict[int, int] = dict(apt)
        self.media_ssrc = media_ssrc
        self.packets = 0  # RTX packets unwrapped
        self.padding = 0  # RTX packets without an OSN (bandwidth probes) or malformed: dropped

    def unwrap(self, data: bytes | bytearray | memoryview) -> bytes | None:
        if len(data) < 12:
            return None
        media_pt = self.apt.get(data[1] & 0x7F)
        if media_pt is None:
            return None
        out = unwrap(data, media_pt, self.media_ssrc)
        if out is None:
            self.padding += 1
        else:
            self.packets += 1
        return out

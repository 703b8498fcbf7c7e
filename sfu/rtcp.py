"""RTCP compound parsing and the few packets the forwarding core builds (RFC 3550, 4585, 5104).

Parsing validates lengths; a truncated compound raises ``ValueError`` from :func:`split_compound`
before any packet of it is acted upon, so the caller can count it and drop the whole datagram.
"""

from __future__ import annotations

import struct

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
RTCP_RTPFB = 205
RTCP_PSFB = 206

RTPFB_NACK = 1
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_APP = 15  # REMB

_HDR = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_II = struct.Struct("!II")
_SR_INFO = struct.Struct("!IQIII")  # ssrc, ntp, rtp ts, packets, octets
_NACK_ITEM = struct.Struct("!HH")
# the fixed part of the packet types the core reads, header included: RFC 3550 6.4.1/6.4.2 (SR:
# sender SSRC + sender info; RR: sender SSRC), RFC 4585 6.1 (feedback: sender + media SSRC). A
# shorter packet is truncated like one whose length field lies (found by tests/sfu/test_fuzz_transport.py:
# an 8-byte PLI or SR raised from the parsers inside the receive hook, which logged it as a bug)
_MIN_LENGTH = {RTCP_SR: 28, RTCP_RR: 8, RTCP_RTPFB: 12, RTCP_PSFB: 12}


def split_compound(data: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """``(packet_type, count_or_fmt, start, end)`` for each packet of an RTCP compound.

    ``start`` is the packet's first byte (its header); ``end`` excludes padding. Raises
    ``ValueError`` when any packet is truncated (its length field, or an SR, RR or feedback packet
    shorter than the fixed part of its type) or is not version 2.
    """
    out: list[tuple[int, int, int, int]] = []
    pos = 0
    n = len(data)
    if n < 4:
        raise ValueError("RTCP packet shorter than its header")
    while pos < n:
        if pos + 4 > n:
            raise ValueError("RTCP header truncated")
        b0, pt, words = _HDR.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise ValueError("RTCP version is not 2")
        end = pos + 4 + 4 * words
        if end > n:
            raise ValueError("RTCP packet truncated")
        body_end = end
        if b0 & 0x20:
            pad = data[end - 1]
            if pad == 0 or end - pad < pos + 4:
                raise ValueError("RTCP padding invalid")
            body_end = end - pad
        if body_end - pos < _MIN_LENGTH.get(pt, 4):
            raise ValueError("RTCP packet shorter than the fixed part of its type")
        out.append((pt, b0 & 0x1F, pos, body_end))
        pos = end
    return out


def feedback_ssrcs(data: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
    """``(sender_ssrc, media_ssrc)`` of an RTPFB/PSFB packet."""
    if end - start < 12:
        raise ValueError("feedback packet truncated")
    sender, media = _II.unpack_from(data, start + 4)
    return sender, media


def parse_nack(data: bytes | bytearray, start: int, end: int) -> tuple[int, list[int]]:
    """``(media_ssrc, lost sequence numbers)`` of a generic NACK (RTPFB fmt 1)."""
    _, media = feedback_ssrcs(data, start, end)
    lost: list[int] = []
    pos = start + 12
    while pos + 4 <= end:
        pid, blp = _NACK_ITEM.unpack_from(data, pos)
        lost.append(pid)
        for bit in range(16):
            if blp & (1 << bit):
                lost.append((pid + bit + 1) & 0xFFFF)
        pos += 4
    return media, lost


def parse_fir_ssrcs(data: bytes | bytearray, start: int, end: int) -> list[int]:
    """Media SSRCs named in the FCI entries of a FIR (PSFB fmt 4)."""
    feedback_ssrcs(data, start, end)
    out: list[int] = []
    pos = start + 12
    while pos + 8 <= end:
        out.append(_U32.unpack_from(data, pos)[0])
        pos += 8
    return out


def parse_sr(data: bytes | bytearray, start: int, end: int) -> tuple[int, int, int]:
    """``(ssrc, ntp_timestamp (64-bit), rtp_timestamp)`` of a sender report."""
    if end - start < 28:
        raise ValueError("SR truncated")
    ssrc, ntp, rtp_ts, _, _ = _SR_INFO.unpack_from(data, start + 4)
    return ssrc, ntp, rtp_ts


_RR_BLOCK = struct.Struct("!IB3sIIII")  # ssrc, fraction lost, cumulative lost, highest, jitter, lsr, dlsr


def parse_report_blocks(
    data: bytes | bytearray, start: int, end: int, count: int
) -> list[tuple[int, int, int, int, int, int, int]]:
    """The report blocks of an RR (or of an SR, RFC 3550 6.4) as ``(ssrc, fraction_lost (0..255),
    cumulative_lost (signed 24-bit), extended_highest_seq, jitter, lsr, dlsr)``, the order
    :func:`build_rr` takes; ``count`` is the header's RC, ``start``/``end`` as from
    :func:`split_compound`. Blocks that do not fit before ``end`` are ignored."""
    pos = start + (28 if data[start + 1] == RTCP_SR else 8)
    out: list[tuple[int, int, int, int, int, int, int]] = []
    for _ in range(count):
        if pos + 24 > end:
            break
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _RR_BLOCK.unpack_from(data, pos)
        out.append((ssrc, fraction, int.from_bytes(lost, "big", signed=True), highest, jitter, lsr, dlsr))
        pos += 24
    return out


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80 | PSFB_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


def build_nack(sender_ssrc: int, media_ssrc: int, seqs: list[int]) -> bytes:
    """Generic NACK with one FCI item per run of up to 17 sequence numbers (``seqs`` in any order;
    sorted numerically, so a run across the 16-bit wrap takes two items)."""
    return build_nack_fci(sender_ssrc, media_ssrc, nack_fci(sorted(set(seqs))))


def nack_fci(seqs: list[int]) -> bytes:
    """The FCI of a generic NACK (RFC 4585 6.2.1): packed ``PID, BLP`` pairs (2 + 2 bytes each)
    for 16-bit sequence numbers given in sequence order (serial order: ``65534, 65535, 0, 1`` is
    one run). Each pair covers its PID and the 16 numbers after it (bit i of BLP: PID + i + 1).
    A number not after the previous one (a repeat, or out of order) starts a new pair."""
    out = bytearray()
    pid = -1
    blp = 0
    for seq in seqs:
        if pid >= 0:
            diff = (seq - pid) & 0xFFFF
            if 1 <= diff <= 16:
                blp |= 1 << (diff - 1)
                continue
            out += _NACK_ITEM.pack(pid, blp)
        pid = seq & 0xFFFF
        blp = 0
    if pid >= 0:
        out += _NACK_ITEM.pack(pid, blp)
    return bytes(out)


def build_nack_fci(sender_ssrc: int, media_ssrc: int, fci: bytes) -> bytes:
    """A generic NACK (RTPFB fmt 1) around an FCI from :func:`nack_fci` (a multiple of 4 bytes)."""
    if len(fci) % 4:
        raise ValueError("a NACK FCI is a whole number of 4-byte items")
    header = struct.pack("!BBHII", 0x80 | RTPFB_NACK, RTCP_RTPFB, 2 + len(fci) // 4, sender_ssrc, media_ssrc)
    return header + fci


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb), PSFB fmt 15."""
    exp = 0
    mantissa = max(0, int(bitrate))
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    fci = b"REMB" + struct.pack(
        "!BBH", len(ssrcs), (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF
    ) + b"".join(_U32.pack(s) for s in ssrcs)
    words = 2 + len(fci) // 4
    return struct.pack("!BBHII", 0x80 | PSFB_APP, RTCP_PSFB, words, sender_ssrc, 0) + fci


def parse_remb(data: bytes | bytearray, start: int, end: int) -> tuple[int, list[int]]:
    """``(bitrate, ssrcs)`` of a REMB; raises ``ValueError`` if it is not one."""
    pos = start + 12
    if end - pos < 8 or bytes(data[pos : pos + 4]) != b"REMB":
        raise ValueError("not a REMB")
    num, b1, low = struct.unpack_from("!BBH", data, pos + 4)
    bitrate = (((b1 & 0x03) << 16) | low) << (b1 >> 2)
    ssrcs = [_U32.unpack_from(data, pos + 8 + 4 * i)[0] for i in range(num) if pos + 12 + 4 * i <= end]
    return bitrate, ssrcs


def build_sr(ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int) -> bytes:
    return struct.pack(
        "!BBHIQIII",
        0x80,
        RTCP_SR,
        6,
        ssrc,
        ntp & 0xFFFFFFFFFFFFFFFF,
        rtp_ts & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )


def build_rr(sender_ssrc: int, blocks: list[tuple[int, int, int, int, int, int, int]]) -> bytes:
    """Receiver report; each block is (ssrc, fraction_lost, cumulative_lost, extended_highest_seq,
    jitter, lsr, dlsr). At most 31 blocks."""
    blocks = blocks[:31]
    body = b"".join(
        struct.pack(
            "!IB3sIIII",
            ssrc,
            fraction & 0xFF,
            max(-0x800000, min(0x7FFFFF, lost)).to_bytes(3, "big", signed=True),
            highest & 0xFFFFFFFF,
            jitter & 0xFFFFFFFF,
            lsr & 0xFFFFFFFF,
            dlsr & 0xFFFFFFFF,
        )
        for ssrc, fraction, lost, highest, jitter, lsr, dlsr in blocks
    )
    return struct.pack("!BBHI", 0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), sender_ssrc) + body

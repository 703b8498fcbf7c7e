"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

A publisher that negotiates the transport-wide sequence number header extension
(:data:`EXT_TRANSPORT_CC`) and ``a=rtcp-fb:<pt> transport-cc`` numbers every RTP packet it sends on
the transport with one 16-bit counter, and runs its own send-side congestion controller (WebRTC's
GCC, goog_cc in libwebrtc) on the arrival times the receiver reports back. The server only records
when each number arrived (:meth:`TransportCcRecorder.on_packet`, on the receive path) and sends
the feedback packets every ~100 ms (:meth:`TransportCcRecorder.feedback`); the browser's estimate,
its probing and its simulcast allocation do the rest. This is how mediasoup
(``TransportCongestionControlServer``) and LiveKit (pion's TWCC responder) treat publishers.

The feedback packet (RTPFB, FMT 15)::

    |V=2|P|  FMT=15 |    PT=205     |           length              |
    |                     SSRC of packet sender                     |
    |                      SSRC of media source                     |
    |      base sequence number     |      packet status count      |
    |                 reference time                | fb pkt. count |
    |  packet chunks (16 bits each) ... | recv deltas (8 or 16 bits each) ... | padding |

- status symbols: 0 not received, 1 received with a small delta (1 byte, 0..255 x 250 us),
  2 received with a large or negative delta (2 bytes, signed, x 250 us);
- a chunk is a run (``0 SS LLLLLLLLLLLLL``: one symbol, up to 8191 times), a one-bit status
  vector (``1 0`` + 14 symbols 0/1) or a two-bit one (``1 1`` + 7 symbols);
- the reference time is in 64 ms units (24 bits, signed, any origin); the first delta is relative
  to it, each next one to the previous received packet;
- the packet is padded to 32 bits with the P bit and a count in the last byte (as libwebrtc and
  pion do), so it must be sent alone or last in a compound.

Everything here is pure: time is passed in (seconds, monotonic); the recorder stores arrival
times in a preallocated ring and allocates nothing per packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .rtcp import RTCP_RTPFB

EXT_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTPFB_TRANSPORT_CC = 15

NOT_RECEIVED = 0
SMALL_DELTA = 1
LARGE_DELTA = 2

TICKS_PER_SECOND = 4000  # receive deltas are in 250 us units
TICKS_PER_REFERENCE = 256  # the reference time is in 64 ms units = 256 ticks
MAX_RUN = 0x1FFF
MAX_STATUS_PER_PACKET = 1000  # a larger backlog is split over several feedback packets
WINDOW = 8192  # arrival times held (a power of two): > 10 s of a 3 Mbit/s publisher
FEEDBACK_INTERVAL = 0.1  # s, how often the caller should call feedback() (libwebrtc: 50..250 ms)

_FB_HEAD = struct.Struct("!BBHIIHHI")  # header, sender, media, base, count, ref(24)+fb count(8)
_H = struct.Struct("!H")
_h = struct.Struct("!h")


def extension_value(data: bytes | bytearray, ext_id: int) -> int:
    """The value of header extension ``ext_id`` of an RTP packet as a big-endian unsigned integer
    (the transport-wide sequence number: 2 bytes; abs-send-time: 3), or -1 when the packet has no
    such element or its extension block is malformed. One- and two-byte forms (RFC 8285); reads
    the bytes in place (no slice, nothing allocated but the result): for the receive path."""
    n = len(data)
    if n < 16 or not data[0] & 0x10 or ext_id <= 0:
        return -1
    pos = 12 + 4 * (data[0] & 0x0F)
    if pos + 4 > n:
        return -1
    profile = (data[pos] << 8) | data[pos + 1]
    end = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
    if end > n:
        return -1
    pos += 4
    two_byte = profile & 0xFFF0 == 0x1000
    if profile != 0xBEDE and not two_byte:
        return -1
    while pos < end:
        b = data[pos]
        if b == 0:  # padding
            pos += 1
            continue
        if two_byte:
            if pos + 2 > end:
                return -1
            eid = b
            length = data[pos + 1]
            pos += 2
        else:
            eid = b >> 4
            if eid == 15:
                return -1
            length = (b & 0x0F) + 1
            pos += 1
        if pos + length > end:
            return -1
        if eid == ext_id:
            value = 0
            for i in range(pos, pos + length):
                value = (value << 8) | data[i]
            return value
        pos += length
    return -1


@dataclass(frozen=True, slots=True)
class TransportCcFeedback:
    """A parsed feedback packet. ``packets``: ``(sequence number, arrival)`` per reported number in
    order, ``arrival`` in 250 us ticks on the packet's own time line (``reference_time * 256`` plus
    the deltas), None for a packet not received."""

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    reference_time: int  # signed 24-bit, 64 ms units
    feedback_count: int
    packets: tuple[tuple[int, int | None], ...]

    @property
    def received(self) -> int:
        return sum(1 for _, t in self.packets if t is not None)


def parse_feedback(data: bytes | bytearray, start: int, end: int) -> TransportCcFeedback:
    """Parse a transport-cc feedback packet (``start``/``end`` as from :func:`sfu.rtcp.split_compound`:
    ``end`` excludes padding). Raises ``ValueError`` when it is malformed or truncated."""
    if end - start < 20:
        raise ValueError("transport-cc feedback shorter than its fixed part")
    b0, pt, _, sender, media, base, count, ref_fb = _FB_HEAD.unpack_from(data, start)
    if pt != RTCP_RTPFB or b0 & 0x1F != RTPFB_TRANSPORT_CC:
        raise ValueError("not a transport-cc feedback packet")
    ref = ref_fb >> 8
    if ref & 0x800000:
        ref -= 0x1000000
    symbols: list[int] = []
    pos = start + 20
    while len(symbols) < count:
        if pos + 2 > end:
            raise ValueError("transport-cc packet chunks truncated")
        chunk = _H.unpack_from(data, pos)[0]
        pos += 2
        if not chunk & 0x8000:  # run length
            symbol = (chunk >> 13) & 0x3
            if symbol == 3:
                raise ValueError("transport-cc reserved status symbol")
            symbols.extend([symbol] * min(chunk & MAX_RUN, count - len(symbols)))
        elif not chunk & 0x4000:  # 14 one-bit symbols
            for i in range(13, -1, -1):
                symbols.append((chunk >> i) & 1)
        else:  # 7 two-bit symbols
            for i in range(6, -1, -1):
                symbol = (chunk >> (2 * i)) & 0x3
                if symbol == 3 and len(symbols) < count:
                    raise ValueError("transport-cc reserved status symbol")
                symbols.append(symbol)
    del symbols[count:]
    packets: list[tuple[int, int | None]] = []
    t = ref * TICKS_PER_REFERENCE
    for i, symbol in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if symbol == NOT_RECEIVED:
            packets.append((seq, None))
            continue
        if symbol == SMALL_DELTA:
            if pos + 1 > end:
                raise ValueError("transport-cc receive deltas truncated")
            t += data[pos]
            pos += 1
        else:
            if pos + 2 > end:
                raise ValueError("transport-cc receive deltas truncated")
            t += _h.unpack_from(data, pos)[0]
            pos += 2
        packets.append((seq, t))
    return TransportCcFeedback(sender, media, base, ref, ref_fb & 0xFF, tuple(packets))


def encode_chunks(symbols: list[int]) -> bytes:
    """The packet chunks for a list of status symbols: runs where a symbol repeats (or ends the
    list), else a one-bit vector of 14 when none of them is a large delta, else a two-bit vector
    of 7 (symbols past the end of the list are padded with 'not received')."""
    out = bytearray()
    n = len(symbols)
    i = 0
    while i < n:
        s = symbols[i]
        j = i + 1
        while j < n and symbols[j] == s and j - i < MAX_RUN:
            j += 1
        if j - i >= 14 or j == n:
            out += _H.pack((s << 13) | (j - i))
            i = j
            continue
        seg = symbols[i : i + 14]
        if LARGE_DELTA not in seg:
            word = 0x8000
            for k, sym in enumerate(seg):
                word |= sym << (13 - k)
            out += _H.pack(word)
            i += 14
        else:
            word = 0xC000
            for k, sym in enumerate(symbols[i : i + 7]):
                word |= sym << (2 * (6 - k))
            out += _H.pack(word)
            i += 7
    return bytes(out)


def build_feedback(
    sender_ssrc: int,
    media_ssrc: int,
    base_sequence: int,
    reference_time: int,
    feedback_count: int,
    symbols: list[int],
    deltas: bytes,
) -> bytes:
    """One feedback packet from its parts (``deltas``: the encoded receive deltas, 1 or 2 bytes per
    received packet in order); padded to 32 bits with the P bit and the padding count."""
    body = (
        _FB_HEAD.pack(
            0,
            RTCP_RTPFB,
            0,
            sender_ssrc & 0xFFFFFFFF,
            media_ssrc & 0xFFFFFFFF,
            base_sequence & 0xFFFF,
            len(symbols),
            ((reference_time & 0xFFFFFF) << 8) | (feedback_count & 0xFF),
        )
        + encode_chunks(symbols)
        + deltas
    )
    pad = -len(body) % 4
    first = 0x80 | RTPFB_TRANSPORT_CC
    if pad:
        body += bytes(pad - 1) + bytes((pad,))
        first |= 0x20
    return bytes((first, RTCP_RTPFB)) + _H.pack(len(body) // 4 - 1) + body[4:]


class TransportCcRecorder:
    """Arrival times of one transport's packets by transport-wide sequence number, and the feedback
    packets that report them (the receive side of transport-cc; see the module docstring).

    :meth:`on_packet` on the receive path (a few integer operations, no allocation);
    :meth:`feedback` every :data:`FEEDBACK_INTERVAL` while packets arrive. Each number is reported
    once: a packet that arrives after the feedback that covered its number is not reported again
    (the sender already counted it lost, as with libwebrtc's first report). At most ``window``
    numbers wait for a report; older ones are dropped unreported when the backlog grows past it.
    """

    __slots__ = ("_arrival", "_base", "_count", "_highest", "_mask", "feedback_sent", "received", "sender_ssrc")

    def __init__(self, sender_ssrc: int, window: int = WINDOW) -> None:
        if window & (window - 1) or window < 16:
            raise ValueError("window must be a power of two >= 16")
        self.sender_ssrc = sender_ssrc
        self._arrival = [-1.0] * window
        self._mask = window - 1
        self._base = -1  # extended number of the first not yet reported
        self._highest = -1  # extended highest number received
        self._count = 0  # fb pkt. count of the next feedback packet
        self.received = 0
        self.feedback_sent = 0

    @property
    def pending(self) -> int:
        """Numbers from the first unreported to the highest received (received or not)."""
        return 0 if self._highest < self._base else self._highest - self._base + 1

    def on_packet(self, seq: int, arrival: float) -> None:
        """Record that transport-wide sequence number ``seq`` arrived at ``arrival`` (seconds)."""
        highest = self._highest
        if highest < 0:
            ext = 0x10000 | seq  # extended numbers start one cycle up: a reordered predecessor stays >= 0
            self._base = self._highest = ext
        else:
            diff = (seq - highest) & 0xFFFF
            ext = highest + diff if diff < 0x8000 else highest + diff - 0x10000
            if ext > highest:
                if ext - self._base > self._mask:
                    self._drop_before(ext - self._mask)
                self._highest = ext
            elif ext < self._base:
                if self.feedback_sent or self._highest - ext > self._mask:
                    return  # already reported as lost
                self._base = ext  # reordered before the first packet, nothing reported yet
        self._arrival[ext & self._mask] = arrival
        self.received += 1

    def _drop_before(self, new_base: int) -> None:
        arrival = self._arrival
        mask = self._mask
        for ext in range(self._base, min(new_base, self._highest + 1)):
            arrival[ext & mask] = -1.0
        self._base = new_base

    def feedback(self, media_ssrc: int = 0) -> list[bytes]:
        """The feedback packets for every number since the last call, oldest first (each a whole
        RTCP packet, to be sent alone or last in a compound); ``[]`` when nothing arrived."""
        if self._highest < 0 or self._highest < self._base:
            return []
        out: list[bytes] = []
        arrival = self._arrival
        mask = self._mask
        ext = self._base
        last = self._highest
        while ext <= last:
            start = ext
            symbols: list[int] = []
            deltas = bytearray()
            ref = -1
            prev = 0
            while ext <= last and len(symbols) < MAX_STATUS_PER_PACKET:
                t = arrival[ext & mask]
                if t < 0:
                    symbols.append(NOT_RECEIVED)
                    ext += 1
                    continue
                ticks = round(t * TICKS_PER_SECOND)
                if ref < 0:
                    ref = ticks // TICKS_PER_REFERENCE
                    prev = ref * TICKS_PER_REFERENCE
                delta = ticks - prev
                if 0 <= delta <= 255:
                    symbols.append(SMALL_DELTA)
                    deltas.append(delta)
                elif -0x8000 <= delta <= 0x7FFF:
                    symbols.append(LARGE_DELTA)
                    deltas += _h.pack(delta)
                else:
                    break  # more than 8 s from the previous one: it starts the next packet
                prev = ticks
                arrival[ext & mask] = -1.0
                ext += 1
            for k in range(start, ext):
                arrival[k & mask] = -1.0
            out.append(
                build_feedback(self.sender_ssrc, media_ssrc, start, max(ref, 0), self._count, symbols, bytes(deltas))
            )
            self._count = (self._count + 1) & 0xFF
        self._base = last + 1
        self.feedback_sent += len(out)
        return out


def _sections(lines: list[str]) -> list[tuple[int, int]]:
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    return [(s, starts[k + 1] if k + 1 < len(starts) else len(lines)) for k, s in enumerate(starts)]


def offered_transport_cc(offer: str) -> list[tuple[int, frozenset[str]]]:
    """Per m-line of an offer: the transport-wide sequence number extension's id (0: not offered)
    and the payload types (as written, ``*`` included) with ``a=rtcp-fb:<pt> transport-cc``."""
    lines = offer.splitlines()
    out: list[tuple[int, frozenset[str]]] = []
    for start, end in _sections(lines):
        ext_id = 0
        pts: set[str] = set()
        for line in lines[start:end]:
            if line.startswith("a=extmap:") and line.split()[1:2] == [EXT_TRANSPORT_CC]:
                ident = line[9:].split()[0].split("/")[0]
                ext_id = int(ident) if ident.isdigit() else 0
            elif line.startswith("a=rtcp-fb:") and line.split()[1:2] == ["transport-cc"]:
                pts.add(line[10:].split()[0])
        out.append((ext_id, frozenset(pts)))
    return out


def answered_id(answer: str) -> int:
    """The transport-wide sequence number extension's id in an answer (the first m-line that has
    it; one bundle, one id), 0 when it is not answered."""
    for line in answer.splitlines():
        if line.startswith("a=extmap:") and line.split()[1:2] == [EXT_TRANSPORT_CC]:
            ident = line[9:].split()[0].split("/")[0]
            if ident.isdigit():
                return int(ident)
    return 0


def munge_answer(answer: str, offer: str) -> str:
    """Answer transport-cc where the offer has it (aiortc never does): on every answered m-line
    (port not 0) whose offer carries the transport-wide sequence number extension, add its
    ``a=extmap`` with the offer's id (unless the answer uses that id or URI already) and
    ``a=rtcp-fb:<pt> transport-cc`` for each answered payload type the offer gave that feedback.
    m-lines are matched by position. Only for a transport that then sends the feedback
    (:class:`TransportCcRecorder`): a browser that negotiated transport-cc and gets none lowers
    its rate."""
    offered = offered_transport_cc(offer)
    lines = answer.splitlines()
    sections = _sections(lines)
    if not any(ext_id for ext_id, _ in offered):
        return answer
    out: list[str] = lines[: sections[0][0]] if sections else list(lines)
    for k, (start, end) in enumerate(sections):
        section = lines[start:end]
        ext_id, pts = offered[k] if k < len(offered) else (0, frozenset())
        fields = section[0].split()
        if not ext_id or len(fields) < 4 or fields[1] == "0":
            out.extend(section)
            continue
        used = {line[9:].split()[0].split("/")[0] for line in section if line.startswith("a=extmap:")}
        uris = {line.split()[1] for line in section if line.startswith("a=extmap:") and len(line.split()) > 1}
        if EXT_TRANSPORT_CC not in uris and str(ext_id) not in used:
            anchor = max((i for i, line in enumerate(section) if line.startswith(("a=extmap:", "a=mid:"))), default=0)
            section.insert(anchor + 1, f"a=extmap:{ext_id} {EXT_TRANSPORT_CC}")
        if EXT_TRANSPORT_CC in uris or str(ext_id) not in used:
            for pt in fields[3:]:
                if "*" not in pts and pt not in pts:
                    continue
                if f"a=rtcp-fb:{pt} transport-cc" in section:
                    continue
                mine = [
                    i
                    for i, line in enumerate(section)
                    if line.startswith(("a=rtpmap:", "a=rtcp-fb:", "a=fmtp:"))
                    and line.split()[0].split(":", 1)[1] == pt
                ]
                if mine:
                    section.insert(max(mine) + 1, f"a=rtcp-fb:{pt} transport-cc")
        out.extend(section)
    return "\r\n".join(out) + "\r\n"

"""Generated input for the fuzzing suite, and the oracles that judge what a parser did with it.

The generators build *nearly valid* input from its structure (valid headers with mutated fields,
lengths that lie, truncations, extension blocks, padding, CSRC counts, RTCP compounds, STUN
attributes with odd lengths, SDP with odd lines) and then, sometimes, damage the bytes at random:
a parser meets mostly plausible packets, which reach deeper than random bytes do. Each takes a
``random.Random`` so the same generator serves the CI tests (hypothesis hands it a recorded,
derandomized ``Random``: ``st.randoms()``) and the long run (``benchmarks/fuzz.py``, a seeded one).

An oracle (``check_*``) runs one input through every parser of its kind, checks the invariants of
what came back (offsets inside the packet, sane counts) and returns an outcome label: ``"ok"`` or
the documented error (``"ValueError"``, ``"InvalidSdpError"``). Anything else (an ``IndexError``,
a ``struct.error``, a ``KeyError``, a broken invariant) raises :class:`ParserCrash`.
"""

from __future__ import annotations

import hmac
import json
import random
import struct
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import msgspec
import msgspec.inspect as mi

from sfu import rtcp, rtp, stun
from sfu.errors import InvalidSdpError
from sfu.sdp import parse_media

STUN_KEY = b"fuzz-ice-password-24char"  # the MESSAGE-INTEGRITY key the generator signs with


class ParserCrash(AssertionError):
    """A parser raised something it does not document, or returned something insane."""


# --- byte-level damage ------------------------------------------------------------------------
def mutate(r: random.Random, data: bytes, rounds: int = 0) -> bytes:
    """``data`` with 1..3 (or ``rounds``) random edits: bit flips, byte overwrites, truncation,
    insertion, deletion, duplication of a slice."""
    buf = bytearray(data)
    for _ in range(rounds or r.choice((1, 1, 1, 2, 3))):
        op = r.randrange(7)
        n = len(buf)
        if op == 0 and n:
            i = r.randrange(n)
            buf[i] ^= 1 << r.randrange(8)
        elif op == 1 and n:
            buf[r.randrange(n)] = r.choice((0, 0xFF, 0x7F, 0x80, r.randrange(256)))
        elif op == 2 and n:
            del buf[r.randrange(n + 1) :]
        elif op == 3:
            i = r.randrange(n + 1)
            buf[i:i] = r.randbytes(r.choice((1, 2, 4, r.randrange(1, 40))))
        elif op == 4 and n:
            i = r.randrange(n)
            del buf[i : i + r.randrange(1, 9)]
        elif op == 5 and n:
            i = r.randrange(n)
            j = min(n, i + r.randrange(1, 33))
            buf[j:j] = buf[i:j]
        elif op == 6 and n >= 4:  # overwrite a 16-bit field (lengths, counts) with an edge value
            i = r.randrange(n - 1)
            struct.pack_into("!H", buf, i, r.choice((0, 1, 0xFFFF, 0x8000, r.randrange(65536))))
    return bytes(buf)


def _maybe_mutate(r: random.Random, data: bytes, p: float) -> bytes:
    return mutate(r, data) if r.random() < p else data


# --- RTP --------------------------------------------------------------------------------------
def _ext_block(r: random.Random) -> tuple[int, bytes]:
    """(profile, elements) of an RFC 8285 header extension block (or a profile nobody knows)."""
    kind = r.randrange(4)
    out = bytearray()
    if kind <= 1:  # one-byte form
        profile = rtp.ONE_BYTE_PROFILE
        for _ in range(r.randrange(6)):
            if r.random() < 0.15:
                out.append(0)  # padding between elements
                continue
            ext_id = r.choice((1, 2, 3, 4, 5, 10, 14, 15, r.randrange(16)))
            length = r.choice((1, 1, 2, 3, 4, 16, r.randrange(1, 17)))
            out.append((ext_id << 4) | (length - 1))
            out += r.randbytes(length if r.random() < 0.9 else r.randrange(length + 1))
    elif kind == 2:  # two-byte form
        profile = rtp.TWO_BYTE_PROFILE | r.randrange(16)
        for _ in range(r.randrange(6)):
            if r.random() < 0.15:
                out.append(0)
                continue
            length = r.choice((0, 1, 2, 16, 255, r.randrange(256)))
            out += bytes((r.randrange(1, 256), length))
            out += r.randbytes(length if r.random() < 0.9 else r.randrange(length + 1))
    else:
        profile = r.randrange(65536)
        out += r.randbytes(r.randrange(0, 24))
    return profile, bytes(out)


def _video_payload(r: random.Random) -> bytes:
    """A VP8 or H.264 payload start (descriptor bits, NAL types) followed by random bytes."""
    if r.random() < 0.5:
        b0 = r.choice((0x10, 0x90, 0x80, 0x00, r.randrange(256)))
        head = bytes([b0])
        if b0 & 0x80:
            x = r.choice((0x80, 0xC0, 0xF0, 0x00, r.randrange(256)))
            head += bytes([x]) + r.randbytes(r.randrange(4))
    else:
        nal = r.choice((5, 7, 1, 24, 28, r.randrange(32)))
        head = bytes([0x60 | nal])
        if nal == 24:  # STAP-A: (size, NAL) units
            for _ in range(r.randrange(4)):
                size = r.choice((0, 1, 5, 300, r.randrange(65536)))
                head += struct.pack("!H", size) + bytes([r.choice((0x67, 0x65, 0x41, r.randrange(256)))])
        elif nal == 28:  # FU-A
            head += bytes([r.choice((0x85, 0x87, 0x05, r.randrange(256)))])
    return head + r.randbytes(r.choice((0, 1, 10, 100, r.randrange(1200))))


def rtp_packet(r: random.Random) -> bytes:
    """An RTP packet with plausible fields; lengths, counts and padding sometimes lie."""
    version = 2 if r.random() < 0.95 else r.randrange(4)
    cc = r.choice((0, 0, 0, 1, 2, 15))
    csrc_words = cc if r.random() < 0.85 else r.randrange(16)
    has_ext = r.random() < 0.6
    padded = r.random() < 0.15
    b0 = (version << 6) | (padded << 5) | (has_ext << 4) | cc
    b1 = (0x80 if r.random() < 0.3 else 0) | r.choice((96, 97, 100, 111, 102, r.randrange(128)))
    out = bytearray(struct.pack("!BBHII", b0, b1, r.getrandbits(16), r.getrandbits(32), r.getrandbits(32)))
    out += r.randbytes(4 * csrc_words)
    if has_ext:
        profile, elements = _ext_block(r)
        words = (len(elements) + 3) // 4
        elements += bytes(4 * words - len(elements))
        claimed = words if r.random() < 0.85 else r.choice((0, words + 1, words - 1, 0xFFFF, r.randrange(65536)))
        out += struct.pack("!HH", profile, claimed & 0xFFFF) + elements
    out += _video_payload(r) if r.random() < 0.5 else r.randbytes(r.choice((0, 1, 3, 20, 160, r.randrange(1300))))
    if padded:
        pad = r.choice((1, 4, 255, 0, r.randrange(256)))
        out += bytes(max(0, min(pad, 255) - 1)) + bytes([pad])
    return _maybe_mutate(r, bytes(out), 0.2)


# --- RTCP -------------------------------------------------------------------------------------
def _rtcp_body(r: random.Random) -> tuple[int, int, bytes]:
    """(packet type, count/fmt, body after the 4-byte header) of one RTCP packet."""
    kind = r.randrange(10)
    ssrc = struct.pack("!I", r.getrandbits(32))
    if kind == 0:  # SR with report blocks
        n = r.randrange(3)
        body = ssrc + r.randbytes(20) + r.randbytes(24 * n)
        return rtcp.RTCP_SR, n, body
    if kind == 1:
        n = r.randrange(3)
        return rtcp.RTCP_RR, n, ssrc + r.randbytes(24 * n)
    if kind == 2:  # SDES: chunks of (ssrc, items)
        body = ssrc + bytes([1, 5]) + b"cname" + bytes(1)
        return rtcp.RTCP_SDES, 1, body + bytes(-len(body) % 4)
    if kind == 3:
        return rtcp.RTCP_BYE, 1, ssrc
    if kind == 4:  # generic NACK
        return rtcp.RTCP_RTPFB, rtcp.RTPFB_NACK, ssrc + ssrc + r.randbytes(4 * r.randrange(5))
    if kind == 5:
        return rtcp.RTCP_PSFB, rtcp.PSFB_PLI, ssrc + ssrc
    if kind == 6:  # FIR: (ssrc, seq + reserved) entries
        return rtcp.RTCP_PSFB, rtcp.PSFB_FIR, ssrc + bytes(4) + r.randbytes(8 * r.randrange(3))
    if kind == 7:  # REMB: the number of SSRCs sometimes lies
        count = r.randrange(4)
        num = count if r.random() < 0.8 else r.randrange(256)
        fci = b"REMB" + bytes([num, r.randrange(256)]) + r.randbytes(2) + r.randbytes(4 * count)
        return rtcp.RTCP_PSFB, rtcp.PSFB_APP, ssrc + bytes(4) + fci
    if kind == 8:  # transport-cc and other feedback the core ignores
        return rtcp.RTCP_RTPFB, r.randrange(32), ssrc + ssrc + r.randbytes(4 * r.randrange(4))
    return r.choice((rtcp.RTCP_APP, r.randrange(256))), r.randrange(32), r.randbytes(4 * r.randrange(6))


def rtcp_packet(r: random.Random) -> bytes:
    body_type, count, body = _rtcp_body(r)
    if r.random() < 0.15:  # a body shorter than its type needs (a truncated SR, an 8-byte PLI)
        body = body[: 4 * r.randrange(len(body) // 4 + 1)]
    padded = r.random() < 0.1
    if padded:
        pad = r.choice((4, 8, 0, r.randrange(256)))
        body += bytes(3) + bytes([pad])
    words = len(body) // 4
    if r.random() < 0.1:
        words = r.choice((0, words + 1, max(0, words - 1), 0xFFFF, r.randrange(65536)))
    version = 2 if r.random() < 0.97 else r.randrange(4)
    return struct.pack("!BBH", (version << 6) | (padded << 5) | count, body_type, words) + body


def rtcp_compound(r: random.Random) -> bytes:
    """One to four RTCP packets in one datagram, sometimes damaged."""
    data = b"".join(rtcp_packet(r) for _ in range(r.choice((1, 1, 2, 3, 4))))
    return _maybe_mutate(r, data, 0.15)


# --- STUN -------------------------------------------------------------------------------------
def _attr(attr_type: int, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("!HH", attr_type, n & 0xFFFF) + value + bytes(-len(value) % 4)


def _username(r: random.Random, username: str | None) -> bytes:
    choice = r.randrange(6)
    if username is not None and choice < 2:
        return username.encode()
    if choice == 2:
        return r.randbytes(r.randrange(64))  # often not UTF-8
    if choice == 3:
        return ("\u00e9" * r.randrange(1, 20) + ":x").encode()
    if choice == 4:
        return b""
    return f"{r.getrandbits(32):08x}:{r.getrandbits(16):04x}".encode()


def stun_message(r: random.Random, key: bytes = STUN_KEY, username: str | None = None) -> bytes:
    """A STUN message, mostly a binding request signed with ``key`` (USERNAME ``username`` when
    given); attributes with odd lengths, MESSAGE-INTEGRITY and FINGERPRINT misplaced or wrong."""
    message_type = r.choice((stun.BINDING_REQUEST,) * 6 + (stun.BINDING_SUCCESS, 0x0111, 0x0011, r.randrange(65536)))
    cookie = stun.MAGIC_COOKIE if r.random() < 0.95 else r.getrandbits(32)
    tid = r.randbytes(12)
    attrs = bytearray()
    items = ["username", "priority", "controlling", "use", "unknown", "integrity", "fingerprint"]
    r.shuffle(items) if r.random() < 0.15 else None
    for item in items:
        if item == "username" and r.random() < 0.95:
            value = _username(r, username)
            attrs += _attr(stun.ATTR_USERNAME, value, None if r.random() < 0.95 else r.randrange(65536))
        elif item == "priority" and r.random() < 0.8:
            attrs += _attr(0x0024, r.randbytes(4))
        elif item == "controlling" and r.random() < 0.7:
            attrs += _attr(r.choice((0x802A, 0x8029)), r.randbytes(8))
        elif item == "use" and r.random() < 0.4:
            attrs += _attr(stun.ATTR_USE_CANDIDATE, b"" if r.random() < 0.9 else r.randbytes(r.randrange(1, 7)))
        elif item == "unknown" and r.random() < 0.3:
            attrs += _attr(r.randrange(65536), r.randbytes(r.choice((0, 1, 2, 3, 5, 7, r.randrange(40)))))
        elif item == "integrity" and r.random() < 0.9:
            if r.random() < 0.9:
                head = struct.pack("!HHI", message_type, len(attrs) + 24, cookie) + tid
                mac = hmac.digest(key if r.random() < 0.9 else b"wrong", head + attrs, "sha1")
                attrs += _attr(stun.ATTR_MESSAGE_INTEGRITY, mac)
            else:
                attrs += _attr(stun.ATTR_MESSAGE_INTEGRITY, r.randbytes(r.choice((0, 16, 19, 21, 32))))
        elif item == "fingerprint" and r.random() < 0.8:
            head = struct.pack("!HHI", message_type, len(attrs) + 8, cookie) + tid
            crc = (zlib.crc32(head + attrs) ^ stun.FINGERPRINT_XOR) & 0xFFFFFFFF
            if r.random() < 0.1:
                crc ^= 1 << r.randrange(32)
            attrs += _attr(stun.ATTR_FINGERPRINT, struct.pack("!I", crc) if r.random() < 0.95 else r.randbytes(3))
    length = len(attrs) if r.random() < 0.95 else r.choice((0, len(attrs) + 4, len(attrs) - 4, len(attrs) + 1))
    data = struct.pack("!HHI", message_type, length & 0xFFFF, cookie) + tid + bytes(attrs)
    return _maybe_mutate(r, data, 0.1)


# --- DTLS-looking and random datagrams ----------------------------------------------------------
def dtls_like(r: random.Random) -> bytes:
    """A DTLS 1.2 record header (content type 20..63, version, epoch, sequence, length) and junk."""
    content = r.choice((20, 21, 22, 23, r.randrange(20, 64)))
    body = r.randbytes(r.choice((0, 1, 12, 60, 300, r.randrange(1200))))
    length = len(body) if r.random() < 0.8 else r.randrange(65536)
    head = struct.pack("!BHHIHH", content, r.choice((0xFEFD, 0xFEFF, r.randrange(65536))), r.randrange(3),
                       r.getrandbits(32), r.getrandbits(16), length)
    return head + body


def random_bytes(r: random.Random) -> bytes:
    return r.randbytes(r.choice((0, 1, 2, 3, 4, 11, 12, 19, 20, 21, 64, r.randrange(1500))))


DATAGRAM_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "rtp": rtp_packet,
    "rtcp": rtcp_compound,
    "stun": stun_message,
    "dtls": dtls_like,
    "random": random_bytes,
}


# --- SDP --------------------------------------------------------------------------------------
_ODD_VALUES = ("", "0", "-1", "x", "99999999999999999999", "4294967296", "\u00e9\u00e9", "a b c", ":", "/", "*",
               "96 97", "0.5", "\x00", "=" * 3, "1" * 300)
_ODD_LINES = (
    "a=rtpmap:abc VP8/90000", "a=rtpmap:96", "a=rtpmap:96 VP8", "a=rtpmap:96 VP8/x", "a=rtpmap:300 VP8/90000",
    "a=fmtp:96", "a=fmtp:x apt=1", "a=rtcp-fb:96", "a=extmap:x urn:x", "a=extmap:1", "a=extmap:15/sendonly",
    "a=extmap:99999 urn:ietf:params:rtp-hdrext:sdes:mid", "a=ssrc:abc cname:x", "a=ssrc:1", "a=ssrc:-1 cname:x",
    "a=ssrc:4294967296 cname:x", "a=ssrc-group:FID 1", "a=ssrc-group:FID a b", "a=ssrc-group:SIM",
    "a=ssrc-group:SIM 1 2 x", "a=mid:", "a=mid:0", "a=msid:", "a=msid:a b c d", "a=rid:h send",
    "a=rid:l send pt=abc", "a=simulcast:send h;l", "a=simulcast:send ~", "a=simulcast:", "a=setup:bogus",
    "a=fingerprint:sha-256", "a=fingerprint:md5 00", "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:",
    "a=candidate:1 1 udp x 1.2.3.4 5 typ host", "a=group:BUNDLE", "a=group:BUNDLE 0 1 2 3", "a=sendrecv",
    "a=inactive", "m=video 0 UDP/TLS/RTP/SAVPF 96", "m=audio x UDP/TLS/RTP/SAVPF 111", "m=video 9 RTP/AVP",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=", "m=video", "c=IN IP4", "c=IN IP6 ::1", "b=AS:x",
    "a=sctp-port:x", "a=max-message-size:-5", "a=rtcp:x", "a=rtcp-mux", "v=1", "o=", "s=", "t=x", "x=y", "=",
    "a=", "garbage", "a=extmap-allow-mixed",
)


def sdp_text(r: random.Random, seeds: Sequence[str]) -> str:
    """A real SDP (one of ``seeds``) with 1..6 line-level edits."""
    lines = r.choice(seeds).splitlines()
    for _ in range(r.randrange(1, 7)):
        op = r.randrange(7)
        i = r.randrange(len(lines) + 1) if lines else 0
        if op == 0 and lines:
            del lines[min(i, len(lines) - 1)]
        elif op == 1 and lines:
            lines.insert(i, lines[min(i, len(lines) - 1)])
        elif op == 2:
            lines.insert(i, r.choice(_ODD_LINES))
        elif op == 3 and lines:  # replace one token of a line with an odd value
            j = min(i, len(lines) - 1)
            parts = lines[j].replace(":", " ", 1).split(" ")
            parts[r.randrange(len(parts))] = r.choice(_ODD_VALUES)
            lines[j] = lines[j][:2] + " ".join(parts)[2:] if r.random() < 0.5 else " ".join(parts)
        elif op == 4 and len(lines) > 1:
            j = r.randrange(len(lines) - 1)
            lines[j], lines[j + 1] = lines[j + 1], lines[j]
        elif op == 5:
            lines = lines[: r.randrange(len(lines) + 1)]
        elif op == 6 and lines:
            j = min(i, len(lines) - 1)
            lines[j] = mutate(r, lines[j].encode()).decode("utf-8", "replace")
    sep = r.choice(("\r\n", "\r\n", "\n", "\r"))
    return sep.join(lines) + (sep if r.random() < 0.9 else "")


# --- oracles ----------------------------------------------------------------------------------
def _crash(what: str, data: bytes | str, exc: BaseException | None = None) -> ParserCrash:
    shown = data[:200].hex() if isinstance(data, bytes) else repr(data[:400])
    return ParserCrash(f"{what}: {exc!r} on {shown}")


def check_rtp(data: bytes) -> str:
    """Every RTP helper on ``data``: ``"ok"`` or ``"ValueError"``; raises :class:`ParserCrash`."""
    try:
        h = rtp.parse_header(data)
    except ValueError:
        outcome = "ValueError"
        h = None
    except Exception as exc:
        raise _crash("rtp.parse_header", data, exc) from exc
    try:
        value = rtp.find_extension(data, 1 + len(data) % 14)
        if value is not None and not isinstance(value, bytes):
            raise _crash("rtp.find_extension returned a non-bytes", data)
        if h is None:
            return outcome
        n = len(data)
        if not (12 <= h.ext_start <= h.ext_end <= h.payload_start <= h.payload_end <= n):
            raise _crash(f"rtp.parse_header offsets {h}", data)
        if not (0 <= h.payload_type < 128 and 0 <= h.sequence_number < 65536):
            raise _crash(f"rtp.parse_header fields {h}", data)
        outcome = "ok"
        if h.ext_profile:
            try:
                elements = rtp.iter_extensions(data, h.ext_profile, h.ext_start, h.ext_end)
            except ValueError:
                outcome = "ValueError"
                elements = []
            for ext_id, s, e in elements:
                # an id-0 element with a length is kept (RFC 8285: padding is a zero byte); never mapped
                if not (h.ext_start <= s <= e <= h.ext_end and 0 <= ext_id < 256):
                    raise _crash(f"rtp.iter_extensions element {(ext_id, s, e)}", data)
            level = rtp.one_byte_extension_byte(data, h.ext_start, h.ext_end, 1)
            if not -1 <= level <= 255:
                raise _crash(f"rtp.one_byte_extension_byte returned {level}", data)
            buf = bytearray(data)
            rtp.rewrite_extensions(buf, h.ext_profile, h.ext_start, h.ext_end, bytes(range(256))[::-1])
            if len(buf) != n or buf[: h.ext_start] != data[: h.ext_start] or buf[h.ext_end :] != data[h.ext_end :]:
                raise _crash("rtp.rewrite_extensions wrote outside the block", data)
        for mime in ("video/VP8", "video/H264", "audio/opus"):
            if not isinstance(rtp.is_keyframe(mime, data, h.payload_start, h.payload_end), bool):
                raise _crash("rtp.is_keyframe returned a non-bool", data)
        buf = bytearray(data)
        rtp.rewrite_header(buf, h.payload_type, (h.sequence_number + 1) & 0xFFFF, h.timestamp, h.ssrc ^ 1)
        if len(buf) != n or rtp.parse_header(buf).payload_start != h.payload_start:
            raise _crash("rtp.rewrite_header changed the layout", data)
    except ParserCrash:
        raise
    except Exception as exc:
        raise _crash("rtp helpers", data, exc) from exc
    return outcome


def check_rtcp(data: bytes) -> str:
    """Split the compound and run the parser of each packet as the forwarding core does."""
    try:
        packets = rtcp.split_compound(data)
    except ValueError:
        return "ValueError"
    except Exception as exc:
        raise _crash("rtcp.split_compound", data, exc) from exc
    outcome = "ok"
    last = 0
    for pt, fmt, start, end in packets:
        if not (last <= start and start + 4 <= end <= len(data) and 0 <= fmt < 32 and 0 <= pt < 256):
            raise _crash(f"rtcp.split_compound entry {(pt, fmt, start, end)}", data)
        last = end
        try:
            if pt == rtcp.RTCP_SR:
                rtcp.parse_sr(data, start, end)
            elif pt == rtcp.RTCP_RTPFB and fmt == rtcp.RTPFB_NACK:
                _, lost = rtcp.parse_nack(data, start, end)
                if len(lost) > 17 * (end - start) // 4 or not all(0 <= s < 65536 for s in lost):
                    raise _crash("rtcp.parse_nack lost list", data)
            elif pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_PLI:
                rtcp.feedback_ssrcs(data, start, end)
            elif pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_FIR:
                rtcp.parse_fir_ssrcs(data, start, end)
            elif pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_APP:
                bitrate, ssrcs = rtcp.parse_remb(data, start, end)
                if bitrate < 0 or len(ssrcs) > (end - start) // 4:
                    raise _crash("rtcp.parse_remb", data)
        except ValueError:
            outcome = "ValueError"
        except ParserCrash:
            raise
        except Exception as exc:
            raise _crash(f"rtcp parser of pt {pt} fmt {fmt}", data, exc) from exc
    return outcome


def check_stun(data: bytes, key: bytes = STUN_KEY) -> str:
    """Binding requests (and, where sfu.stun has its parser, binding success responses)."""
    try:
        req = stun.parse_binding_request(data)
    except stun.NotBindingRequest:
        parse_success = getattr(stun, "parse_binding_success", None)
        if parse_success is None:
            return "NotBindingRequest"
        try:
            res = parse_success(data)
        except stun.NotBindingRequest:
            return "NotBindingRequest"
        except ValueError:
            return "ValueError"
        except Exception as exc:
            raise _crash("stun.parse_binding_success", data, exc) from exc
        if len(res.transaction_id) != 12 or len(res.integrity) != 20 or not isinstance(res.check(key), bool):
            raise _crash(f"stun.parse_binding_success returned {res}", data) from None
        return "ok_response"
    except ValueError:
        return "ValueError"
    except Exception as exc:
        raise _crash("stun.parse_binding_request", data, exc) from exc
    if len(req.transaction_id) != 12 or len(req.integrity) != 20 or not isinstance(req.username, str):
        raise _crash(f"stun.parse_binding_request returned {req}", data)
    try:
        signed = req.check(key)
        stun.binding_success(req.transaction_id, ("127.0.0.1", 9), key)
    except Exception as exc:
        raise _crash("stun check/response", data, exc) from exc
    return "ok_signed" if signed else "ok"


def check_sdp(text: str) -> str:
    try:
        sections = parse_media(text)
    except InvalidSdpError:
        return "InvalidSdpError"
    except Exception as exc:
        raise _crash("sdp.parse_media", text, exc) from exc
    for s in sections:
        numbers_ok = (all(0 <= x < 2**32 for x in (*s.ssrcs, *s.rtx_ssrcs, *s.simulcast_ssrcs))
                      and all(0 <= c.payload_type < 128 for c in s.codecs)
                      and all(0 < i < 256 for i in s.extensions.values()))
        if s.kind not in ("audio", "video") or not s.mid or not numbers_ok:
            raise _crash(f"sdp.parse_media section {s}", text)
        s.main_codec  # noqa: B018 (a property that must not raise)
    return "ok"


def check_datagram(kind: str, data: bytes) -> str:
    """The oracle of one generated datagram (``DATAGRAM_KINDS``), by its kind."""
    if kind == "rtp":
        return check_rtp(data)
    if kind == "rtcp":
        return check_rtcp(data)
    if kind == "stun":
        return check_stun(data)
    # DTLS and random bytes: every packet parser must cope
    outcomes = {check_rtp(data), check_rtcp(data), check_stun(data)}
    return "ok" if "ok" in outcomes else "rejected"


# --- signalling frames ------------------------------------------------------------------------
_ODD_STRINGS = ("", " ", "\u00e9", "\ud800", "a\udfff", "\x00", "null", "0", "-1", "<script>", "\u202e", "x" * 300)


def json_value(r: random.Random, depth: int = 0) -> Any:
    """Any JSON value (NaN and huge integers included; strings with lone surrogates too)."""
    kind = r.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return r.random() < 0.5
    if kind == 2:
        return r.choice((0, 1, -1, 2**31, 2**63, -(2**70), r.randrange(-1000, 1000)))
    if kind == 3:
        # NaN/Infinity make the whole frame invalid JSON for the server (as for JSON.parse): rare
        return r.choice((float("nan"), float("inf"))) if r.random() < 0.1 else r.choice((0.5, -0.0, 1e308))
    if kind in (4, 5):
        return r.choice(_ODD_STRINGS) if r.random() < 0.4 else _text(r, 20)
    if kind in (6, 7):
        return [json_value(r, depth + 1) for _ in range(r.randrange(4))]
    return {_text(r, 8): json_value(r, depth + 1) for _ in range(r.randrange(4))}


def _text(r: random.Random, max_len: int) -> str:
    alphabet = "abcxyz019 _-:\u00e9\u4e2d\U0001f600"
    return "".join(r.choice(alphabet) for _ in range(r.randrange(max_len + 1)))


def valid_value(r: random.Random, t: Any, name: str, pools: Mapping[str, Sequence[Any]]) -> Any:
    """A value that msgspec accepts for type ``t`` (msgspec.inspect), from ``pools[name]`` when
    the test has real ones (participant ids, SDP offers)."""
    pool = pools.get(name)
    is_list = isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)
    if pool and not is_list and r.random() < 0.7:  # a list field takes its items from the pool
        return r.choice(pool)
    if isinstance(t, mi.StrType):
        lo, hi = t.min_length or 0, min(t.max_length if t.max_length is not None else 40, 40)
        return _text(r, hi).ljust(lo, "x")[: max(lo, hi)]
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else -5
        hi = t.le if t.le is not None else 1000
        return r.randint(lo, hi)
    if isinstance(t, mi.FloatType):  # bounds as given (the whiteboard's coordinates), strict ones kept inside
        flo = t.ge if t.ge is not None else (t.gt + 1e-6 if t.gt is not None else -5.0)
        fhi = t.le if t.le is not None else (t.lt - 1e-6 if t.lt is not None else 1000.0)
        return r.uniform(flo, fhi)
    if isinstance(t, mi.BoolType):
        return r.random() < 0.5
    if isinstance(t, mi.NoneType):
        return None
    if isinstance(t, mi.LiteralType):
        return r.choice(t.values)
    if isinstance(t, mi.EnumType):
        return r.choice([e.value for e in t.cls])
    if isinstance(t, mi.UnionType):
        return valid_value(r, r.choice(t.types), name, pools)
    if is_list:
        n = r.randrange(max(t.min_length or 0, 1), min(t.max_length or 4, 4) + 1) if r.random() < 0.9 else 0
        return [valid_value(r, t.item_type, name, pools) for _ in range(n)]
    if isinstance(t, mi.DictType):
        return {valid_value(r, t.key_type, "", pools): valid_value(r, t.value_type, "", pools)
                for _ in range(r.randrange(4))}
    if isinstance(t, mi.StructType):
        return struct_body(r, t, pools, damage=0.02)
    return json_value(r)


def struct_body(r: random.Random, t: Any, pools: Mapping[str, Sequence[Any]], damage: float = 0.1) -> dict[str, Any]:
    """The fields of a struct: mostly valid values; with probability about ``damage`` per field any
    JSON value instead, or a required field left out; sometimes one field too many."""
    body: dict[str, Any] = {}
    for f in t.fields:
        roll = r.random()
        if roll < damage / 2 or (not f.required and roll < 0.3):
            continue
        body[f.encode_name] = json_value(r) if roll > 1 - damage else valid_value(r, f.type, f.encode_name, pools)
    if r.random() < 0.1:
        body[_text(r, 8)] = json_value(r)
    return body


def request_frame(r: random.Random, type_: str, model: type[Any], pools: Mapping[str, Sequence[Any]]) -> str:
    """One request of ``type_`` whose body is generated from the request's msgspec model."""
    body = struct_body(r, mi.type_info(model), pools)
    frame: dict[str, Any] = {"type": type_, **body}
    roll = r.random()
    if roll < 0.85:
        frame["id"] = r.randrange(1, 10**6)
    elif roll < 0.9:
        frame["id"] = r.choice(("req-1", "x" * 65, 1.5, True, [1], None))
    if r.random() < 0.5:  # the order of the keys is the client's business
        frame = dict(sorted(frame.items(), key=lambda _: r.random()))
    return json.dumps(frame)


def junk_frame(r: random.Random, types: Sequence[str]) -> str:
    """Not a request: broken JSON, a JSON array or number, an object without a (string) type, an
    unknown type."""
    kind = r.randrange(6)
    if kind == 0:
        return _text(r, 60)
    if kind == 1:
        good = json.dumps({"id": 1, "type": r.choice(types)})
        return good[: r.randrange(len(good))]
    if kind == 2:
        return json.dumps(json_value(r))
    if kind == 3:
        return json.dumps({"id": r.randrange(100), "type": json_value(r)})
    if kind == 4:
        return json.dumps({"id": r.randrange(100), "type": r.choice(types) + r.choice(("_", "X", " ", "\u00e9"))})
    return json.dumps({"id": r.randrange(100), **{_text(r, 8): json_value(r) for _ in range(3)}})


def frame_label(text: str, types: Collection[str]) -> str:
    """The ``type`` label the server counts a frame under in ``urok_ws_handled_total`` (the same
    rules as ``signaling.ws.session``, rate limiting aside): the request type, ``<malformed>`` or
    ``<unknown>``."""
    try:
        frame = msgspec.json.decode(text)  # as the server: no NaN, no lone surrogate escapes
    except (ValueError, RecursionError):
        return "<malformed>"
    if not isinstance(frame, dict):
        return "<malformed>"
    req_id = frame.get("id")
    if isinstance(req_id, str):
        id_ok = len(req_id) <= 64
    else:
        id_ok = req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool))
    type_ = frame.get("type")
    if not id_ok or not isinstance(type_, str):
        return "<malformed>"
    return type_ if type_ in types else "<unknown>"

"""What the forwarding core reads from SDP: m-lines, codecs, header extensions, SSRCs.

aiortc's own SDP module does the text parsing; this module turns its objects into small frozen
dataclasses (the public :class:`MediaSection`) so nothing outside ``sfu/`` touches aiortc types.
Before aiortc sees a text, :func:`check_lines` reads every line aiortc would read with ``int()``,
``split()`` or an ``assert`` and refuses a malformed one by name (``m-line 1 (a=mid:1):
a=rtpmap:96 VP8: ...``): aiortc's own error says neither which line nor why (issue 21).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import sdp as aiortc_sdp

from .errors import InvalidCandidateError, InvalidSdpError, SdpTooLargeError, TooManySectionsError
from .simulcast import offered_rids

SENDING_DIRECTIONS = frozenset({"sendonly", "sendrecv"})
# Per m-line bounds of check_limits.  Parsing costs more than linear time in these (aiortc looks up
# each a=ssrc among the m-line's SSRCs and each a=rtcp-fb/a=fmtp among its codecs), so a 60 KB
# description of one m-line with 2000 a=ssrc lines took ~45 ms per parse; real ones stay far below:
# Chromium's video m-line has ~25 codecs, ~130 lines, 4 a=ssrc lines (6 with rtx, 12 legacy SIM).
MAX_LINES_PER_SECTION = 300
MAX_CODECS_PER_SECTION = 64
MAX_SSRC_LINES_PER_SECTION = 32
AUXILIARY_CODECS = frozenset({"rtx", "red", "ulpfec", "flexfec-03"})


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """One ``a=rtpmap`` entry of an m-line."""

    mime_type: str  # e.g. "video/VP8", "audio/opus"
    payload_type: int
    clock_rate: int
    channels: int | None = None
    parameters: Mapping[str, str | int | None] = field(default_factory=dict)
    # a=rtcp-fb of this payload type: "nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"
    feedback: tuple[str, ...] = ()

    @property
    def is_auxiliary(self) -> bool:
        """RTX, RED or FEC: not a media codec the core forwards."""
        return self.mime_type.split("/")[-1].lower() in AUXILIARY_CODECS

    @property
    def is_rtx(self) -> bool:
        """An RTX payload type (RFC 4588); its ``apt`` parameter names the media payload type."""
        return self.mime_type.split("/")[-1].lower() == "rtx"

    @property
    def nack(self) -> bool:
        """Generic NACK (``a=rtcp-fb:<pt> nack``, RFC 4585) is negotiated for this payload type."""
        return "nack" in self.feedback


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One audio/video m-line of a session description, as its author wrote it.

    ``direction`` is from the author's point of view (``sendonly`` in a client's offer means the
    client sends); an m-line with port 0 is reported as ``inactive``, unless it is ``a=bundle-only``
    in a BUNDLE group (RFC 8843 section 6: Firefox offers every m-line but the first that way).
    """

    mid: str
    kind: str  # "audio" | "video"
    direction: str  # "sendrecv" | "sendonly" | "recvonly" | "inactive"
    index: int = 0
    codecs: tuple[CodecInfo, ...] = ()
    extensions: Mapping[str, int] = field(default_factory=dict)  # uri -> id
    ssrcs: tuple[int, ...] = ()  # media SSRCs (first of each FID group, or every listed SSRC)
    rtx_ssrcs: tuple[int, ...] = ()
    msid: str | None = None
    rids: tuple[str, ...] = ()  # simulcast send rids (a=rid + a=simulcast), lowest layer first
    simulcast_ssrcs: tuple[int, ...] = ()  # legacy a=ssrc-group:SIM, lowest layer first
    rejected: bool = False  # port 0 (and not bundle-only): the author refused or stopped it
    # (media SSRC, RTX SSRC) of each a=ssrc-group:FID (RFC 5576, RFC 4588 session multiplexing)
    rtx_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def simulcast(self) -> bool:
        """Whether the author sends several simulcast layers on this m-line."""
        return len(self.rids) > 1 or len(self.simulcast_ssrcs) > 1

    @property
    def sending(self) -> bool:
        """Whether the author of the description sends media on this m-line."""
        return self.direction in SENDING_DIRECTIONS

    @property
    def where(self) -> str:
        """``m-line N (a=mid:X)``: how error messages name this m-line."""
        return _where(self.index, self.mid)

    @property
    def direction_line(self) -> str:
        """The SDP line that decides whether the author sends here, for error messages."""
        return f"m={self.kind} 0 (port 0)" if self.rejected else f"a={self.direction}"

    @property
    def main_codec(self) -> CodecInfo | None:
        """First media (non-RTX/RED/FEC) codec: the one a sender uses."""
        return next((c for c in self.codecs if not c.is_auxiliary), None)

    def rtx_payload_type(self, media_pt: int) -> int | None:
        """The RTX payload type whose ``apt`` is ``media_pt`` (the first one), or None."""
        return next((rtx for rtx, apt in rtx_payload_types(self.codecs).items() if apt == media_pt), None)

    def rtx_ssrc(self, media_ssrc: int) -> int | None:
        """The RTX SSRC paired with ``media_ssrc`` by ``a=ssrc-group:FID``, or None."""
        return next((rtx for media, rtx in self.rtx_pairs if media == media_ssrc), None)


def rtx_payload_types(codecs: tuple[CodecInfo, ...] | list[CodecInfo]) -> dict[int, int]:
    """``{rtx payload type: apt}`` for the RTX codecs among ``codecs`` whose ``apt`` names one of
    the other codecs (RFC 4588 section 8.6: ``a=fmtp:<rtx pt> apt=<media pt>``)."""
    pts = {c.payload_type for c in codecs if not c.is_rtx}
    out: dict[int, int] = {}
    for c in codecs:
        apt = c.parameters.get("apt") if c.is_rtx else None
        if isinstance(apt, int) and apt in pts:
            out[c.payload_type] = apt
        elif isinstance(apt, str) and apt.isdigit() and int(apt) in pts:
            out[c.payload_type] = int(apt)
    return out


def rtx_negotiated(answer: MediaSection) -> bool:
    """Whether an answer to a publisher's offer (the server's m-line, as :func:`parse_media` reads
    it) lets the publisher repair its stream with RTX: its media codec has generic NACK
    (``a=rtcp-fb:<pt> nack``) and an ``a=rtpmap:<rtx pt> rtx/<clock>`` with ``a=fmtp:<rtx pt>
    apt=<media pt>`` is answered. The SSRC pairing (``a=ssrc-group:FID``) belongs to the sender's
    description, the offer: a recvonly answer carries no SSRCs (for rid simulcast, the
    repaired-rtp-stream-id extension names the layer instead)."""
    codec = answer.main_codec
    return codec is not None and codec.nack and answer.rtx_payload_type(codec.payload_type) is not None


def _codec(c: Any) -> CodecInfo:
    return CodecInfo(
        mime_type=str(c.mimeType),
        payload_type=int(c.payloadType),
        clock_rate=int(c.clockRate),
        channels=c.channels,
        parameters=dict(c.parameters),
        feedback=tuple(f"{f.type} {f.parameter}" if f.parameter else str(f.type) for f in c.rtcpFeedback),
    )


def count_media_sections(text: str) -> int:
    """How many m-lines (of any kind) an SDP text has, without parsing it."""
    return text.count("\nm=") + text.startswith("m=")


def check_limits(text: str, max_sections: int) -> int:
    """Check an SDP text's size before anything parses it; returns its number of m-lines.

    Every m-line costs the parse (here and in aiortc) and the transceiver aiortc makes for it, and
    a few line kinds cost more than linearly (see MAX_*_PER_SECTION), so the text is only scanned:
    :class:`TooManySectionsError` over ``max_sections`` m-lines, :class:`SdpTooLargeError` for an
    m-line over the per-m-line bounds.
    """
    sections = count_media_sections(text)
    if sections > max_sections:
        raise TooManySectionsError(f"the description has {sections} m-lines; at most {max_sections} are accepted")
    lines = codecs = ssrcs = 0
    index = -1
    for line in text.split("\n"):
        if line.startswith("m="):
            index += 1
            lines = codecs = ssrcs = 0
            continue
        lines += 1
        if line.startswith("a=rtpmap:"):
            codecs += 1
        elif line.startswith("a=ssrc:"):
            ssrcs += 1
        if index >= 0 and (lines > MAX_LINES_PER_SECTION or codecs > MAX_CODECS_PER_SECTION
                           or ssrcs > MAX_SSRC_LINES_PER_SECTION):
            raise SdpTooLargeError(
                f"m-line {index} is too long (at most {MAX_LINES_PER_SECTION} lines, "
                f"{MAX_CODECS_PER_SECTION} codecs and {MAX_SSRC_LINES_PER_SECTION} a=ssrc lines)"
            )
    return sections


# ---- line checks before aiortc parses (issue 21) ---------------------------------------------------
QUOTED_CHARS = 64  # of an offending line quoted in an error (it goes back to the client and the log)
_ADDRESS = re.compile(r"^IN (IP4|IP6) ([^ ]+)$")  # aiortc's ipaddress_from_sdp
_MLINE = re.compile(r"^m=([^ ]+) ([0-9]+) ([A-Z/]+) (.+)$")  # aiortc's m= pattern
# RFC 5761 section 4: payload types 72-76 would collide with RTCP packet types (aiortc asserts it)
RTCP_COLLIDING_PTS = range(72, 77)
SETUP_VALUES = frozenset({"actpass", "active", "passive"})  # RFC 5763; aiortc: KeyError otherwise
# fmtp parameters aiortc reads with int() (aiortc.sdp.FMTP_INT_PARAMETERS)
FMTP_INT_PARAMETERS = frozenset({"apt", "max-fr", "max-fs", "maxplaybackrate", "minptime", "stereo",
                                 "useinbandfec"})


def _quote(text: str, limit: int = QUOTED_CHARS) -> str:
    """A client's text for an error message: printable and bounded."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + "..." if len(text) > limit else shown


def _where(index: int, mid: str | None) -> str:
    return f"m-line {index} (a=mid:{_quote(mid, 32)})" if mid else f"m-line {index}"


def _number(text: str, high: int, low: int = 0) -> int | None:
    """A decimal number in ``low..high`` (plain ASCII digits, as every browser writes them), else None."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if low <= value <= high else None


def candidate_problem(value: str) -> str | None:
    """Why an ICE candidate attribute value (``<foundation> <component> <transport> <priority>
    <address> <port> typ <type> ...``, RFC 8839 section 5.1) cannot be used, or None."""
    bits = value.split()
    if len(bits) < 8 or bits[6] != "typ":
        return "not <foundation> <component> <transport> <priority> <address> <port> typ <type>"
    if _number(bits[1], 256, 1) is None:
        return "the component is not a number 1..256"
    if _number(bits[3], 0xFFFFFFFF) is None:
        return "the priority is not a 32-bit number"
    if _number(bits[5], 65535) is None:
        return "the port is not a number 0..65535"
    for i in range(8, len(bits) - 1, 2):
        if bits[i] == "rport" and _number(bits[i + 1], 65535) is None:
            return "rport is not a number 0..65535"
    return None


def check_candidate(text: str) -> None:
    """Refuse a trickled candidate (``candidate:...`` of an RTCIceCandidateInit) that aiortc's
    parser would refuse or misread, naming what is wrong; raises :class:`InvalidCandidateError`."""
    value = text[len("candidate:"):] if text.startswith("candidate:") else text
    problem = candidate_problem(value)
    if problem is not None:
        raise InvalidCandidateError(f"{_quote(text)}: {problem}")


def _session_problem(attr: str, value: str | None) -> str | None:
    if attr == "fingerprint":
        return None if value is not None and len(value.split()) == 2 else "not a=fingerprint:<hash> <value>"
    if attr in ("group", "msid-semantic"):
        return None if value is not None else f"a={attr} has no value"
    if attr == "setup":
        return None if value in SETUP_VALUES else "not actpass, active or passive"
    return None


def _extmap(value: str | None, kind: str, pts: set[int]) -> str | None:
    bits = value.split() if value is not None else []
    if len(bits) != 2 or bits[0].count("/") > 1:
        return "not a=extmap:<id>[/<direction>] <uri> (extension attributes are not supported)"
    if _number(bits[0].split("/")[0], 255, 1) is None:
        return "a header extension id is not 1..255"  # RFC 8285 section 5
    return None


def _rtpmap(value: str | None, kind: str, pts: set[int]) -> str | None:
    pt, _, desc = (value or "").partition(" ")
    if not desc:
        return "not a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]"
    if _number(pt, 127) is None:
        return "a payload type is not 0..127"  # RFC 3550: 7 bits
    bits = desc.split("/")
    if len(bits) < 2 or not bits[0] or _number(bits[1], 0xFFFFFFFF, 1) is None:
        return "not <encoding>/<clock rate>: the clock rate is not a number"
    if kind == "audio" and len(bits) > 2 and _number(bits[2], 255, 1) is None:
        return "the channel count is not a number 1..255"
    return None


def _fmtp(value: str | None, kind: str, pts: set[int]) -> str | None:
    pt, _, params = (value or "").partition(" ")
    if not params:
        return "not a=fmtp:<payload type> <parameters>"
    number = _number(pt, 127)
    if number is None or number not in pts:
        return "no a=rtpmap in this m-line has this payload type"
    for param in params.split(";"):
        key, eq, v = param.partition("=")
        if eq and key in FMTP_INT_PARAMETERS and _number(v, 0xFFFFFFFF) is None:
            return f"{_quote(key, 16)} is not a number"
    return None


def _rtcp_fb(value: str | None, kind: str, pts: set[int]) -> str | None:
    bits = (value or "").split(" ", 2)
    return None if len(bits) >= 2 and bits[0] else "not a=rtcp-fb:<payload type> <feedback>"


def _ssrc(value: str | None, kind: str, pts: set[int]) -> str | None:
    ssrc, _, desc = (value or "").partition(" ")
    if _number(ssrc, 0xFFFFFFFF) is None:
        return "an SSRC is not a 32-bit number"  # RFC 3550
    return None if ":" in desc else "not a=ssrc:<ssrc> <attribute>:<value>"


def _ssrc_group(value: str | None, kind: str, pts: set[int]) -> str | None:
    bits = (value or "").split()
    if not bits:
        return "not a=ssrc-group:<semantics> <ssrc> ..."
    return None if all(_number(b, 0xFFFFFFFF) is not None for b in bits[1:]) else "an SSRC is not a 32-bit number"


def _rtcp(value: str | None, kind: str, pts: set[int]) -> str | None:
    port, _, address = (value or "").partition(" ")
    if _number(port, 65535) is None:
        return "the port is not a number 0..65535"
    return None if not address or _ADDRESS.match(address) else "the address is not IN IP4|IP6 <address>"


def _number_attr(high: int) -> Callable[[str | None, str, set[int]], str | None]:
    def check(value: str | None, kind: str, pts: set[int]) -> str | None:
        return None if value is not None and _number(value, high) is not None else f"not a number 0..{high}"
    return check


def _sctpmap(value: str | None, kind: str, pts: set[int]) -> str | None:
    number, _, desc = (value or "").partition(" ")
    return None if desc and _number(number, 65535) is not None else "not a=sctpmap:<number> <app>"


def _candidate(value: str | None, kind: str, pts: set[int]) -> str | None:
    return candidate_problem(value) if value is not None else "a=candidate has no value"


def _fingerprint(value: str | None, kind: str, pts: set[int]) -> str | None:
    return _session_problem("fingerprint", value)


def _setup(value: str | None, kind: str, pts: set[int]) -> str | None:
    return _session_problem("setup", value)


# the m-section attributes aiortc parses in a way that can raise, and what each must look like
_MEDIA_ATTRIBUTES: dict[str, Callable[[str | None, str, set[int]], str | None]] = {
    "candidate": _candidate,
    "extmap": _extmap,
    "fingerprint": _fingerprint,
    "fmtp": _fmtp,
    "max-message-size": _number_attr(0xFFFFFFFF),
    "rtcp": _rtcp,
    "rtcp-fb": _rtcp_fb,
    "rtpmap": _rtpmap,
    "sctp-port": _number_attr(65535),
    "sctpmap": _sctpmap,
    "setup": _setup,
    "ssrc": _ssrc,
    "ssrc-group": _ssrc_group,
}


def _attribute(line: str) -> tuple[str, str | None]:
    """``a=<attr>[:<value>]`` split as aiortc's ``parse_attr`` splits it."""
    attr, colon, value = line[2:].partition(":")
    return attr, (value if colon else None)


def _mline_problem(line: str) -> str | None:
    m = _MLINE.match(line)
    if m is None:
        return "not m=<media> <port> <proto> <fmt> ..."
    if _number(m.group(2), 65535) is None:
        return "the port is not a number 0..65535"
    if m.group(1) in ("audio", "video"):
        for fmt in m.group(4).split():
            pt = _number(fmt, 127)
            if pt is None or pt in RTCP_COLLIDING_PTS:
                return f"payload type {_quote(fmt, 16)} is not 0..127 (72..76 excluded, RFC 5761)"
    return None


def _section_problem(lines: list[str]) -> tuple[str, str] | None:
    """The first malformed line of one m-section and why."""
    problem = _mline_problem(lines[0])
    if problem is not None:
        return lines[0], problem
    kind = lines[0][2:].split(" ", 1)[0]
    pts: set[int] = set()
    for line in lines[1:]:
        if line.startswith("a=rtpmap:"):
            pt = _number(line[9:].partition(" ")[0], 127)
            if pt is not None:
                pts.add(pt)
    for line in lines[1:]:
        if line.startswith("c="):
            if not _ADDRESS.match(line[2:]):
                return line, "not c=IN IP4|IP6 <address>"
        elif line.startswith("a="):
            attr, value = _attribute(line)
            check = _MEDIA_ATTRIBUTES.get(attr)
            problem = check(value, kind, pts) if check is not None else None
            if problem is not None:
                return line, problem
    return None


def check_lines(text: str) -> None:
    """Refuse an SDP text with a line aiortc's parser would refuse or misread, naming the line:
    ``m-line N (a=mid:X): <line>: <why>`` (``session level: ...`` above the first m-line).

    Lines are split as aiortc splits them (``str.splitlines``), so the m-line numbers are aiortc's.
    Run after :func:`check_limits` (the text is bounded) and before aiortc parses.
    """
    session: list[str] = []
    sections: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    for line in session:
        problem = None
        if line.startswith("v="):
            problem = None if line.strip()[2:].isdigit() else "not v=<version>"
        elif line.startswith("c="):
            problem = None if _ADDRESS.match(line[2:]) else "not c=IN IP4|IP6 <address>"
        elif line.startswith("a="):
            problem = _session_problem(*_attribute(line))
        if problem is not None:
            raise InvalidSdpError(f"session level: {_quote(line)}: {problem}")
    for index, lines in enumerate(sections):
        found = _section_problem(lines)
        if found is not None:
            mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
            raise InvalidSdpError(f"{_where(index, mid)}: {_quote(found[0])}: {found[1]}")


def _check_numbers(where: str, m: Any, ssrcs: tuple[int, ...]) -> None:
    """aiortc reads these with int() and no range check; out of range they would reach
    ``struct.pack`` / a header byte on the packet path (found by tests/sfu/test_fuzz_parsers.py:
    ``a=ssrc:-1``, ``a=rtpmap:300``, ``a=extmap:99999``). RFC 3550: 32-bit SSRC, 7-bit PT;
    RFC 8285: extension ids 1..255 (1..14 in the one-byte form). :func:`check_lines` refuses these
    lines first; this is the last guard on what aiortc parsed."""
    bad_ssrc = next((s for s in ssrcs if not 0 <= s <= 0xFFFFFFFF), None)
    if bad_ssrc is not None:
        raise InvalidSdpError(f"{where}: a=ssrc:{bad_ssrc}: an SSRC is not a 32-bit number")
    bad_pt = next((c for c in m.rtp.codecs if not 0 <= int(c.payloadType) <= 127), None)
    if bad_pt is not None:
        raise InvalidSdpError(f"{where}: a=rtpmap:{int(bad_pt.payloadType)}: a payload type is not 0..127")
    bad_ext = next((h for h in m.rtp.headerExtensions if not 0 < int(h.id) <= 255), None)
    if bad_ext is not None:
        raise InvalidSdpError(f"{where}: a=extmap:{int(bad_ext.id)}: a header extension id is not 1..255")


def parse_media(text: str) -> list[MediaSection]:
    """The audio/video m-lines of an SDP text; raises :class:`InvalidSdpError`."""
    if not isinstance(text, str) or not text.lstrip().startswith("v=0"):
        raise InvalidSdpError("SDP must start with v=0")
    check_lines(text)
    try:
        desc = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, KeyError, AssertionError, ...
        # aiortc's text names its internals (a failed assert, a regex): only in the detail
        raise InvalidSdpError("cannot parse SDP", detail=f"{type(exc).__name__}: {exc}") from exc
    try:
        return _media_sections(desc, text)
    except InvalidSdpError:
        raise
    except Exception as exc:  # a malformed value aiortc let through (int(), a=rid/a=simulcast)
        raise InvalidSdpError("cannot parse SDP", detail=f"{type(exc).__name__}: {exc}") from exc


def _bundle_only(text: str) -> list[bool]:
    """Per m-section (in order), whether it has ``a=bundle-only`` (aiortc's parser drops it)."""
    out: list[bool] = []
    for line in text.split("\n"):
        if line.startswith("m="):
            out.append(False)
        elif out and line.rstrip("\r") == "a=bundle-only":
            out[-1] = True
    return out


def _media_sections(desc: Any, text: str) -> list[MediaSection]:
    rids_per_section = offered_rids(text)
    bundle_only = _bundle_only(text)
    bundled = {str(mid) for g in desc.group if g.semantic == "BUNDLE" for mid in g.items}
    out: list[MediaSection] = []
    for index, m in enumerate(desc.media):
        if m.kind not in ("audio", "video"):
            continue
        mid = m.rtp.muxId
        if not mid:
            raise InvalidSdpError(f"m-line {index}: m={_quote(str(m.kind), 16)}: the m-line has no a=mid")
        rtx: set[int] = set()
        pairs: list[tuple[int, int]] = []
        sim: tuple[int, ...] = ()
        for group in m.ssrc_group:
            if group.semantic == "FID" and len(group.items) >= 2:
                rtx.update(int(x) for x in group.items[1:])
                pairs.append((int(group.items[0]), int(group.items[1])))
            elif group.semantic == "SIM" and len(group.items) >= 2:
                sim = tuple(int(x) for x in group.items)
        ssrcs = list(dict.fromkeys(int(s.ssrc) for s in m.ssrc if s.ssrc not in rtx))
        _check_numbers(_where(index, str(mid)), m, (*ssrcs, *rtx, *sim))
        # port 0 rejects an m-line (RFC 3264 section 8.2), except in an offer's bundle-only m-line,
        # which shares the BUNDLE transport of the group's first one (RFC 8843 section 7.5.3)
        rejected = m.port == 0 and not (index < len(bundle_only) and bundle_only[index] and mid in bundled)
        out.append(
            MediaSection(
                mid=str(mid),
                kind=str(m.kind),
                direction="inactive" if rejected else str(m.direction or "sendrecv"),
                index=index,
                codecs=tuple(_codec(c) for c in m.rtp.codecs),
                extensions={str(h.uri): int(h.id) for h in m.rtp.headerExtensions},
                ssrcs=tuple(ssrcs),
                rtx_ssrcs=tuple(sorted(rtx)),
                msid=m.msid,
                rids=rids_per_section[index] if index < len(rids_per_section) else (),
                simulcast_ssrcs=sim,
                rejected=rejected,
                rtx_pairs=tuple(pairs),
            )
        )
    return out


def strip_candidates(text: str) -> str:
    """SDP text without ``a=candidate`` / ``a=end-of-candidates`` lines (used by tests)."""
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    return "\r\n".join(lines) + "\r\n"


def candidates(text: str) -> list[dict[str, Any]]:
    """The ``a=candidate`` lines of an SDP as RTCIceCandidateInit dicts (used by tests)."""
    out: list[dict[str, Any]] = []
    mid: str | None = None
    index = -1
    for line in text.splitlines():
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            out.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": index})
    return out

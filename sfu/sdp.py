"""What the forwarding core reads from SDP: m-lines, codecs, header extensions, SSRCs.

aiortc's own SDP module does the text parsing; this module turns its objects into small frozen
dataclasses (the public :class:`MediaSection`) so nothing outside ``sfu/`` touches aiortc types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc import sdp as aiortc_sdp

from .errors import InvalidSdpError, SdpTooLargeError, TooManySectionsError
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

    @property
    def is_auxiliary(self) -> bool:
        """RTX, RED or FEC: not a media codec the core forwards."""
        return self.mime_type.split("/")[-1].lower() in AUXILIARY_CODECS


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

    @property
    def simulcast(self) -> bool:
        """Whether the author sends several simulcast layers on this m-line."""
        return len(self.rids) > 1 or len(self.simulcast_ssrcs) > 1

    @property
    def sending(self) -> bool:
        """Whether the author of the description sends media on this m-line."""
        return self.direction in SENDING_DIRECTIONS

    @property
    def direction_line(self) -> str:
        """The SDP line that decides whether the author sends here, for error messages."""
        return f"m={self.kind} 0 (port 0)" if self.rejected else f"a={self.direction}"

    @property
    def main_codec(self) -> CodecInfo | None:
        """First media (non-RTX/RED/FEC) codec: the one a sender uses."""
        return next((c for c in self.codecs if not c.is_auxiliary), None)


def _codec(c: Any) -> CodecInfo:
    return CodecInfo(
        mime_type=str(c.mimeType),
        payload_type=int(c.payloadType),
        clock_rate=int(c.clockRate),
        channels=c.channels,
        parameters=dict(c.parameters),
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


def _check_numbers(where: str, m: Any, ssrcs: tuple[int, ...]) -> None:
    """aiortc reads these with int() and no range check; out of range they would reach
    ``struct.pack`` / a header byte on the packet path (found by tests/sfu/test_fuzz_parsers.py:
    ``a=ssrc:-1``, ``a=rtpmap:300``, ``a=extmap:99999``). RFC 3550: 32-bit SSRC, 7-bit PT;
    RFC 8285: extension ids 1..255 (1..14 in the one-byte form). The message names the line."""
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
            raise InvalidSdpError(f"m-line {index} (m={m.kind}) has no a=mid")
        rtx: set[int] = set()
        sim: tuple[int, ...] = ()
        for group in m.ssrc_group:
            if group.semantic == "FID" and len(group.items) >= 2:
                rtx.update(int(x) for x in group.items[1:])
            elif group.semantic == "SIM" and len(group.items) >= 2:
                sim = tuple(int(x) for x in group.items)
        ssrcs = list(dict.fromkeys(int(s.ssrc) for s in m.ssrc if s.ssrc not in rtx))
        _check_numbers(f"m-line {index} (a=mid:{str(mid)[:32]})", m, (*ssrcs, *rtx, *sim))
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

"""Simulcast: SDP handling for ``a=rid`` / ``a=simulcast`` and the per-layer receive state.

aiortc ignores ``a=rid`` / ``a=simulcast`` in an offer (it parses the offer fine) and writes
neither them nor the rid header extensions into its answer. :func:`munge_answer` adds, to each
answered m-line whose offer announced send rids: the ``rtp-stream-id`` / ``repaired-rtp-stream-id``
extmaps with the offer's ids, ``a=rid:<id> recv`` per rid and ``a=simulcast:recv <same list>``.

Layer order (index 0 = lowest): the order of the rids in the offer's ``a=simulcast:send`` line,
which is the order of the sender's ``sendEncodings``. By convention (mediasoup, LiveKit, the
WebRTC samples and our browser client) encodings are listed from the lowest resolution/bitrate to
the highest, e.g. ``q;h;f``; a client that lists them otherwise gets its layers in its own order.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .packet_history import PacketHistory
from .reception import ReceptionStats
from .rtp import EXT_RID, EXT_RRID

if TYPE_CHECKING:
    from .consumer import Consumer
    from .fast_path import FanOut

QUALITIES = {"low": 0, "medium": 1, "high": 2}
HIGHEST = 1 << 30  # preferred layer "as high as there is"

_RID_SEND = re.compile(r"^a=rid:([A-Za-z0-9_-]+) send\b")
_SIMULCAST_SEND = re.compile(r"^a=simulcast:send (\S+)")


def layer_index(preferred: int | str) -> int:
    """A layer index from ``"low" | "medium" | "high"`` or an int (clamped to what exists later)."""
    if isinstance(preferred, str):
        try:
            return QUALITIES[preferred.lower()]
        except KeyError:
            raise ValueError(f"unknown quality {preferred!r} (low, medium or high)") from None
    if isinstance(preferred, bool) or not isinstance(preferred, int) or preferred < 0:
        raise ValueError(f"layer index must be a non-negative int, not {preferred!r}")
    return preferred


def _sections(lines: list[str]) -> list[tuple[int, int]]:
    """``(start, end)`` line ranges of each m-section (start is the m= line)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    return [(s, starts[k + 1] if k + 1 < len(starts) else len(lines)) for k, s in enumerate(starts)]


def offered_rids(text: str) -> list[tuple[str, ...]]:
    """Per m-section (in order), the send rids of an offer, lowest layer first; ``()`` if none.

    Uses the ``a=simulcast:send`` list (paused ``~rid`` included, first of alternatives) when
    present, restricted to rids that also have an ``a=rid:<id> send`` line.
    """
    lines = text.splitlines()
    out: list[tuple[str, ...]] = []
    for start, end in _sections(lines):
        declared: list[str] = []
        order: list[str] = []
        for line in lines[start:end]:
            m = _RID_SEND.match(line)
            if m:
                declared.append(m.group(1))
                continue
            m = _SIMULCAST_SEND.match(line)
            if m:
                for alternatives in m.group(1).split(";"):
                    rid = alternatives.split(",")[0].lstrip("~")
                    if rid and rid not in order:
                        order.append(rid)
        rids = tuple(r for r in order if r in declared) if order else tuple(dict.fromkeys(declared))
        out.append(rids if len(rids) > 1 else ())
    return out


def munge_answer(answer: str, offer: str) -> str:
    """Add rid extmaps, ``a=rid:* recv`` and ``a=simulcast:recv`` to aiortc's answer text.

    m-sections are matched by position (an answer has the offer's m-lines in order); rejected
    m-lines (port 0) and m-lines without simulcast in the offer are left as they are.
    """
    offer_lines = offer.splitlines()
    offer_sections = _sections(offer_lines)
    rids_per_section = offered_rids(offer)
    lines = answer.splitlines()
    sections = _sections(lines)
    if not any(rids_per_section):
        return answer
    out: list[str] = lines[: sections[0][0]] if sections else list(lines)
    for k, (start, end) in enumerate(sections):
        section = lines[start:end]
        rids = rids_per_section[k] if k < len(rids_per_section) else ()
        if not rids or section[0].split()[1] == "0" or any(x.startswith("a=simulcast:") for x in section):
            out.extend(section)
            continue
        o_start, o_end = offer_sections[k]
        offer_ext: dict[str, int] = {}
        for line in offer_lines[o_start:o_end]:
            if line.startswith("a=extmap:"):
                ident, _, uri = line[9:].partition(" ")
                offer_ext[uri.split()[0] if uri else ""] = int(ident.split("/")[0])
        used = {int(line[9:].split()[0].split("/")[0]) for line in section if line.startswith("a=extmap:")}
        answered = {line.split()[1] for line in section if line.startswith("a=extmap:")}
        extra: list[str] = []
        for uri in (EXT_RID, EXT_RRID):
            ext_id = offer_ext.get(uri)
            if ext_id is not None and uri not in answered and ext_id not in used:
                extra.append(f"a=extmap:{ext_id} {uri}")
                used.add(ext_id)
        extra += [f"a=rid:{rid} recv" for rid in rids]
        extra.append("a=simulcast:recv " + ";".join(rids))
        # after the last extmap (or after a=mid), before codecs/candidates
        anchor = max((i for i, line in enumerate(section) if line.startswith(("a=extmap:", "a=mid:"))), default=0)
        section = [*section[: anchor + 1], *extra, *section[anchor + 1 :]]
        out.extend(section)
    return "\r\n".join(out) + "\r\n"


class SimulcastLayer(ReceptionStats):
    """Receive state of one simulcast layer (one SSRC of a producer's m-line).

    ``index`` is the layer's position, 0 = lowest. ``consumers`` holds the consumers forwarding
    this layer or waiting for its keyframe to switch to it (the per-layer fan-out list); ``fan``
    the compiled fan-out of the consumers among them that forward it steadily (``sfu.fast_path``).
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_bytes_at",
        "_last_sr_at",
        "_max_seq",
        "_packets_at",
        "_prior_expected",
        "_prior_received",
        "_window_start",
        "active",
        "bitrate",
        "bytes",
        "consumers",
        "fan",
        "history",
        "index",
        "last_pli",
        "last_sr",
        "packets",
        "prev_ts",
        "rid",
        "ssrc",
    )

    def __init__(self, rid: str, index: int, history_size: int, history_age: float,
                 fan: FanOut | None = None) -> None:
        self.rid = rid
        self.fan = fan
        self.index = index
        self.ssrc: int | None = None
        self.history = PacketHistory(history_size, history_age)
        self.consumers: list[Consumer] = []
        self.packets = 0
        self.bytes = 0
        self.prev_ts = -1
        self.last_pli = -1e9
        self.last_sr: tuple[int, int] | None = None
        self._last_sr_at = 0.0
        self.bitrate = 0  # bit/s, smoothed over 1 s windows
        self.active = False  # received packets in the last window (True from the first packet)
        self._base_seq = -1
        self._max_seq = -1
        self._bad_seq = -1  # RFC 3550 A.1 (sfu.producer._jump_confirmed)
        self._prior_expected = 0
        self._prior_received = 0
        self._window_start = 0.0
        self._bytes_at = 0
        self._packets_at = 0

    def update_rate(self, now: float, window: float = 1.0) -> bool:
        """Close a measurement window when ``window`` s have passed; True when ``active`` changed."""
        if self.ssrc is None:
            return False
        if self._window_start == 0.0:
            self._window_start = now
            self._bytes_at, self._packets_at = self.bytes, self.packets
            return False
        elapsed = now - self._window_start
        if elapsed < window:
            return False
        rate = int((self.bytes - self._bytes_at) * 8 / elapsed)
        self.bitrate = rate if self.bitrate == 0 else (self.bitrate + rate) // 2
        was = self.active
        self.active = self.packets > self._packets_at
        self._window_start = now
        self._bytes_at, self._packets_at = self.bytes, self.packets
        return was != self.active

    def on_sender_report(self, ntp: int, rtp_ts: int, now: float) -> None:
        self.last_sr = (ntp, rtp_ts)
        self._last_sr_at = now

    def __repr__(self) -> str:
        return f"SimulcastLayer(rid={self.rid!r}, index={self.index}, ssrc={self.ssrc}, bitrate={self.bitrate})"

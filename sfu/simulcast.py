"""Simulcast: SDP handling for ``a=rid`` / ``a=simulcast``, and layer names.

The per-layer receive state is an :class:`~sfu.rtp_stream_recv.RtpStreamRecv` (one per layer), the
layer choice :func:`sfu.layer_selector.select_layer`.

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

from .rtp import EXT_RID, EXT_RRID

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

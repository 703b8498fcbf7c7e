"""A lesson's transcript: its caption lines, and their exports (WebVTT, SRT, plain text, JSON).

Times are seconds since the epoch on the server's clock (what the store keeps); an export is cut
to a range and written relative to an origin (the room's start for a transcript, a recording's
start for the subtitles REC joins to it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec


class ExportFormat(StrEnum):
    VTT = "vtt"
    SRT = "srt"
    TEXT = "txt"
    JSON = "json"


CONTENT_TYPES = {ExportFormat.VTT: "text/vtt", ExportFormat.SRT: "application/x-subrip",
                 ExportFormat.TEXT: "text/plain", ExportFormat.JSON: "application/json"}


@dataclass(frozen=True, slots=True)
class CaptionLine:
    """One final caption: what one speaker said in one phrase."""

    room_id: str
    participant_id: str
    name: str  # the speaker's display name when it was said
    start: float  # seconds since the epoch
    end: float
    text: str


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cue_text(text: str) -> str:
    # a blank line ends a cue and "-->" starts a timing line: neither may appear inside one
    return " ".join(text.split()).replace("-->", "->")


def _vtt_escape(text: str) -> str:
    return _cue_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timed(lines: Iterable[CaptionLine], origin: float) -> list[tuple[float, float, CaptionLine]]:
    out = []
    for line in lines:
        start = max(0.0, line.start - origin)
        end = max(start + 0.001, line.end - origin)  # a cue needs end > start
        out.append((start, end, line))
    return out


def to_vtt(lines: Iterable[CaptionLine], origin: float) -> str:
    """WebVTT with the speaker as a voice span (<v Name>), which players show as the speaker."""
    parts = ["WEBVTT", ""]
    for i, (start, end, line) in enumerate(_timed(lines, origin), 1):
        name = _vtt_escape(line.name or line.participant_id)
        parts += [str(i), f"{_clock(start, '.')} --> {_clock(end, '.')}", f"<v {name}>{_vtt_escape(line.text)}", ""]
    return "\n".join(parts)


def to_srt(lines: Iterable[CaptionLine], origin: float) -> str:
    parts = []
    for i, (start, end, line) in enumerate(_timed(lines, origin), 1):
        name = _cue_text(line.name or line.participant_id)
        parts += [str(i), f"{_clock(start, ',')} --> {_clock(end, ',')}", f"{name}: {_cue_text(line.text)}", ""]
    return "\n".join(parts)


def to_text(lines: Iterable[CaptionLine], origin: float) -> str:
    """One line per caption: [mm:ss] Name: text."""
    out = []
    for start, _, line in _timed(lines, origin):
        m, s = divmod(int(start), 60)
        out.append(f"[{m:02d}:{s:02d}] {_cue_text(line.name or line.participant_id)}: {_cue_text(line.text)}")
    return "\n".join(out) + ("\n" if out else "")


def to_json(lines: Iterable[CaptionLine], origin: float) -> dict[str, Any]:
    return {"origin": origin, "lines": [
        {"participant_id": line.participant_id, "name": line.name, "start": round(start, 3), "end": round(end, 3),
         "start_at": line.start, "end_at": line.end, "text": line.text}
        for start, end, line in _timed(lines, origin)]}


def export(lines: Iterable[CaptionLine], origin: float, fmt: ExportFormat) -> str:
    if fmt is ExportFormat.VTT:
        return to_vtt(lines, origin)
    if fmt is ExportFormat.SRT:
        return to_srt(lines, origin)
    if fmt is ExportFormat.TEXT:
        return to_text(lines, origin)
    return msgspec.json.encode(to_json(lines, origin)).decode()

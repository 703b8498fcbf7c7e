"""Where transcripts live: the TranscriptStore interface and its in-memory twin (the SQL one is
sql_transcript_store.py).  Both pass one suite (tests/unit/transcription/test_transcript_store.py).

``captions_vtt(room_id, start, end)`` is what a recording joins as its subtitles (REC): the lines
that overlap [start, end) as WebVTT, timed from ``start``."""

from __future__ import annotations

from typing import Protocol

from transcription.transcript import CaptionLine, to_vtt


class TranscriptStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, line: CaptionLine) -> None:
        """Keep one final caption."""
        ...

    async def lines(self, room_id: str, start: float | None = None, end: float | None = None) -> list[CaptionLine]:
        """A room's lines that overlap [start, end) (seconds since the epoch; None: unbounded), by start."""
        ...

    async def delete_before(self, cutoff: float) -> int:
        """Forget the lines that ended before ``cutoff`` (retention); how many went."""
        ...


async def captions_vtt(store: TranscriptStore, room_id: str, start: float, end: float | None) -> str:
    """WebVTT of a room's captions from ``start`` to ``end`` (epoch seconds), cue times relative to
    ``start``: a recording that began at ``start`` shows them in step with its picture."""
    return to_vtt(await store.lines(room_id, start, end), start)


def overlaps(line: CaptionLine, start: float | None, end: float | None) -> bool:
    return (start is None or line.end > start) and (end is None or line.start < end)


class MemoryTranscriptStore:
    def __init__(self) -> None:
        self._lines: dict[str, list[CaptionLine]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, line: CaptionLine) -> None:
        self._lines.setdefault(line.room_id, []).append(line)

    async def lines(self, room_id: str, start: float | None = None, end: float | None = None) -> list[CaptionLine]:
        found = [x for x in self._lines.get(room_id, ()) if overlaps(x, start, end)]
        return sorted(found, key=lambda x: x.start)

    async def delete_before(self, cutoff: float) -> int:
        gone = 0
        for room_id, lines in list(self._lines.items()):
            kept = [x for x in lines if x.end >= cutoff]
            gone += len(lines) - len(kept)
            if kept:
                self._lines[room_id] = kept
            else:
                del self._lines[room_id]
        return gone

"""Transcripts in SQLite or PostgreSQL (transcription/tables.py, revision r0007), on the room
store's engine (one pool; on SQLite one writer at a time, so each write is one short insert)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from transcription.tables import TEXT_MAX, transcript_lines
from transcription.transcript import CaptionLine

NAME_MAX = 200


def _line(row: Any) -> CaptionLine:
    return CaptionLine(room_id=row.room_id, participant_id=row.participant_id, name=row.name,
                       start=row.start_at, end=row.end_at, text=row.text)


class SqlTranscriptStore:
    """``engine``: the room store's (``SqlStore.engine``), asked for on each call since it exists only
    once that store is open."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def open(self) -> None:
        self._engine()  # fails now (not on the first caption) if the room store is not open

    async def close(self) -> None:
        return None  # the engine is the room store's

    async def add(self, line: CaptionLine) -> None:
        async with self._engine().begin() as conn:
            await conn.execute(sa.insert(transcript_lines), [{
                "room_id": line.room_id, "participant_id": line.participant_id, "name": line.name[:NAME_MAX],
                "start_at": line.start, "end_at": line.end, "text": line.text[:TEXT_MAX]}])

    async def lines(self, room_id: str, start: float | None = None, end: float | None = None) -> list[CaptionLine]:
        c = transcript_lines.c
        q = sa.select(transcript_lines).where(c.room_id == room_id)
        if start is not None:
            q = q.where(c.end_at > start)
        if end is not None:
            q = q.where(c.start_at < end)
        async with self._engine().connect() as conn:
            rows = (await conn.execute(q.order_by(c.start_at, c.line_id))).all()
        return [_line(r) for r in rows]

    async def delete_before(self, cutoff: float) -> int:
        async with self._engine().begin() as conn:
            done = await conn.execute(sa.delete(transcript_lines).where(transcript_lines.c.end_at < cutoff))
        return int(done.rowcount or 0)

"""Recordings in SQLite or PostgreSQL (recordings/tables.py, revision r0006), on the room store's engine
(one pool; every transaction here is one short statement or two)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from recordings.errors import RecordingNotFound
from recordings.recording import Recording, RecordingState, TrackInfo
from recordings.recording_store import RecordingQuery
from recordings.tables import recordings as t


def _row(r: Recording) -> dict[str, Any]:
    return {"recording_id": r.recording_id, "room_id": r.room_id, "room_name": r.room_name,
            "external_id": r.external_id, "state": r.state.value, "started_at": r.started_at,
            "ended_at": r.ended_at, "started_by": r.started_by, "duration_s": r.duration_s,
            "size_bytes": r.size_bytes, "tracks": [x.to_json() for x in r.tracks], "composed": r.composed,
            "progress": r.progress, "error": r.error, "error_message": r.error_message, "chat": r.chat,
            "captions": r.captions, "group_id": r.group_id, "group_name": r.group_name}


def _recording(row: Any) -> Recording:
    return Recording(recording_id=row.recording_id, room_id=row.room_id, room_name=row.room_name,
                     external_id=row.external_id, state=RecordingState(row.state), started_at=row.started_at,
                     ended_at=row.ended_at, started_by=row.started_by, duration_s=row.duration_s,
                     size_bytes=row.size_bytes, tracks=tuple(TrackInfo(**x) for x in row.tracks),
                     composed=row.composed, progress=row.progress, error=row.error,
                     error_message=row.error_message, chat=row.chat, captions=row.captions,
                     group_id=row.group_id, group_name=row.group_name)


def _where(q: RecordingQuery) -> Any:
    cond: list[Any] = []
    if q.room_id is not None:
        cond.append(t.c.room_id == q.room_id)
    if q.external_id is not None:
        cond.append(t.c.external_id == q.external_id)
    if q.since is not None:
        cond.append(t.c.started_at >= q.since)
    if q.until is not None:
        cond.append(t.c.started_at < q.until)
    if q.state is not None:
        cond.append(t.c.state == q.state.value)
    return sa.and_(sa.true(), *cond)


class SqlRecordingStore:
    """``engine``: the room store's (``SqlStore.engine``), asked for on each call."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def open(self) -> None:
        self._engine()  # fails now if the room store is not open

    async def close(self) -> None:
        return None  # the engine is the room store's

    async def add(self, recording: Recording) -> None:
        async with self._engine().begin() as conn:
            await conn.execute(sa.insert(t).values(**_row(recording)))

    async def get(self, recording_id: str) -> Recording | None:
        async with self._engine().connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.recording_id == recording_id))).first()
        return None if row is None else _recording(row)

    async def save(self, recording: Recording) -> None:
        async with self._engine().begin() as conn:
            result = await conn.execute(sa.update(t).where(t.c.recording_id == recording.recording_id)
                                        .values(**_row(recording)))
        if result.rowcount == 0:
            raise RecordingNotFound(f"no recording {recording.recording_id!r}")

    async def delete(self, recording_id: str) -> bool:
        async with self._engine().begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.recording_id == recording_id))
        return bool(result.rowcount)

    async def find(self, query: RecordingQuery, *, offset: int, limit: int) -> tuple[list[Recording], int]:
        where = _where(query)
        async with self._engine().connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(t).where(where))).scalar_one()
            rows = (await conn.execute(sa.select(t).where(where)
                                       .order_by(t.c.started_at.desc(), t.c.recording_id)
                                       .offset(offset).limit(limit))).all()
        return [_recording(r) for r in rows], int(total)

    async def ended_before(self, at: float, *, limit: int) -> list[Recording]:
        async with self._engine().connect() as conn:
            rows = (await conn.execute(sa.select(t).where(t.c.ended_at.is_not(None), t.c.ended_at < at)
                                       .order_by(t.c.ended_at, t.c.recording_id).limit(limit))).all()
        return [_recording(r) for r in rows]

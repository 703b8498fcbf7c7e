"""BigBlueButton meetings: what a BigBlueButton client created a urok room with (its meetingID,
passwords, name, limits, guest policy and meta_* metadata), kept so that join, getMeetingInfo and
end find the room again, also after a restart.

One meetingID names one meeting at a time: ``create`` again while its room is open returns the same
meeting (BigBlueButton's duplicateWarning); once the room has ended, a ``create`` makes a new meeting
(a new room, internal id and createTime) under the same meetingID, as an LMS does for each lesson of
a course.  ``ended_at`` is set when urok learns the room has ended (the end call, or a read that
finds it ended), so getMeetings lists only open meetings without asking every room.

Two implementations behind one Protocol, passing one suite (tests/unit/bbb/test_meeting_store.py):
in memory (``store = "memory"``), and SQL on the durable store's engine (one pool; each write is one
short transaction, so SQLite's single writer is held only for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from signaling.store import schema as t


@dataclass(frozen=True, slots=True)
class BbbMeeting:
    meeting_id: str  # the client's meetingID
    internal_id: str  # BigBlueButton's internalMeetingID: sha1(meetingID)-createTime
    room_id: str
    name: str
    attendee_pw: str
    moderator_pw: str
    create_time_ms: int  # createTime: the room's creation, milliseconds since the epoch
    duration_minutes: int = 0  # 0: no limit
    max_participants: int = 0  # as the client asked (0: no limit)
    guest_policy: str = "ALWAYS_ACCEPT"  # BigBlueButton's name (ALWAYS_ACCEPT, ALWAYS_DENY, ASK_MODERATOR)
    metadata: dict[str, str] = field(default_factory=dict)  # meta_* without the prefix, keys lowercased
    ended_at: float | None = None


class MeetingStore(Protocol):
    async def open(self) -> None: ...

    async def add(self, meeting: BbbMeeting) -> tuple[BbbMeeting, bool]:
        """Store a new meeting, or return the one already stored with its internal id (two creates
        of one meetingID at once reach one room, so one internal id).  Returns (meeting, added)."""
        ...

    async def latest(self, meeting_id: str) -> BbbMeeting | None:
        """The newest meeting with that meetingID (ended or not), or None."""
        ...

    async def open_meetings(self) -> list[BbbMeeting]:
        """Meetings not known to have ended, oldest first."""
        ...

    async def mark_ended(self, internal_id: str, at: float) -> None:
        """The meeting's room has ended (idempotent: the first time is kept)."""
        ...

    async def close(self) -> None: ...


class MemoryMeetingStore:
    def __init__(self) -> None:
        self._by_internal: dict[str, BbbMeeting] = {}
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        return None

    async def add(self, meeting: BbbMeeting) -> tuple[BbbMeeting, bool]:
        async with self._lock:
            existing = self._by_internal.get(meeting.internal_id)
            if existing is not None:
                return existing, False
            self._by_internal[meeting.internal_id] = meeting
            return meeting, True

    async def latest(self, meeting_id: str) -> BbbMeeting | None:
        found = [m for m in self._by_internal.values() if m.meeting_id == meeting_id]
        return max(found, key=lambda m: (m.create_time_ms, m.internal_id), default=None)

    async def open_meetings(self) -> list[BbbMeeting]:
        found = [m for m in self._by_internal.values() if m.ended_at is None]
        return sorted(found, key=lambda m: (m.create_time_ms, m.internal_id))

    async def mark_ended(self, internal_id: str, at: float) -> None:
        m = self._by_internal.get(internal_id)
        if m is not None and m.ended_at is None:
            self._by_internal[internal_id] = replace(m, ended_at=at)

    async def close(self) -> None:
        self._by_internal.clear()


def _row(m: BbbMeeting) -> dict[str, Any]:
    return {"internal_id": m.internal_id, "meeting_id": m.meeting_id, "room_id": m.room_id, "name": m.name,
            "attendee_pw": m.attendee_pw, "moderator_pw": m.moderator_pw, "create_time_ms": m.create_time_ms,
            "duration_minutes": m.duration_minutes, "max_participants": m.max_participants,
            "guest_policy": m.guest_policy, "meta": dict(m.metadata), "ended_at": m.ended_at}


def _meeting(row: Any) -> BbbMeeting:
    return BbbMeeting(meeting_id=row.meeting_id, internal_id=row.internal_id, room_id=row.room_id, name=row.name,
                      attendee_pw=row.attendee_pw, moderator_pw=row.moderator_pw,
                      create_time_ms=int(row.create_time_ms), duration_minutes=row.duration_minutes,
                      max_participants=row.max_participants, guest_policy=row.guest_policy,
                      metadata={str(k): str(v) for k, v in (row.meta or {}).items()}, ended_at=row.ended_at)


class SqlMeetingStore:
    """The ``bbb_meetings`` table, on the engine of the store that holds the rooms (its rows go
    with their room: ON DELETE CASCADE, so the rooms' retention removes old meetings too)."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._get_engine = engine  # the room store's, once it is open (SqlStore.engine)
        self._table = t.bbb_meetings

    @property
    def _engine(self) -> AsyncEngine:
        return self._get_engine()

    async def open(self) -> None:
        return None  # the room store's open() migrated the schema

    async def add(self, meeting: BbbMeeting) -> tuple[BbbMeeting, bool]:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(self._table.insert().values(**_row(meeting)))
            return meeting, True
        except IntegrityError:
            async with self._engine.connect() as conn:
                row = (await conn.execute(
                    self._table.select().where(self._table.c.internal_id == meeting.internal_id))).first()
            if row is None:
                raise  # not a duplicate internal id (the room is gone?): let the caller see it
            return _meeting(row), False

    async def latest(self, meeting_id: str) -> BbbMeeting | None:
        c = self._table.c
        query = (self._table.select().where(c.meeting_id == meeting_id)
                 .order_by(c.create_time_ms.desc(), c.internal_id.desc()).limit(1))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _meeting(row)

    async def open_meetings(self) -> list[BbbMeeting]:
        c = self._table.c
        query = self._table.select().where(c.ended_at.is_(None)).order_by(c.create_time_ms, c.internal_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_meeting(r) for r in rows]

    async def mark_ended(self, internal_id: str, at: float) -> None:
        c = self._table.c
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(self._table).where(c.internal_id == internal_id, c.ended_at.is_(None))
                               .values(ended_at=at))

    async def close(self) -> None:
        return None  # the engine is the room store's: it disposes of it

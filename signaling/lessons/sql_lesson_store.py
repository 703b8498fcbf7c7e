"""Lessons in SQLite or PostgreSQL (tables in signaling/store/schema.py, revision r0002), on the room
store's engine: one pool, and on SQLite one writer at a time, so every transaction here is short
(a lesson and its roster in one; nothing waits for the network inside it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from signaling.lessons.errors import LessonNotFound
from signaling.lessons.lesson import ClassRef, Lesson, LessonState, Person, PersonKind, Roster
from signaling.lessons.lesson_store import LessonQuery, OccurrenceRecord
from signaling.lessons.timetable import Timetable, recurrence_from_json
from signaling.store import schema as t


def _lesson_row(x: Lesson) -> dict[str, Any]:
    tt = x.timetable
    return {"lesson_id": x.lesson_id, "external_id": x.external_id, "name": x.name, "subject": x.subject,
            "class_id": x.class_ref.class_id, "class_name": x.class_ref.name, "starts_at": tt.starts_at,
            "duration_minutes": tt.duration_minutes, "timezone": tt.timezone,
            "recurrence": tt.recurrence.to_json() if tt.recurrence else None, "first_starts_at": tt.first_starts_at,
            "last_ends_at": tt.last_ends_at, "wait_for_teacher": x.wait_for_teacher, "room_settings": dict(x.room),
            "state": x.state.value, "created_at": x.created_at, "updated_at": x.updated_at}


def _people_rows(x: Lesson) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind, people in ((PersonKind.TEACHER, x.roster.teachers), (PersonKind.STUDENT, x.roster.students)):
        for p in people:
            rows.append({"lesson_id": x.lesson_id, "identity": p.identity, "kind": kind.value, "position": len(rows),
                         "name": p.name, "family_name": p.family_name, "given_name": p.given_name,
                         "registered": p.registered})
    return rows


def _lesson(row: Any, people: Sequence[Any]) -> Lesson:
    teachers = tuple(Person(p.identity, p.family_name, p.given_name, p.name, p.registered) for p in people
                     if p.kind == PersonKind.TEACHER.value)
    students = tuple(Person(p.identity, p.family_name, p.given_name, p.name, p.registered) for p in people
                     if p.kind == PersonKind.STUDENT.value)
    tt = Timetable(starts_at=row.starts_at, duration_minutes=row.duration_minutes, timezone=row.timezone,
                   recurrence=recurrence_from_json(row.recurrence))
    return Lesson(lesson_id=row.lesson_id, external_id=row.external_id, name=row.name, subject=row.subject,
                  class_ref=ClassRef(row.class_id, row.class_name), roster=Roster(teachers, students), timetable=tt,
                  wait_for_teacher=row.wait_for_teacher, room=dict(row.room_settings), state=LessonState(row.state),
                  created_at=row.created_at, updated_at=row.updated_at)


def _occurrence(row: Any) -> OccurrenceRecord:
    return OccurrenceRecord(row.lesson_id, row.starts_at, row.room_id, Roster.from_record(row.roster), row.created_at)


class SqlLessonStore:
    """``engine``: the room store's (``SqlStore.engine``), asked for on each call since it exists only
    once that store is open."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def open(self) -> None:
        self._engine()  # fails now (not on the first request) if the room store is not open

    async def close(self) -> None:
        return None  # the engine is the room store's to dispose of

    async def _load(self, conn: AsyncConnection, where: Any, *, order: bool = False, offset: int = 0,
                    limit: int | None = None) -> list[Lesson]:
        q = sa.select(t.lessons).where(where)
        if order:
            q = q.order_by(t.lessons.c.first_starts_at, t.lessons.c.lesson_id).offset(offset).limit(limit)
        rows = (await conn.execute(q)).all()
        if not rows:
            return []
        ids = [r.lesson_id for r in rows]
        people = (await conn.execute(sa.select(t.lesson_people).where(t.lesson_people.c.lesson_id.in_(ids))
                                     .order_by(t.lesson_people.c.position))).all()
        by_lesson: dict[str, list[Any]] = {i: [] for i in ids}
        for p in people:
            by_lesson[p.lesson_id].append(p)
        return [_lesson(r, by_lesson[r.lesson_id]) for r in rows]

    async def create(self, lesson: Lesson) -> tuple[Lesson, bool]:
        try:
            async with self._engine().begin() as conn:
                await conn.execute(sa.insert(t.lessons), [_lesson_row(lesson)])
                await conn.execute(sa.insert(t.lesson_people), _people_rows(lesson))
            return lesson, True
        except IntegrityError:
            if lesson.external_id is None:
                raise
        async with self._engine().connect() as conn:  # the other create won: its lesson
            found = await self._load(conn, t.lessons.c.external_id == lesson.external_id)
        if not found:
            raise RuntimeError(f"lesson with external_id {lesson.external_id!r} vanished")
        return found[0], False

    async def get(self, lesson_id: str) -> Lesson | None:
        async with self._engine().connect() as conn:
            found = await self._load(conn, t.lessons.c.lesson_id == lesson_id)
        return found[0] if found else None

    async def save(self, lesson: Lesson) -> None:
        row = _lesson_row(lesson)
        async with self._engine().begin() as conn:
            done = await conn.execute(sa.update(t.lessons).where(t.lessons.c.lesson_id == lesson.lesson_id)
                                      .values({k: v for k, v in row.items() if k != "lesson_id"}))
            if done.rowcount == 0:
                raise LessonNotFound(f"no lesson {lesson.lesson_id!r}")
            await conn.execute(sa.delete(t.lesson_people).where(t.lesson_people.c.lesson_id == lesson.lesson_id))
            await conn.execute(sa.insert(t.lesson_people), _people_rows(lesson))

    async def find(self, query: LessonQuery, *, offset: int, limit: int) -> tuple[list[Lesson], int]:
        c = t.lessons.c
        conds: list[Any] = []
        if query.class_id is not None:
            conds.append(c.class_id == query.class_id)
        if query.teacher_id is not None:
            p = t.lesson_people.c
            conds.append(sa.exists().where(p.lesson_id == c.lesson_id, p.identity == query.teacher_id,
                                           p.kind == PersonKind.TEACHER.value))
        if query.start is not None:
            conds.append(c.last_ends_at > query.start)
        if query.end is not None:
            conds.append(c.first_starts_at < query.end)
        where = sa.and_(sa.true(), *conds)
        async with self._engine().connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(t.lessons).where(where))
            page = await self._load(conn, where, order=True, offset=offset, limit=limit)
        return page, int(total or 0)

    async def add_occurrence(self, occ: OccurrenceRecord) -> tuple[OccurrenceRecord, bool]:
        try:
            async with self._engine().begin() as conn:
                await conn.execute(sa.insert(t.lesson_occurrences), [{
                    "lesson_id": occ.lesson_id, "starts_at": occ.starts_at, "room_id": occ.room_id,
                    "roster": occ.roster.to_record(), "created_at": occ.created_at}])
            return occ, True
        except IntegrityError:
            existing = await self.get_occurrence(occ.lesson_id, occ.starts_at)
            if existing is None:  # the lesson itself is gone (the foreign key)
                raise LessonNotFound(f"no lesson {occ.lesson_id!r}") from None
            return existing, False

    async def get_occurrence(self, lesson_id: str, starts_at: float) -> OccurrenceRecord | None:
        o = t.lesson_occurrences.c
        async with self._engine().connect() as conn:
            row = (await conn.execute(sa.select(t.lesson_occurrences)
                                      .where(o.lesson_id == lesson_id, o.starts_at == starts_at))).first()
        return _occurrence(row) if row is not None else None

    async def occurrences(self, lesson_id: str) -> list[OccurrenceRecord]:
        o = t.lesson_occurrences.c
        async with self._engine().connect() as conn:
            rows = (await conn.execute(sa.select(t.lesson_occurrences).where(o.lesson_id == lesson_id)
                                       .order_by(o.starts_at))).all()
        return [_occurrence(r) for r in rows]

    async def set_occurrence_roster(self, lesson_id: str, starts_at: float, roster: Roster) -> None:
        o = t.lesson_occurrences.c
        async with self._engine().begin() as conn:
            await conn.execute(sa.update(t.lesson_occurrences).where(o.lesson_id == lesson_id, o.starts_at == starts_at)
                               .values(roster=roster.to_record()))

"""Where lessons live: the LessonStore interface and its in-memory twin (the SQL one is
sql_lesson_store.py).  Both pass one suite (tests/unit/lessons/test_lesson_store.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from signaling.lessons.errors import LessonNotFound
from signaling.lessons.lesson import Lesson, Roster


@dataclass(frozen=True, slots=True)
class OccurrenceRecord:
    """An occurrence somebody entered: its room, and the roster it was held with (set at the first
    entry, replaced when the roster changes while it runs: the report of a past occurrence uses the
    roster of that day, not today's)."""

    lesson_id: str
    starts_at: float
    room_id: str
    roster: Roster
    created_at: float


@dataclass(frozen=True, slots=True)
class LessonQuery:
    class_id: str | None = None
    teacher_id: str | None = None
    start: float | None = None  # lessons with an occurrence ending after this ...
    end: float | None = None  # ... and one starting before this


class LessonStore(Protocol):
    async def open(self) -> None:
        """Ready to serve (the SQL store reuses the room store's engine: open that first)."""
        ...

    async def close(self) -> None: ...

    async def create(self, lesson: Lesson) -> tuple[Lesson, bool]:
        """Store a new lesson, or return the one with the same external_id (created False).
        Atomic: two concurrent creates with one external_id make one lesson."""
        ...

    async def get(self, lesson_id: str) -> Lesson | None: ...

    async def save(self, lesson: Lesson) -> None:
        """Replace the stored lesson (its roster too); LessonNotFound if there is none."""
        ...

    async def find(self, query: LessonQuery, *, offset: int, limit: int) -> tuple[list[Lesson], int]:
        """Matching lessons by first start (then id), and how many match in all."""
        ...

    async def add_occurrence(self, occ: OccurrenceRecord) -> tuple[OccurrenceRecord, bool]:
        """Record an entered occurrence, or return the one recorded already (created False)."""
        ...

    async def get_occurrence(self, lesson_id: str, starts_at: float) -> OccurrenceRecord | None: ...

    async def occurrences(self, lesson_id: str) -> list[OccurrenceRecord]:
        """A lesson's entered occurrences by start."""
        ...

    async def set_occurrence_roster(self, lesson_id: str, starts_at: float, roster: Roster) -> None: ...


def matches(lesson: Lesson, q: LessonQuery) -> bool:
    tt = lesson.timetable
    return ((q.class_id is None or lesson.class_ref.class_id == q.class_id)
            and (q.teacher_id is None or lesson.taught_by(q.teacher_id))
            and (q.start is None or tt.last_ends_at > q.start)
            and (q.end is None or tt.first_starts_at < q.end))


def list_order(lesson: Lesson) -> tuple[float, str]:
    return lesson.timetable.first_starts_at, lesson.lesson_id


class MemoryLessonStore:
    """Lessons in dicts (``store = "memory"``).  Lessons are immutable, so handing them out is safe;
    no method awaits between its check and its write, so each is atomic on the event loop."""

    def __init__(self) -> None:
        self._lessons: dict[str, Lesson] = {}
        self._by_external: dict[str, str] = {}
        self._occurrences: dict[tuple[str, float], OccurrenceRecord] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(self, lesson: Lesson) -> tuple[Lesson, bool]:
        if lesson.external_id is not None:
            existing = self._by_external.get(lesson.external_id)
            if existing is not None:
                return self._lessons[existing], False
            self._by_external[lesson.external_id] = lesson.lesson_id
        self._lessons[lesson.lesson_id] = lesson
        return lesson, True

    async def get(self, lesson_id: str) -> Lesson | None:
        return self._lessons.get(lesson_id)

    async def save(self, lesson: Lesson) -> None:
        if lesson.lesson_id not in self._lessons:
            raise LessonNotFound(f"no lesson {lesson.lesson_id!r}")
        self._lessons[lesson.lesson_id] = lesson

    async def find(self, query: LessonQuery, *, offset: int, limit: int) -> tuple[list[Lesson], int]:
        found = sorted((x for x in self._lessons.values() if matches(x, query)), key=list_order)
        return found[offset:offset + limit], len(found)

    async def add_occurrence(self, occ: OccurrenceRecord) -> tuple[OccurrenceRecord, bool]:
        key = (occ.lesson_id, occ.starts_at)
        existing = self._occurrences.get(key)
        if existing is not None:
            return existing, False
        self._occurrences[key] = occ
        return occ, True

    async def get_occurrence(self, lesson_id: str, starts_at: float) -> OccurrenceRecord | None:
        return self._occurrences.get((lesson_id, starts_at))

    async def occurrences(self, lesson_id: str) -> list[OccurrenceRecord]:
        return sorted((o for (lid, _), o in self._occurrences.items() if lid == lesson_id),
                      key=lambda o: o.starts_at)

    async def set_occurrence_roster(self, lesson_id: str, starts_at: float, roster: Roster) -> None:
        key = (lesson_id, starts_at)
        occ = self._occurrences.get(key)
        if occ is not None:
            self._occurrences[key] = OccurrenceRecord(occ.lesson_id, occ.starts_at, occ.room_id, roster,
                                                      occ.created_at)

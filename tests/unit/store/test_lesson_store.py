"""The LessonStore contract; every implementation runs this suite: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from signaling.lessons.errors import LessonNotFound
from signaling.lessons.lesson import LessonState, Person, Roster
from signaling.lessons.lesson_store import LessonQuery, LessonStore, MemoryLessonStore, OccurrenceRecord
from signaling.lessons.sql_lesson_store import SqlLessonStore
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.pg_cluster import SKIP_REASON, PgCluster
from tests.unit.lessons.factory import lesson

DAY = 86_400.0


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def lessons(request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PgCluster | None,
                  ) -> AsyncIterator[LessonStore]:
    rooms: SqlStore | None = None
    if request.param == "memory":
        s: LessonStore = MemoryLessonStore()
    else:
        if request.param == "sqlite":
            url = sqlite_url(tmp_path / "data")
        elif pg_cluster is None:
            pytest.skip(SKIP_REASON)
        else:
            url = await pg_cluster.new_database()
        rooms = SqlStore(url)
        await rooms.open()
        sql = rooms
        s = SqlLessonStore(lambda: sql.engine)
    await s.open()
    yield s
    await s.close()
    if rooms is not None:
        await rooms.close()


async def test_a_created_lesson_reads_back_equal(lessons: LessonStore) -> None:
    x = lesson(recurrence={"weekly": {"days": ["tue", "fri"], "until": "2027-01-29"}, "except": ["2026-12-29"]},
               room={"mode": "meeting", "lock": {"chat": True}}, wait_for_teacher=True)
    stored, created = await lessons.create(x)
    assert created and stored == x
    assert await lessons.get("LS_1") == x
    assert await lessons.get("LS_nope") is None


async def test_create_is_idempotent_on_external_id_even_when_concurrent(lessons: LessonStore) -> None:
    results = await asyncio.gather(*(lessons.create(lesson(f"LS_{i}")) for i in range(8)))
    assert sum(created for _, created in results) == 1
    assert len({x.lesson_id for x, _ in results}) == 1
    _, total = await lessons.find(LessonQuery(), offset=0, limit=10)
    assert total == 1


async def test_lessons_without_external_id_are_all_kept(lessons: LessonStore) -> None:
    for i in range(3):
        _, created = await lessons.create(lesson(f"LS_{i}", external_id=None))
        assert created
    assert (await lessons.find(LessonQuery(), offset=0, limit=10))[1] == 3


async def test_save_replaces_the_lesson_and_its_roster(lessons: LessonStore) -> None:
    x, _ = await lessons.create(lesson())
    roster = Roster((Person("t-2", "Смирнов", "Олег"),), (Person("s-9", "Яковлев", "Ян", registered=False),))
    changed = x.replace(name="Геометрия, 7Б", roster=roster, state=LessonState.CANCELLED, updated_at=5.0)
    await lessons.save(changed)
    assert await lessons.get(x.lesson_id) == changed
    with pytest.raises(LessonNotFound):
        await lessons.save(lesson("LS_missing", external_id="other"))


async def test_list_by_class_teacher_and_date_range_paginated(lessons: LessonStore) -> None:
    day = 24 * 3600
    for i in range(5):  # one lesson a day from Dec 8; odd ones are 7A's with another teacher
        other: dict[str, Any] = {"class": {"id": "7a", "name": "7А"}, "teachers": [{"id": "t-2"}]} if i % 2 else {}
        await lessons.create(lesson(f"LS_{i}", external_id=f"e{i}", starts_at=f"2026-12-{8 + i:02d}T09:00:00+03:00",
                                    **other))
    page, total = await lessons.find(LessonQuery(class_id="7b"), offset=1, limit=1)
    assert total == 3 and [x.lesson_id for x in page] == ["LS_2"]
    page, total = await lessons.find(LessonQuery(teacher_id="t-2"), offset=0, limit=10)
    assert total == 2 and [x.lesson_id for x in page] == ["LS_1", "LS_3"]
    first = lesson("LS_x", external_id="x").timetable.starts_at  # Dec 8, 09:00 Moscow
    page, total = await lessons.find(LessonQuery(start=first + day, end=first + 3 * day), offset=0, limit=10)
    assert [x.lesson_id for x in page] == ["LS_1", "LS_2"] and total == 2
    _, total = await lessons.find(LessonQuery(teacher_id="s-1"), offset=0, limit=10)  # a student teaches nothing
    assert total == 0


async def test_a_recurring_lesson_is_listed_in_any_week_it_spans(lessons: LessonStore) -> None:
    await lessons.create(lesson(recurrence={"weekly": {"count": 10}}))
    start = lesson("LS_x").timetable.starts_at
    page, _ = await lessons.find(LessonQuery(start=start + 30 * DAY, end=start + 31 * DAY), offset=0, limit=10)
    assert [x.lesson_id for x in page] == ["LS_1"]
    page, _ = await lessons.find(LessonQuery(start=start + 70 * DAY, end=start + 71 * DAY), offset=0, limit=10)
    assert page == []


async def test_occurrences_are_recorded_once_and_keep_their_roster(lessons: LessonStore) -> None:
    x, _ = await lessons.create(lesson(recurrence={"weekly": {"count": 3}}))
    s0, s1 = x.timetable.starts[:2]
    occ = OccurrenceRecord(x.lesson_id, s0, "RM_a", x.roster, 1.0)
    results = await asyncio.gather(*(lessons.add_occurrence(
        OccurrenceRecord(x.lesson_id, s0, f"RM_{i}", x.roster, 1.0)) for i in range(4)))
    assert sum(created for _, created in results) == 1 and len({o.room_id for o, _ in results}) == 1
    await lessons.add_occurrence(OccurrenceRecord(x.lesson_id, s1, "RM_b", x.roster, 2.0))
    smaller = Roster(x.roster.teachers, x.roster.students[:1])
    await lessons.set_occurrence_roster(x.lesson_id, s1, smaller)
    got = await lessons.occurrences(x.lesson_id)
    assert [o.starts_at for o in got] == [s0, s1]
    assert got[1].roster == smaller and got[0].roster == x.roster
    one = await lessons.get_occurrence(x.lesson_id, s0)
    assert one is not None and one.room_id == results[0][0].room_id and occ.starts_at == one.starts_at
    assert await lessons.get_occurrence(x.lesson_id, s0 + 1) is None

"""One suite for every MeetingStore (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

from signaling.bbb.meetings import BbbMeeting, SqlMeetingStore
from signaling.store import schema as t
from signaling.store.sql_store import SqlStore
from tests.unit.bbb.conftest import Stores


def meeting(room_id: str, *, meeting_id: str = "course-7b", created: int = 1_000, **kw: object) -> BbbMeeting:
    base = BbbMeeting(meeting_id=meeting_id, internal_id=f"{meeting_id}-{created}", room_id=room_id,
                      name="Алгебра, 7Б", attendee_pw="ap", moderator_pw="mp", create_time_ms=created,
                      duration_minutes=45, max_participants=30, guest_policy="ASK_MODERATOR",
                      metadata={"bbb-origin": "Moodle", "endcallbackurl": "https://lms/x?a=1&b=ü"})
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_a_meeting_is_kept_whole_and_found_by_its_meeting_id(stores: Stores) -> None:
    m = meeting(await stores.room("RM_1"))
    assert await stores.meetings.add(m) == (m, True)
    assert await stores.meetings.latest("course-7b") == m
    assert await stores.meetings.latest("other") is None


async def test_the_same_internal_id_again_returns_the_stored_meeting(stores: Stores) -> None:
    room = await stores.room("RM_1")
    first = meeting(room)
    await stores.meetings.add(first)
    again, added = await stores.meetings.add(replace(first, name="another name", attendee_pw="zz"))
    assert not added and again == first


async def test_latest_is_the_newest_meeting_of_a_meeting_id_and_open_ones_exclude_ended(stores: Stores) -> None:
    old = meeting(await stores.room("RM_1"), created=1_000)
    new = meeting(await stores.room("RM_2"), created=2_000)
    other = meeting(await stores.room("RM_3"), meeting_id="physics", created=1_500)
    for m in (new, old, other):
        await stores.meetings.add(m)
    assert await stores.meetings.latest("course-7b") == new
    await stores.meetings.mark_ended(old.internal_id, 10.0)
    await stores.meetings.mark_ended(old.internal_id, 20.0)  # idempotent: the first end is kept
    assert [m.internal_id for m in await stores.meetings.open_meetings()] == [other.internal_id, new.internal_id]
    await stores.meetings.mark_ended("no-such-meeting", 5.0)
    latest_old = await stores.meetings.latest("course-7b")
    assert latest_old == new and latest_old.ended_at is None


async def test_a_meeting_goes_with_its_room_when_the_rooms_retention_deletes_it(stores: Stores) -> None:
    if not isinstance(stores.rooms, SqlStore):
        return  # the memory stores keep nothing past the process
    m = meeting(await stores.room("RM_1"))
    await stores.meetings.add(m)
    async with stores.rooms.engine.begin() as conn:
        await conn.execute(t.rooms.delete().where(t.rooms.c.room_id == "RM_1"))
    assert await stores.meetings.latest("course-7b") is None


async def test_the_sql_store_caches_nothing_a_second_store_reads_it_back(stores: Stores) -> None:
    if not isinstance(stores.rooms, SqlStore):
        return
    m = meeting(await stores.room("RM_1"))
    await stores.meetings.add(m)
    sql = stores.rooms
    second = SqlMeetingStore(lambda: sql.engine)  # the database is the only copy
    assert await second.latest("course-7b") == m

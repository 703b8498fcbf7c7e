"""A database made by the first schema version (r0001) and holding a school day's data upgrades to
this version's schema with its data intact, whatever the revisions after r0001 add (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.rooms import ParticipantState, Role
from signaling.store.migrate import head_revision, upgrade
from signaling.store.sql_store import SqlStore, driver_url

pytestmark = pytest.mark.parametrize("sql_url", ["sqlite", "postgres"], indirect=True)

# the r0001 tables as that version wrote them (only its columns: later revisions may add more)
ROOMS = sa.table("rooms", *(sa.column(c) for c in ("room_id", "external_id", "created_at", "ended_at", "started_at")),
                 sa.column("settings", sa.JSON), sa.column("lock_before_lockdown", sa.JSON))
PARTICIPANTS = sa.table("participants", *(sa.column(c) for c in (
    "room_id", "participant_id", "identity", "name", "family_name", "given_name", "role", "registered", "state",
    "joined_at", "waiting_since", "left_at")))
ATTENDANCE = sa.table("attendance", *(sa.column(c) for c in (
    "room_id", "identity", "name", "family_name", "given_name", "role", "registered")))
INTERVALS = sa.table("attendance_intervals", *(sa.column(c) for c in ("room_id", "identity", "seq", "joined_at",
                                                                      "left_at")))
CHAT = sa.table("chat_messages", *(sa.column(c) for c in (
    "room_id", "message_id", "seq", "from_id", "from_name", "to_id", "to_name", "text", "sent_at", "deleted")))
EXCLUSIONS = sa.table("room_exclusions", *(sa.column(c) for c in ("room_id", "kind", "identity")))
OVERRIDES = sa.table("role_overrides", *(sa.column(c) for c in ("room_id", "identity", "role")))


def _r0001_day(conn: sa.Connection) -> None:
    upgrade(conn, "r0001")
    conn.execute(sa.insert(ROOMS), [
        {"room_id": "RM_live", "external_id": "ej-7b", "created_at": 100.0, "ended_at": None, "started_at": 110.0,
         "settings": {"name": "Алгебра, 7Б", "external_id": "ej-7b", "duration_minutes": 45},
         "lock_before_lockdown": None},
        {"room_id": "RM_done", "external_id": None, "created_at": 50.0, "ended_at": 90.0, "started_at": 55.0,
         "settings": {"name": "Физика"}, "lock_before_lockdown": None},
    ])
    people = [("PA_t", "t-1", "Иванова Мария", "Иванова", "Мария", "host", "joined", 110.0, None),
              ("PA_a", "s-1", "Петров Пётр", "Петров", "Пётр", "participant", "joined", 111.0, None),
              ("PA_b", "s-2", "Сидоров Иван", "Сидоров", "Иван", "participant", "left", 112.0, 130.0)]
    conn.execute(sa.insert(PARTICIPANTS), [
        {"room_id": "RM_live", "participant_id": pid, "identity": i, "name": n, "family_name": f, "given_name": g,
         "role": role, "registered": True, "state": state, "joined_at": j, "waiting_since": None, "left_at": left}
        for pid, i, n, f, g, role, state, j, left in people])
    conn.execute(sa.insert(ATTENDANCE), [
        {"room_id": "RM_live", "identity": i, "name": n, "family_name": f, "given_name": g, "role": role,
         "registered": True} for _, i, n, f, g, role, *_ in people])
    conn.execute(sa.insert(INTERVALS), [
        {"room_id": "RM_live", "identity": "t-1", "seq": 0, "joined_at": 110.0, "left_at": None},
        {"room_id": "RM_live", "identity": "s-1", "seq": 0, "joined_at": 111.0, "left_at": None},
        {"room_id": "RM_live", "identity": "s-2", "seq": 0, "joined_at": 112.0, "left_at": 120.0},
        {"room_id": "RM_live", "identity": "s-2", "seq": 1, "joined_at": 200.0, "left_at": 230.0},
    ])
    conn.execute(sa.insert(CHAT), [
        {"room_id": "RM_live", "message_id": "MS_1", "seq": 0, "from_id": "PA_t", "from_name": "Иванова Мария",
         "to_id": None, "to_name": None, "text": "Откройте учебник, с. 12", "sent_at": 115.0, "deleted": False},
        {"room_id": "RM_live", "message_id": "MS_2", "seq": 1, "from_id": "PA_b", "from_name": "Сидоров Иван",
         "to_id": None, "to_name": None, "text": "", "sent_at": 116.0, "deleted": True},
        {"room_id": "RM_live", "message_id": "MS_3", "seq": 2, "from_id": "PA_a", "from_name": "Петров Пётр",
         "to_id": "PA_t", "to_name": "Иванова Мария", "text": "Можно выйти?", "sent_at": 117.0, "deleted": False},
    ])
    conn.execute(sa.insert(EXCLUSIONS), [{"room_id": "RM_live", "kind": "banned", "identity": "s-2"}])
    conn.execute(sa.insert(OVERRIDES), [{"room_id": "RM_live", "identity": "s-1", "role": "cohost"}])


async def test_a_database_at_r0001_with_a_days_data_upgrades_to_head_with_the_data_intact(sql_url: str) -> None:
    engine = create_async_engine(driver_url(sql_url))
    if engine.url.get_backend_name() == "sqlite":
        Path(str(engine.url.database)).parent.mkdir(parents=True, exist_ok=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_r0001_day)
    finally:
        await engine.dispose()
    s = SqlStore(sql_url)  # serve's start: migrate_on_start upgrades
    try:
        await s.open()
        async with s.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()
        room = await s.get_room("RM_live")
        assert room is not None
        assert (room.settings.name, room.settings.external_id, room.settings.duration_minutes) == (
            "Алгебра, 7Б", "ej-7b", 45)
        assert (room.created_at, room.started_at, room.ended, room.roster) == (100.0, 110.0, False, None)
        assert {p.participant_id: (p.identity, p.state, p.role) for p in room.participants.values()} == {
            "PA_t": ("t-1", ParticipantState.JOINED, Role.HOST),
            "PA_a": ("s-1", ParticipantState.JOINED, Role.PARTICIPANT),
            "PA_b": ("s-2", ParticipantState.LEFT, Role.PARTICIPANT)}
        assert [p.participant_id for p in room.joined()] == ["PA_t", "PA_a"]
        assert room.banned == {"s-2"} and room.role_overrides == {"s-1": Role.COHOST}
        assert [(m.message_id, m.text, m.deleted, m.to_id) for m in room.chat.messages()] == [
            ("MS_1", "Откройте учебник, с. 12", False, None), ("MS_2", "", True, None),
            ("MS_3", "Можно выйти?", False, "PA_t")]
        intervals = {r.identity: r.intervals for r in room.attendance.records()}
        assert intervals == {"t-1": [[110.0, None]], "s-1": [[111.0, None]],
                             "s-2": [[112.0, 120.0], [200.0, 230.0]]}
        assert room.hands.history() == [] and room.attention.requests() == []
        done = await s.get_room("RM_done")
        assert done is not None and done.ended_at == 90.0 and done.settings.name == "Физика"
        assert await s.count_rooms(active_only=False) == 2
        # the upgraded database takes this version's writes
        room.raise_hand(room.get("PA_a"), 300.0)
        room.chat_send(room.get("PA_t"), "Петров, слушаю", None, 301.0)
        await s.save_room(room)
        await s.flush()
    finally:
        await s.close()
    again = SqlStore(sql_url)
    try:
        room = await again.get_room("RM_live")
        assert room is not None and [m.text for m in room.chat.messages()][-1] == "Петров, слушаю"
        assert [h.participant_id for h in room.hands.queue()] == ["PA_a"]
    finally:
        await again.close()

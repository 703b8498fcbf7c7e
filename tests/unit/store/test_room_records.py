"""The lesson's record in the SQL store: hands, attention checks with their answers and a lesson's
roster are written behind and come back after a restart of the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from signaling.rooms import Identity, Role, Room, RoomSettings
from signaling.store import schema as t
from signaling.store.sql_store import SqlStore

pytestmark = pytest.mark.parametrize("sql_url", ["sqlite", "postgres"], indirect=True)


def _hands(room: Room) -> list[dict[str, object]]:
    return [h.to_json() for h in room.hands.history()]


async def test_hands_and_attention_answers_survive_a_restart_of_the_store(sql_url: str) -> None:
    s = SqlStore(sql_url)
    r, _ = await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    host = r.admit_or_queue(Identity("t", "Учитель", Role.HOST, True), 2.0)
    anna, boris, vera = (r.admit_or_queue(Identity(i, i.title(), Role.PARTICIPANT, True), 3.0)
                         for i in ("anna", "boris", "vera"))
    r.raise_hand(anna, 10.0)
    r.raise_hand(boris, 11.0)
    r.raise_hand(vera, 12.0)
    first = r.ask_attention(host, None, "Вы с нами?", 20.0)
    r.ack_attention(boris, None, 21.0)
    await s.save_room(r)
    await s.flush()
    # what changes after the first write goes in as changes: a hand answered, one lowered by leaving,
    # an acknowledgement more, a second request
    r.lower_hands(host, anna.participant_id, False, 30.0)
    r.leave(vera.participant_id, 31.0)
    r.ack_attention(anna, first.attention_id, 32.0)
    second = r.ask_attention(host, boris.participant_id, "Борис?", 40.0)
    await s.save_room(r)
    await s.flush()
    hands, attention = _hands(r), [a.record_json() for a in r.attention.requests()]
    await s.close()

    again = SqlStore(sql_url)
    try:
        room = await again.get_room("A")
        assert room is not None and room is not r
        assert _hands(room) == hands
        assert [a.record_json() for a in room.attention.requests()] == attention
        assert attention[0]["not_acked"] == [{"participant_id": vera.participant_id, "name": "Vera"}]
        assert [a["participant_id"] for a in attention[0]["acked"]] == [boris.participant_id, anna.participant_id]
        # the live state goes on: boris's hand is still up and first in the queue, his answer counts
        b = room.get(boris.participant_id)
        assert [h.participant_id for h in room.hands.queue()] == [boris.participant_id]
        assert b.hand_raised_at == 11.0
        _, new = room.ack_attention(b, second.attention_id, 41.0)
        assert new
        room.raise_hand(room.get(anna.participant_id), 50.0)
        assert [h.participant_id for h in room.hands.queue()] == [boris.participant_id, anna.participant_id]
        await again.save_room(room)
        await again.flush()
        async with again.engine.connect() as conn:
            acked = {row.participant_id: row.acked_at for row in await conn.execute(
                sa.select(t.attention_targets).where(t.attention_targets.c.attention_id == second.attention_id))}
            seqs = (await conn.scalars(sa.select(t.hands.c.seq).order_by(t.hands.c.seq))).all()
        assert acked == {boris.participant_id: 41.0} and seqs == [0, 1, 2, 3]
    finally:
        await again.close()


@pytest.mark.parametrize("roster", [None, set(), {"s-1", "s-2", "t-1"}])
async def test_a_lessons_roster_survives_a_restart_of_the_store(sql_url: str, roster: set[str] | None) -> None:
    s = SqlStore(sql_url)
    await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0,
                             roster=None if roster is None else set(roster)))
    await s.close()
    again = SqlStore(sql_url)
    try:
        room = await again.get_room("A")
        assert room is not None and room.roster == roster
        room.roster = {"s-3"} if roster is None else (roster | {"s-9"}) - {"s-1"}  # PUT .../roster
        expected = set(room.roster)
        await again.save_room(room)
    finally:
        await again.close()
    third = SqlStore(sql_url)
    try:
        room = await third.get_room("A")
        assert room is not None and room.roster == expected
    finally:
        await third.close()


async def test_the_record_goes_with_its_room_on_retention(sql_url: str) -> None:
    s = SqlStore(sql_url, retention_rooms_s=10.0)
    r, _ = await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    host = r.admit_or_queue(Identity("t", "T", Role.HOST, True), 2.0)
    anna = r.admit_or_queue(Identity("anna", "Anna", Role.PARTICIPANT, True), 2.0)
    r.raise_hand(anna, 3.0)
    r.ask_attention(host, None, "?", 4.0)
    r.end(5.0)
    await s.save_room(r)
    await s.flush()
    assert (await s.purge(100.0))["rooms"] == 1
    async with s.engine.connect() as conn:
        left = [await conn.scalar(sa.select(sa.func.count()).select_from(tbl))
                for tbl in (t.hands, t.attention_requests, t.attention_targets)]
    await s.close()
    assert left == [0, 0, 0]

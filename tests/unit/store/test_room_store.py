"""The RoomStore contract; every implementation runs this suite: memory, SQLite, PostgreSQL."""

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from signaling.rooms import EntryRefused, GuestPolicy, Identity, LockSettings, Participant, Role, Room, RoomSettings
from signaling.rooms.moderation import FULL_LOCK
from signaling.store import RoomStore
from signaling.store.sql_store import SqlStore

# the `store` fixture (conftest.py) runs each test on the memory store, SQLite and PostgreSQL


def room(room_id: str, created: float, external_id: str | None = None) -> Room:
    return Room(room_id=room_id, settings=RoomSettings(external_id=external_id), created_at=created)


async def test_create_and_get(store: RoomStore) -> None:
    _, created = await store.create_room(room("A", 1))
    assert created and (await store.get_room("A")) is not None
    assert await store.get_room("nope") is None


async def test_create_is_idempotent_on_external_id_even_when_concurrent(store: RoomStore) -> None:
    results = await asyncio.gather(*(store.create_room(room(f"R{i}", i, "ext-1")) for i in range(10)))
    assert sum(created for _, created in results) == 1
    assert len({r.room_id for r, _ in results}) == 1


async def test_ended_room_frees_its_external_id(store: RoomStore) -> None:
    r, _ = await store.create_room(room("A", 1, "ext"))
    r.end(2.0)
    await store.save_room(r)
    r2, created = await store.create_room(room("B", 3, "ext"))
    assert created and r2.room_id == "B"


async def test_list_newest_first_paginated_and_active_filter(store: RoomStore) -> None:
    for i in range(5):
        await store.create_room(room(f"R{i}", float(i)))
    r0 = await store.get_room("R0")
    assert r0 is not None
    r0.end(10.0)
    await store.save_room(r0)
    page, total = await store.list_rooms(active_only=True, offset=1, limit=2)
    assert total == 4 and [r.room_id for r in page] == ["R3", "R2"]
    _, total_all = await store.list_rooms(active_only=False, offset=0, limit=100)
    assert total_all == 5
    assert await store.count_rooms(active_only=True) == 4


# --- what a restart keeps: every record type, read back by a store opened afresh ----------------------

Reopen = Callable[[RoomStore], Awaitable[RoomStore]]


@pytest.fixture
async def reopen() -> AsyncIterator[Reopen]:
    """The store as a restarted server sees it: a new SqlStore on the same database (the memory
    store keeps nothing across a restart, so it stands for itself: the same tests hold in-process)."""
    opened: list[SqlStore] = []

    async def _reopen(s: RoomStore) -> RoomStore:
        if not isinstance(s, SqlStore):
            return s
        await s.flush()
        fresh = SqlStore(s.url)
        await fresh.open()
        opened.append(fresh)
        return fresh

    yield _reopen
    for s in opened:
        await s.close()


def who(identity: str, role: Role = Role.PARTICIPANT, *, family: str = "", registered: bool = True) -> Identity:
    return Identity(identity=identity, name=f"{identity} name", role=role, registered=registered,
                    family_name=family, given_name=f"{identity} given")


async def stored(store: RoomStore, room_id: str) -> Room:
    r = await store.get_room(room_id)
    assert r is not None
    return r


async def test_settings_lockdown_and_end_survive_a_restart(store: RoomStore, reopen: Reopen) -> None:
    settings = RoomSettings(name="Алгебра 7Б", external_id="ej-42", max_participants=30,
                            guest_policy=GuestPolicy.ASK_HOST, duration_minutes=45)
    r, _ = await store.create_room(Room(room_id="A", settings=settings, created_at=5.0))
    r.set_lock(None, {"chat": True})
    r.set_lockdown(None, True)
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    assert again.settings == r.settings and again.settings.lock == FULL_LOCK
    assert again.lock_before_lockdown == LockSettings(chat=True, private_chat=True)  # the school default stays
    assert (again.created_at, again.ended_at) == (5.0, None)
    r.end(9.0)
    await store.save_room(r)
    assert (await stored(await reopen(store), "A")).ended_at == 9.0


async def test_bans_denials_and_role_changes_survive_a_restart(store: RoomStore, reopen: Reopen) -> None:
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(guest_policy=GuestPolicy.ASK_HOST),
                                        created_at=1.0))
    host = r.admit_or_queue(who("teacher", Role.HOST), 2.0)
    pupil = r.admit_or_queue(who("pupil"), 3.0)
    r.admit(host, [pupil.participant_id], 3.5)
    bad = r.admit_or_queue(who("troll"), 4.0)
    r.admit(host, [bad.participant_id], 4.5)
    stranger = r.admit_or_queue(who("stranger", registered=False), 5.0)
    r.set_role(host, pupil.participant_id, Role.COHOST)
    r.remove(host, bad.participant_id, ban=True, now=6.0)
    r.deny(host, [stranger.participant_id], 7.0)
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    assert again.banned == {"troll"} and again.denied == {"stranger"}
    assert again.role_overrides == {"pupil": Role.COHOST}
    with pytest.raises(EntryRefused):
        again.admit_or_queue(who("troll"), 8.0)
    with pytest.raises(EntryRefused):
        again.admit_or_queue(who("stranger", registered=False), 8.0)


async def test_participants_get_their_seat_back_after_a_restart(store: RoomStore, reopen: Reopen) -> None:
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    seats = {i: r.admit_or_queue(who(i), 2.0).participant_id for i in ("a", "b", "c")}
    r.leave(seats["c"], 3.0)
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    assert {p.identity: p.participant_id for p in again.participants.values()} == seats
    assert sorted(p.identity for p in again.joined()) == ["a", "b"]
    for i in ("a", "b", "c"):  # reconnects with the same token: the same participant id
        assert again.admit_or_queue(who(i), 4.0).participant_id == seats[i]
    assert again.num_joined == 3


async def test_attendance_keeps_every_interval_across_a_restart(store: RoomStore, reopen: Reopen) -> None:
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    p = r.admit_or_queue(who("pupil"), 10.0)
    r.leave(p.participant_id, 20.0)
    p = r.admit_or_queue(who("pupil"), 200.0)  # beyond the merge gap: a second interval
    r.leave(p.participant_id, 300.0)
    r.admit_or_queue(who("pupil"), 1000.0)  # present now
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    rec = again.attendance.get("pupil")
    assert rec is not None and rec.intervals == [[10.0, 20.0], [200.0, 300.0], [1000.0, None]]
    assert (rec.name, rec.family_name, rec.role, rec.registered) == ("pupil name", "", "participant", True)


async def test_chat_history_and_tombstones_survive_a_restart(store: RoomStore, reopen: Reopen) -> None:
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    host = r.admit_or_queue(who("teacher", Role.HOST), 2.0)
    pupil = r.admit_or_queue(who("pupil"), 2.0)
    sent = [r.chat_send(pupil, "hello", None, 3.0), r.chat_send(host, "private", pupil.participant_id, 4.0),
            r.chat_send(pupil, "rude words", None, 5.0)]
    await store.flush()  # written before the delete: the tombstone replaces a stored text
    r.chat_delete(host, sent[2].message_id)
    sent.append(r.chat_send(pupil, "sorry", None, 6.0))
    r.chat_delete(host, sent[3].message_id)  # deleted before it was ever written
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    got = [m.to_json() for m in again.chat.messages()]
    assert got == [m.to_json() for m in sent]
    assert [m["deleted"] for m in got] == [False, False, True, True] and got[2]["text"] == ""
    assert [m.message_id for m in again.chat.history_for(pupil.participant_id)] == [m.message_id for m in sent]


async def test_2000_participants_page_by_family_name_after_a_restart(store: RoomStore, reopen: Reopen) -> None:
    rng = random.Random(11)
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    families = ["Иванов", "иванова", "Petrov", "Smith", "Ääkkönen", "Zhou", "", "Орлов"]
    for n in range(2000):
        r.admit_or_queue(who(f"u{n:04d}", family=rng.choice(families)), 2.0 + n / 1000)
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    expected = sorted(r.joined(), key=Participant.sort_key)
    page, total = again.page(1000, 50)
    assert total == 2000
    assert [p.participant_id for p in page] == [p.participant_id for p in expected[1000:1050]]
    first, _ = again.page(0, 20)
    assert [p.participant_id for p in first] == [p.participant_id for p in expected[:20]]


async def test_the_waiting_room_keeps_its_queue_across_a_restart(store: RoomStore, reopen: Reopen) -> None:
    r, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(guest_policy=GuestPolicy.ASK_HOST),
                                        created_at=1.0))
    r.admit_or_queue(who("teacher", Role.HOST), 2.0)
    queued = [r.admit_or_queue(who(i), t).participant_id for i, t in (("second", 4.0), ("first", 3.0))]
    await store.save_room(r)
    again = await stored(await reopen(store), "A")
    assert [p.participant_id for p in again.waiting()] == queued[::-1]
    assert again.admit_or_queue(who("first"), 5.0).participant_id == queued[1]  # still waiting, same place
    assert [p.participant_id for p in again.waiting()] == queued[::-1]

"""ClusterRooms on two "workers" in one process (two SqlStores on one SQLite file, as two processes
have, and one MemoryDirectory): a room whose end has come is ended by exactly one of them; a room
another worker changed is read afresh when this one opens it; a lost lease stops serving the room
here without writing over the new owner's state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signaling import events as ev
from signaling.cluster.memory_directory import MemoryDirectory
from signaling.cluster.node import ClusterConfig, ClusterNode
from signaling.cluster.rooms import ClusterRooms
from signaling.events import RoomEvent
from signaling.rooms import Identity, Role, Room, RoomSettings
from signaling.store.sql_store import SqlStore, sqlite_url


class Events:
    def __init__(self) -> None:
        self.got: list[RoomEvent] = []

    def emit(self, event: RoomEvent) -> None:
        self.got.append(event)


class Worker:
    def __init__(self, index: int, directory: MemoryDirectory, url: str) -> None:
        self.store = SqlStore(url)
        self.events = Events()
        self.rooms = ClusterRooms(self.store, clock=time.time, events=self.events)
        self.node = ClusterNode(directory, ClusterConfig(index, "node", "127.0.0.1", 20000 + index),
                                counts=self.rooms.counts, is_live=lambda r: r in self.rooms.live)
        self.rooms.attach(self.node)

    async def close(self) -> None:
        await self.rooms.shutdown()
        await self.store.close()


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[Worker]]:
    directory = MemoryDirectory()
    url = sqlite_url(tmp_path)
    made = [Worker(i, directory, url) for i in range(2)]
    for w in made:
        await w.store.open()
    yield made
    for w in made:
        await w.close()


async def test_a_due_room_is_ended_by_one_worker(workers: list[Worker]) -> None:
    a, b = workers
    room, _ = await a.rooms.create(RoomSettings(name="Урок", ends_at=time.time() - 1))
    ended = await asyncio.gather(a.rooms.end_if_due(room.room_id), b.rooms.end_if_due(room.room_id))
    ended.append(await b.rooms.end_if_due(room.room_id))  # and once more, after
    assert ended.count(True) == 1
    assert sum(e.name == ev.ROOM_ENDED for w in workers for e in w.events.got) == 1
    assert (await b.rooms.get(room.room_id)).ended


async def test_a_room_changed_elsewhere_is_read_afresh(workers: list[Worker]) -> None:
    a, b = workers
    room, _ = await a.rooms.create(RoomSettings(name="Урок"))
    assert await b.rooms.get(room.room_id)  # b keeps a copy from before
    assert await a.node.place(room.room_id) is None  # a serves it
    live = await a.rooms.open(room.room_id, create=False)
    p = live.room.admit_or_queue(Identity(identity="anna", name="Anna", role=Role.PARTICIPANT, registered=True),
                                 time.time())
    await a.store.save_room(live.room)
    await a.store.flush()
    a.rooms.release_if_empty(live)  # nobody connected: a lets it go (written, released)
    for task in list(a.rooms._tasks):
        await task
    assert await a.node.directory.owner(room.room_id) is None
    assert await b.node.place(room.room_id) is None  # now b serves it
    live_b = await b.rooms.open(room.room_id, create=False)
    assert live_b.room.by_identity("anna") is not None
    assert live_b.room.by_identity("anna").participant_id == p.participant_id  # type: ignore[union-attr]


async def test_a_lost_lease_stops_the_room_without_writing(workers: list[Worker]) -> None:
    a, b = workers
    room, _ = await a.rooms.create(RoomSettings(name="Урок"))
    assert await a.node.place(room.room_id) is None
    live = await a.rooms.open(room.room_id, create=False)
    await a.node.directory.remove_worker(a.node.worker_id)  # as if a were dead: b takes the room
    assert await b.node.place(room.room_id) is None
    live_b = await b.rooms.open(room.room_id, create=False)
    live_b.room.admit_or_queue(Identity(identity="boris", name="Boris", role=Role.PARTICIPANT, registered=True),
                               time.time())
    await b.store.save_room(live_b.room)
    await b.store.flush()
    await a.node._beat()  # a's renewal finds the lease taken
    assert room.room_id not in a.rooms.live and live.closed
    live.room.end(time.time())  # whatever a's stale copy does now goes nowhere
    await live.store.save_room(live.room)
    await a.store.flush()
    fresh = SqlStore(a.store.url)
    try:
        stored = await fresh.get_room(room.room_id)
        assert isinstance(stored, Room) and not stored.ended and stored.by_identity("boris") is not None
    finally:
        await fresh.close()


async def test_a_room_served_elsewhere_is_ended_by_its_worker(workers: list[Worker]) -> None:
    """The BigBlueButton API's end or a cancelled lesson may reach any worker: the owner ends it."""
    a, b = workers
    for w in workers:
        await w.rooms.listen()
    await a.node.directory.heartbeat(a.node.info())
    room, _ = await b.rooms.create(RoomSettings(name="Урок"))
    assert await a.node.place(room.room_id) is None
    live = await a.rooms.open(room.room_id, create=False)
    ended = await b.rooms.end(room.room_id, reason="cancelled")
    assert ended.ended and live.closed and room.room_id not in a.rooms.live
    assert [e.data.get("reason") for e in a.events.got if e.name == ev.ROOM_ENDED] == ["cancelled"]
    assert not [e for e in b.events.got if e.name == ev.ROOM_ENDED]  # told once, by the owner


async def test_recordings_are_recovered_by_one_worker_of_a_cold_start(workers: list[Worker]) -> None:
    """Recovery repairs the files of recordings a dead process left `recording`: never while
    another worker runs (it may be writing them), once at a cold start."""
    a, b = workers
    await a.node.start()
    try:
        await b.node.start()
        try:
            assert a.node.cold_start and not b.node.cold_start
            assert await a.node.may_recover() and not await b.node.may_recover()
            # a restarted worker (b again) while a runs: not a cold start
            restarted = ClusterNode(a.node.directory, ClusterConfig(1, "node2", "127.0.0.1", 20001),
                                    counts=b.rooms.counts, is_live=lambda r: False)
            await restarted.start()
            assert not restarted.cold_start and not await restarted.may_recover()
            await restarted.close()
        finally:
            await b.node.close()
    finally:
        await a.node.close()

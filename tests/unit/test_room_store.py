"""The RoomStore contract; every implementation runs this suite (Redis joins it when it exists)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from signaling.rooms import Room, RoomSettings
from signaling.store import MemoryStore, RoomStore


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    s: RoomStore = MemoryStore()
    yield s
    await s.close()


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

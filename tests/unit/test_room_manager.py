"""RoomManager: where rooms come to be.  max_rooms holds on every path (the API and a token)."""

import asyncio

import pytest

from signaling.errors import RoomNotFound, ServiceUnavailable
from signaling.room_manager import RoomManager
from signaling.rooms import Room, RoomSettings
from signaling.store import MemoryStore


class RemoteStore(MemoryStore):
    """A store whose calls take a round trip, as a networked one would (the memory store never yields)."""

    async def count_rooms(self, *, active_only: bool) -> int:
        n = await super().count_rooms(active_only=active_only)
        await asyncio.sleep(0.001)  # the answer travels back while others may create rooms
        return n

    async def get_room(self, room_id: str) -> Room | None:
        await asyncio.sleep(0.001)
        return await super().get_room(room_id)


def manager(max_rooms: int = 10) -> RoomManager:
    return RoomManager(MemoryStore(), clock=lambda: 1000.0, max_rooms=max_rooms)


async def test_opening_an_unknown_room_is_refused_unless_creation_is_allowed() -> None:
    rooms = manager()
    with pytest.raises(RoomNotFound):
        await rooms.open("nope", create=False)
    assert await rooms.store.get_room("nope") is None and rooms.live == {}
    live = await rooms.open("adhoc", create=True)
    assert live.room_id == "adhoc" and await rooms.store.get_room("adhoc") is live.room
    assert await rooms.open("adhoc", create=False) is live


async def test_max_rooms_holds_for_rooms_created_by_the_api_and_by_tokens() -> None:
    rooms = manager(max_rooms=2)
    await rooms.create(RoomSettings())
    await rooms.open("by-token", create=True)
    with pytest.raises(ServiceUnavailable):
        await rooms.open("one-too-many", create=True)
    with pytest.raises(ServiceUnavailable):
        await rooms.create(RoomSettings())
    assert await rooms.store.get_room("one-too-many") is None
    assert (await rooms.open("by-token", create=True)).room_id == "by-token"  # an existing room still opens
    await rooms.end("by-token")
    await rooms.open("another", create=True)  # an ended room no longer counts


async def test_concurrent_creations_do_not_pass_max_rooms_together() -> None:
    rooms = RoomManager(RemoteStore(), clock=lambda: 1000.0, max_rooms=3)
    results = await asyncio.gather(*(rooms.open(f"t{i}", create=True) for i in range(10)),
                                   *(rooms.create(RoomSettings()) for _ in range(10)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 3
    assert all(isinstance(r, ServiceUnavailable) for r in results if isinstance(r, BaseException))
    assert await rooms.store.count_rooms(active_only=True) == 3

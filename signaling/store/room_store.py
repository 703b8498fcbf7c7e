"""The RoomStore interface: where rooms live between requests.

The in-memory store keeps the live objects; a Redis store (for several processes or machines)
keeps the same data serialised, with the room pinned to the node that serves it.  Both pass the
same test suite (tests/unit/test_room_store.py runs it against every implementation).
"""

from __future__ import annotations

from typing import Protocol

from signaling.rooms import Room


class RoomStore(Protocol):
    async def create_room(self, room: Room) -> tuple[Room, bool]:
        """Store a new room, or return the existing active room with the same external_id.

        Returns (room, created).  Atomic: two concurrent creates with one external_id make one room.
        """
        ...

    async def get_room(self, room_id: str) -> Room | None: ...

    async def save_room(self, room: Room) -> None:
        """Persist the room's current state (participants, settings, ended)."""
        ...

    async def list_rooms(self, *, active_only: bool, offset: int, limit: int) -> tuple[list[Room], int]:
        """Rooms newest first, and how many there are in all."""
        ...

    async def count_rooms(self, *, active_only: bool) -> int: ...

    async def close(self) -> None: ...

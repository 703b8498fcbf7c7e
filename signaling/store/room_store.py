"""The RoomStore interface: where rooms live between requests.

The in-memory store keeps the live objects; the SQL store (SQLite or PostgreSQL, sql_store.py) keeps
the same objects in memory too and writes their durable state behind them.  Every implementation
passes the same suite (tests/unit/store/test_room_store.py).
"""

from __future__ import annotations

from typing import Protocol

from signaling.rooms import Room


class RoomStore(Protocol):
    async def open(self) -> None:
        """Connect (and migrate) before serving; idempotent."""
        ...

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

    async def flush(self) -> None:
        """Write every change made so far (a durable store writes behind; see sql_store)."""
        ...

    def counters(self) -> dict[str, dict[str, float]]:
        """For /metrics (urok_store_*): e.g. {"write_failures": {"": 2.0}}."""
        ...

    async def close(self) -> None: ...

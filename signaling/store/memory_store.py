"""The embedded default: rooms in this process's memory."""

from __future__ import annotations

import asyncio

from signaling.rooms import Room


class MemoryStore:
    def __init__(self, *, keep_ended: int = 10_000) -> None:
        self._rooms: dict[str, Room] = {}
        self._by_external: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._keep_ended = keep_ended

    async def open(self) -> None:
        return None

    async def flush(self) -> None:
        return None  # nothing is written anywhere

    async def create_room(self, room: Room) -> tuple[Room, bool]:
        async with self._lock:
            ext = room.settings.external_id
            if ext is not None:
                existing_id = self._by_external.get(ext)
                existing = self._rooms.get(existing_id) if existing_id else None
                if existing is not None and not existing.ended:
                    return existing, False
                self._by_external[ext] = room.room_id
            self._rooms[room.room_id] = room
            self._trim()
            return room, True

    def _trim(self) -> None:
        ended = [r for r in self._rooms.values() if r.ended]
        if len(ended) <= self._keep_ended:
            return
        ended.sort(key=lambda r: r.ended_at or 0.0)
        for r in ended[: len(ended) - self._keep_ended]:
            del self._rooms[r.room_id]

    async def get_room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def save_room(self, room: Room) -> None:
        self._rooms[room.room_id] = room  # the live object itself: nothing to serialise

    async def list_rooms(self, *, active_only: bool, offset: int, limit: int) -> tuple[list[Room], int]:
        rooms = [r for r in self._rooms.values() if not (active_only and r.ended)]
        rooms.sort(key=lambda r: (-r.created_at, r.room_id))
        return rooms[offset : offset + limit], len(rooms)

    async def count_rooms(self, *, active_only: bool) -> int:
        return sum(1 for r in self._rooms.values() if not (active_only and r.ended))

    def counters(self) -> dict[str, dict[str, float]]:
        return {}

    async def close(self) -> None:
        self._rooms.clear()
        self._by_external.clear()

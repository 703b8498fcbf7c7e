"""The service layer for rooms: create, find, end; one LiveRoom per room served here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from signaling import events as ev
from signaling.errors import RoomEnded, RoomNotFound, ServiceUnavailable
from signaling.events import EventSink, NoEvents
from signaling.rooms import Room, RoomSettings, new_id
from signaling.store import RoomStore
from signaling.ws.live_room import LiveRoom, RoomFeature

log = logging.getLogger("urok.rooms")

FeatureFactory = Callable[[LiveRoom], RoomFeature]


class RoomManager:
    def __init__(
        self,
        store: RoomStore,
        *,
        clock: Callable[[], float],
        ice_servers: Sequence[str] = (),
        max_rooms: int = 10_000,
        minute_s: float = 60.0,
        reconnect_window_s: float = 60.0,
        events: EventSink | None = None,
    ) -> None:
        self.store = store
        self.events: EventSink = events if events is not None else NoEvents()  # every room's (events.py)
        self.clock = clock
        self.minute_s = minute_s  # clock seconds per lesson minute (a test runs a short lesson with less)
        self.max_rooms = max_rooms
        self._ice = [{"urls": [u]} for u in ice_servers]
        self.live: dict[str, LiveRoom] = {}
        self.feature_factories: list[FeatureFactory] = []
        self._creating = asyncio.Lock()
        # Who the store brings back as present was cut off by the restart (it was this process's
        # start); they have reconnect_window_s to come back (the attendance merge gap: a reconnect
        # within it continues the same interval), then they leave as of the start.
        self.started_at = clock()
        self.reconnect_window_s = reconnect_window_s

    async def create(self, settings: RoomSettings) -> tuple[Room, bool]:
        return await self._create(Room(room_id=new_id("RM"), settings=settings, created_at=self.clock()))

    async def create_room(self, room: Room) -> tuple[Room, bool]:
        """A room a feature made whole (a lesson's occurrence: its settings and roster set by the
        lessons service): within max_rooms like any other, idempotent on its active external_id."""
        return await self._create(room)

    async def _create(self, room: Room) -> tuple[Room, bool]:
        """The one place a room comes to be (the API, or a token when rooms_created_by_token), so
        max_rooms holds whichever way; the lock keeps two creations from both passing the count."""
        async with self._creating:
            if await self.store.count_rooms(active_only=True) >= self.max_rooms:
                raise ServiceUnavailable(f"this server holds at most {self.max_rooms} active rooms")
            stored, created = await self.store.create_room(room)
        if created:
            log.info("room created", extra={"room_id": stored.room_id})
        return stored, created

    async def get(self, room_id: str) -> Room:
        live = self.live.get(room_id)
        if live is not None:
            return live.room
        room = await self.store.get_room(room_id)
        if room is None:
            raise RoomNotFound(f"no room {room_id!r}")
        await self._leave_absent(room)
        return room

    async def list_rooms(self, *, active_only: bool, offset: int, limit: int) -> tuple[list[Room], int]:
        """The store's rooms newest first (and how many), each as ``get`` gives it: after the
        reconnect window nobody the restart cut off is still listed as present."""
        rooms, total = await self.store.list_rooms(active_only=active_only, offset=offset, limit=limit)
        for room in rooms:
            if room.room_id not in self.live:
                await self._leave_absent(room)
        return rooms, total

    async def _leave_absent(self, room: Room) -> None:
        """A room not served here: nobody in it is connected.  Once the reconnect window is over,
        whoever the store still has as present leaves (the restart cut them off)."""
        if room.ended or self.clock() < self.started_at + self.reconnect_window_s:
            return
        joined, waited = room.leave_absent((), self.started_at)
        for p in joined:
            self._emit(room, ev.PARTICIPANT_LEFT, {"participant": ev.participant_data(p), "reason": "not_reconnected"})
        if joined or waited:
            await self.store.save_room(room)

    def _emit(self, room: Room, name: str, data: dict[str, Any]) -> None:
        """An event about a room not served here (LiveRoom.emit for one that is)."""
        self.events.emit(ev.room_event(room, name, self.clock(), data))

    async def open(self, room_id: str, *, create: bool) -> LiveRoom:
        """The live room for a joining participant.  A room named by a valid token that does not
        exist is refused (RoomNotFound), or created with default settings when ``create`` is true
        (the setting rooms_created_by_token, as LiveKit does), within max_rooms like any other."""
        live = self.live.get(room_id)
        if live is not None and not live.closed:
            return live
        room = await self.store.get_room(room_id)
        if room is None:
            if not create:
                raise RoomNotFound(f"no room {room_id!r}")
            room, _ = await self._create(Room(room_id=room_id, settings=RoomSettings(), created_at=self.clock()))
            live = self.live.get(room_id)  # another join created and opened it while we waited
            if live is not None and not live.closed:
                return live
        ends_at = room.ends_at(self.minute_s)
        if not room.ended and ends_at is not None and ends_at <= self.clock():
            room.end(ends_at)  # its time ran out while nobody was connected
            self._emit(room, ev.ROOM_ENDED, {"reason": "the lesson's time is up"})
            await self.store.save_room(room)
        if room.ended:
            raise RoomEnded("this lesson has ended")
        await self._leave_absent(room)
        live = LiveRoom(room, store=self.store, clock=self.clock, ice_servers=self._ice, minute_s=self.minute_s,
                        events=self.events)
        live.features = [factory(live) for factory in self.feature_factories]
        live.on_end = self._forget
        self.live[room_id] = live
        if room.present():  # within the window: those who do not come back in time leave then
            live.leave_absent_after(self.started_at + self.reconnect_window_s - self.clock(), at=self.started_at)
        return live

    def _forget(self, live: LiveRoom) -> None:
        if self.live.get(live.room_id) is live:
            del self.live[live.room_id]

    async def end(self, room_id: str, *, reason: str = "ended by a host") -> Room:
        room = await self.get(room_id)
        live = self.live.pop(room_id, None)
        if live is not None:
            await live.end(reason=reason)
        elif not room.ended:
            room.end(self.clock())
            self._emit(room, ev.ROOM_ENDED, {"reason": reason})
            await self.store.save_room(room)
        log.info("room ended", extra={"room_id": room_id})
        return room

    def release_if_empty(self, live: LiveRoom) -> None:
        """Nobody is connected: stop serving the room here (its record stays in the store)."""
        if not live.sessions and self.live.get(live.room_id) is live:
            live.cancel_timer()
            del self.live[live.room_id]

    def counts(self) -> dict[str, Any]:
        joined = sum(lr.room.num_joined for lr in self.live.values())
        waiting = sum(len(lr.room.waiting()) for lr in self.live.values())
        return {"rooms": len(self.live), "participants": joined, "waiting": waiting}

    async def shutdown(self) -> None:
        for live in list(self.live.values()):
            await live.shutdown()
        self.live.clear()

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
from signaling.ws.live_room import TIME_UP, LiveRoom, RoomFeature

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
        # A served room's own timer ends it on time; one nobody is connected to (all left a minute
        # early, the server restarted) has a deadline here instead, or it would never end: no
        # room_ended, no attendance_ready, the journal never hears of the lesson.
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._ending: set[asyncio.Task[bool]] = set()

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
            self.watch_end(stored)  # a lesson's room ends by its timetable even if nobody comes in
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
            self._end_unserved(room, at=ends_at, reason=TIME_UP)  # its time ran out while nobody was connected
            await self.store.save_room(room)
        if room.ended:
            raise RoomEnded("this lesson has ended")
        await self._leave_absent(room)
        live = LiveRoom(room, store=self.store, clock=self.clock, ice_servers=self._ice, minute_s=self.minute_s,
                        events=self.events)
        live.features = [factory(live) for factory in self.feature_factories]
        live.on_end = self._forget
        self.live[room_id] = live
        self._unwatch(room_id)  # served: the live room's timer ends it
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
            self._end_unserved(room, at=self.clock(), reason=reason)
            await self.store.save_room(room)
        log.info("room ended", extra={"room_id": room_id})
        return room

    def _end_unserved(self, room: Room, *, at: float, reason: str) -> None:
        """End a room not served here, with the events LiveRoom.end gives: whoever the store still
        has in it (the reconnect window after a restart) leaves, then room_ended.  The caller saves."""
        joined = {p.participant_id for p in room.joined()}
        for p in room.end(at):
            if p.participant_id in joined:
                self._emit(room, ev.PARTICIPANT_LEFT, {"participant": ev.participant_data(p), "reason": "room_ended"})
        self._emit(room, ev.ROOM_ENDED, {"reason": reason})

    def release_if_empty(self, live: LiveRoom) -> None:
        """Nobody is connected: stop serving the room here (its record stays in the store); a room
        with an end still ends then (``watch_end``)."""
        if not live.sessions and self.live.get(live.room_id) is live:
            live.cancel_timer()
            del self.live[live.room_id]
            self.watch_end(live.room)

    # --- rooms that end while nobody is connected ------------------------------------------
    def watch_end(self, room: Room) -> None:
        """End ``room`` at its end if it is not served here then (a served room's timer does it)."""
        ends_at = room.ends_at(self.minute_s)
        if room.ended or ends_at is None or room.room_id in self.live:
            return
        self._unwatch(room.room_id)
        self._deadlines[room.room_id] = asyncio.get_running_loop().call_later(
            max(0.0, ends_at - self.clock()), self._deadline, room.room_id)

    async def watch_ends(self) -> int:
        """After a start: every active room gets its deadline (one whose end passed while the server
        was down ends now, as of its end).  All pages are read before any room ends, so the ending
        does not shift the pages.  Returns how many rooms have one."""
        active: list[Room] = []
        while True:
            page, total = await self.store.list_rooms(active_only=True, offset=len(active), limit=500)
            active += page
            if not page or len(active) >= total:
                break
        for room in active:
            self.watch_end(room)
        return len(self._deadlines)

    def _unwatch(self, room_id: str) -> None:
        handle = self._deadlines.pop(room_id, None)
        if handle is not None:
            handle.cancel()

    def _deadline(self, room_id: str) -> None:
        self._deadlines.pop(room_id, None)
        task = asyncio.create_task(self.end_if_due(room_id), name=f"room-deadline-{room_id}")
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def end_if_due(self, room_id: str) -> bool:
        """End a room nobody is connected to whose end has come (as of that end).  A room served
        again, ended meanwhile or extended is left alone (an extended one is watched again)."""
        try:
            room = await self.store.get_room(room_id)
            if room is None or room.ended or room_id in self.live:
                return False
            ends_at = room.ends_at(self.minute_s)
            if ends_at is None:
                return False
            if ends_at > self.clock():
                self.watch_end(room)
                return False
            self._end_unserved(room, at=ends_at, reason=TIME_UP)
            await self.store.save_room(room)
            log.info("room ended on time with nobody connected", extra={"room_id": room_id})
            return True
        except Exception:  # a store outage: the next start (watch_ends) ends it
            log.exception("ending a room at its end failed", extra={"room_id": room_id})
            return False

    def counts(self) -> dict[str, Any]:
        joined = sum(lr.room.num_joined for lr in self.live.values())
        waiting = sum(len(lr.room.waiting()) for lr in self.live.values())
        return {"rooms": len(self.live), "participants": joined, "waiting": waiting}

    def stop_watching(self) -> None:
        """The server stops: no room ends by a deadline any more (the next start watches them again)."""
        for room_id in list(self._deadlines):
            self._unwatch(room_id)

    async def shutdown(self) -> None:
        self.stop_watching()
        for task in list(self._ending):
            task.cancel()
        for live in list(self.live.values()):
            await live.shutdown()
        self.live.clear()

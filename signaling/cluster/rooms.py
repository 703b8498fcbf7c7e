"""The RoomManager of one worker among several: a room is served only by the worker holding its
lease, and what the shared database says wins over what this process remembers.

RoomManager assumes one process: a room not served here is served nowhere, so this process may end
it at its deadline, and after a start whoever the store has as present was cut off by that start.
With several workers both are wrong; this subclass changes exactly those points:
  * a room opened here was claimed first (ClusterNode.place) and is read fresh from the database
    (another worker served it last: the store's identity map may hold an old copy);
  * who the store has as present in a room opened here was cut off when its last owner stopped:
    the reconnect window runs from the moment this worker took the room over (not from this
    process' start, which may be long before), and they leave as of then if they do not come back;
  * a room no longer served here is written, its lease released and its copy dropped;
  * a deadline ends a room only if this worker can take its lease (one worker ends it, once);
  * a room nobody serves whose store still has people in it (its worker died and nobody came back)
    has them leave once it has been without an owner for the reconnect window (``sweep_absent``,
    under its lease: one worker tells the webhooks and the attendance they left);
  * REST reads of rooms not served here read the database, not a copy kept from earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from signaling import events as ev
from signaling.cluster.node import ClusterNode
from signaling.errors import ServiceUnavailable
from signaling.events import NoEvents
from signaling.room_manager import RoomManager
from signaling.rooms import Room
from signaling.ws.live_room import LiveRoom

log = logging.getLogger("urok.cluster")

END_CHANNEL = "end_room"  # another worker asks the room's owner to end it
END_WAIT_S = 5.0
ABSENT_SWEEP_S = 5.0  # how often a worker looks for rooms left with people in and nobody serving them
SERVICE_RESTART = 1012  # RFC 6455: the client reconnects (and is relayed to the room's new owner)


@runtime_checkable
class ForgettingStore(Protocol):
    async def forget(self, keep: Any, *, write: bool = True) -> int: ...


class _NoWrites:
    """What a room whose lease was lost writes through: nothing (the new owner's state wins)."""

    async def save_room(self, room: Room) -> None:
        return None


class ClusterRooms(RoomManager):
    node: ClusterNode

    def attach(self, node: ClusterNode) -> None:
        self.node = node
        node.on_lost = self.lost
        self._opening: dict[str, int] = {}  # rooms being opened (joins at once: how many)
        self._tasks: set[asyncio.Task[None]] = set()
        self._open_locks: dict[str, asyncio.Lock] = {}
        self._unowned: dict[str, float] = {}  # room id -> when this worker first saw it with people, unserved
        self._sweeper: asyncio.Task[None] | None = None

    def _keep(self, room_id: str) -> bool:
        return room_id in self.live or room_id in self._opening

    async def _drop_copies(self) -> None:
        """Rooms not served here are read from the database next time (see the module's text)."""
        if isinstance(self.store, ForgettingStore):
            await self.store.forget(self._keep)

    async def open(self, room_id: str, *, create: bool) -> LiveRoom:
        live = self.live.get(room_id)
        if live is not None and not live.closed:
            return live
        # one opening at a time per room: after a failover every participant comes back at once,
        # and two joins that both passed the check above made two LiveRooms (each with part of the
        # people, who then did not hear each other); the later ones find the first's room here
        lock = self._open_locks.setdefault(room_id, asyncio.Lock())
        try:
            async with lock:
                return await self._open(room_id, create=create)
        finally:
            if not lock.locked() and self._open_locks.get(room_id) is lock:
                del self._open_locks[room_id]

    async def _open(self, room_id: str, *, create: bool) -> LiveRoom:
        live = self.live.get(room_id)
        if live is not None and not live.closed:
            return live
        await self._drop_copies()  # this room's copy too (created here, served elsewhere since): read afresh
        self._opening[room_id] = self._opening.get(room_id, 0) + 1
        try:
            # the reconnect window of whoever the store has as present starts now: this worker took
            # the room over now (RoomManager.open reads started_at; _leave_absent is off below)
            self.started_at = self.clock()
            return await super().open(room_id, create=create)
        except BaseException:
            if room_id not in self.live:
                self._spawn(self._let_go(room_id))
            raise
        finally:
            self._opening[room_id] -= 1
            if not self._opening[room_id]:
                del self._opening[room_id]

    async def _leave_absent(self, room: Room) -> None:
        """Off: a room not served here may be served by another worker right now; the worker that
        takes a room over runs its reconnect window (open above)."""
        return None

    async def get(self, room_id: str) -> Room:
        if room_id not in self.live:
            await self._drop_copies()
        return await super().get(room_id)

    async def list_rooms(self, *, active_only: bool, offset: int, limit: int) -> tuple[list[Room], int]:
        await self._drop_copies()
        return await super().list_rooms(active_only=active_only, offset=offset, limit=limit)

    async def end(self, room_id: str, *, reason: str = "ended by a host") -> Room:
        """A room served here ends here; one another worker serves is ended by that worker (a
        cluster event: the BigBlueButton API or a cancelled lesson may ask any worker), and this
        waits until the database says so; one nobody serves is ended here under its lease."""
        if room_id in self.live:
            return await super().end(room_id, reason=reason)
        if await self.node.owner_url(room_id) is not None:
            await self.node.publish(END_CHANNEL, {"room_id": room_id, "reason": reason})
            for _ in range(int(END_WAIT_S / 0.1)):
                await asyncio.sleep(0.1)
                await self._drop_copies()
                room = await super().get(room_id)
                if room.ended:
                    return room
            raise ServiceUnavailable("the worker serving this room did not end it in time; try again")
        claimed = await self.node.claim(room_id)  # ended by this worker: nobody opens it meanwhile
        try:
            await self._drop_copies()
            return await super().end(room_id, reason=reason)
        finally:
            if claimed:
                await self._let_go(room_id)

    async def sweep_absent(self) -> int:
        """Rooms nobody serves whose store still has people in them (their worker died, nobody came
        back: RoomManager's _leave_absent is off here): once a room has been seen without an owner
        for ``reconnect_window_s``, its people leave (``not_reconnected``) as of when it was first
        seen so, under its lease.  Returns how many rooms were swept."""
        now = self.clock()
        await self._drop_copies()
        active: list[Room] = []
        while True:
            page, total = await self.store.list_rooms(active_only=True, offset=len(active), limit=500)
            active += page
            if not page or len(active) >= total:
                break
        unowned: dict[str, float] = {}
        swept = 0
        for room in active:
            rid = room.room_id
            if self._keep(rid) or not room.present() or await self.node.owner_url(rid) is not None:
                continue
            since = unowned[rid] = self._unowned.get(rid, now)
            if now - since < self.reconnect_window_s:
                continue
            async with self.hold(rid) as held:
                if not held:
                    continue
                await self._drop_copies()
                fresh = await self.store.get_room(rid)
                if fresh is None or fresh.ended:
                    continue
                joined, waited = fresh.leave_absent((), since)
                for p in joined:
                    self._emit(fresh, ev.PARTICIPANT_LEFT, {"participant": ev.participant_data(p),
                                                            "reason": "not_reconnected"})
                if joined or waited:
                    await self.store.save_room(fresh)
                    swept += 1
                    log.info("room %s: %d people never came back after its worker was lost; they left", rid,
                             len(joined) + len(waited))
                del unowned[rid]
        self._unowned = unowned
        return swept

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(ABSENT_SWEEP_S)
            try:
                await self.sweep_absent()
            except Exception:  # the store or the directory away: the next round
                log.exception("looking for rooms left with people in and nobody serving them failed")

    async def listen(self) -> None:
        """Take the other workers' requests to end a room served here (``end``); start the sweep of
        rooms left with people in them."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweeping(), name="urok-absent-sweep")

        async def end_here(event: dict[str, Any]) -> None:
            room_id = str(event.get("room_id", ""))
            if room_id in self.live:
                await super(ClusterRooms, self).end(room_id, reason=str(event.get("reason") or "ended by a host"))

        await self.node.on_others(END_CHANNEL, end_here)

    def _forget(self, live: LiveRoom) -> None:  # the room ended
        super()._forget(live)
        if live.room_id not in self.live:
            self._spawn(self._let_go(live.room_id))

    def release_if_empty(self, live: LiveRoom) -> None:
        super().release_if_empty(live)
        if live.room_id not in self.live and live.room_id not in self._opening:
            self._spawn(self._let_go(live.room_id))

    async def _let_go(self, room_id: str) -> None:
        """Not served here any more: its changes are written before the lease goes, so the next
        owner reads them; then this process' copy goes too."""
        try:
            await self.store.flush()
        except Exception:
            log.exception("room %s: writing it before releasing it failed", room_id)
        if self._keep(room_id):  # opened again meanwhile
            return
        await self.node.release(room_id)
        await self._drop_copies()

    async def end_if_due(self, room_id: str) -> bool:
        if room_id in self.live:
            return False
        if not await self.node.claim(room_id):
            return False  # another worker serves it (its timer ends it) or ends it now
        try:
            await self._drop_copies()
            return await super().end_if_due(room_id)
        finally:
            await self._let_go(room_id)

    @contextlib.asynccontextmanager
    async def hold(self, room_id: str) -> AsyncIterator[bool]:
        """The room's lease held while a feature works on a room nobody serves (recordings/: the
        recording of a worker that died, recovered by a survivor); yields False when another worker
        serves it.  Let go afterwards unless the room was opened here meanwhile."""
        if not await self.node.claim(room_id):
            yield False
            return
        try:
            yield True
        finally:
            await self._let_go(room_id)

    async def lost(self, room_id: str) -> None:
        """Another worker holds this room's lease now: stop serving it without writing (its state
        is the new owner's); the sockets close with 1012 and the clients reconnect to the owner."""
        live = self.live.pop(room_id, None)
        if live is None:
            return
        live.store = _NoWrites()  # type: ignore[assignment]
        live.events = NoEvents()  # nor events: its people did not leave (webhooks got participant_left for each)
        live.cancel_timer()
        for s in list(live.sessions.values()):
            s.close_soon(SERVICE_RESTART, "the lesson moved to another worker; reconnecting")
        for f in live.features:
            try:
                await f.close()
            except Exception:
                log.exception("room %s: closing a feature failed", room_id)
        live.closed = True
        if isinstance(self.store, ForgettingStore):
            await self.store.forget(self._keep, write=False)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().shutdown()
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["ClusterRooms"]

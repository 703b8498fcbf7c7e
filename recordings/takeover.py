"""A recording whose worker died (``urok serve --workers N``, kill -9, a lost machine): finished and
recovered by a surviving worker, and the lesson's recording goes on in a new recording linked to it.

One process writes a recording from its start to its end (its RoomRecorder, its manifest, its
timeline).  So the worker that takes a room over does not reopen the dead worker's files: it
  * starts a new recording of the room at once, linked to the first (``continues``: its manifest,
    the ``recording_started`` event and webhook), by whoever started the first, with no action by
    the teacher; the clients are told with ``recording_started`` as for any start;
  * then repairs the first one's files (the same repair as a restart's, recording_service.recover)
    and marks it ``recovered``: listed and downloadable like any, composed on request; the room's
    webhooks get the ``recording_stopped`` nobody sent (``state: "recovered"``).
That worker is the one that opens the room for the first participant who comes back
(``room_opened``).  If nobody comes back, any worker notices it: every ``SWEEP_S`` each one looks
for recordings left ``recording`` whose room has no owner; one seen that way for ``GRACE_S`` (the
clients had their time to come back) is recovered under the room's lease (ClusterRooms.hold), and
the lesson's recording does not go on when the room is opened again later.

Only a worker among others does this (a single process recovers at its next start).  A recording is
taken over only when this worker holds its room's lease (served here, or held for the sweep): a
worker that lost the lease stops writing when it notices (ClusterRooms.lost) and, finding the record
no longer ``recording``, leaves it as it is (RecordingService.stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from recordings.errors import AlreadyRecording, RecordingDiskFull, RecordingNotAllowed, RecordingUnavailable
from recordings.recording import Recording, RecordingState
from recordings.recording_service import RecordingService
from recordings.recording_store import RecordingQuery

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom

log = logging.getLogger("urok.recording")

SWEEP_S = 5.0  # how often a worker looks for recordings whose worker died
GRACE_S = 10.0  # how long such a recording's room stays unowned before a sweep recovers it
FIND_LIMIT = 200

Hold = Callable[[str], contextlib.AbstractAsyncContextManager[bool]]  # ClusterRooms.hold
Unowned = Callable[[str], Awaitable[bool]]  # no worker holds the room's lease (False if unknown)
Served = Callable[[str], bool]  # the room is live on this worker
EmitUnserved = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # room id, event, data


def stopped_event(rec: Recording) -> dict[str, Any]:
    """The ``recording_stopped`` a dead worker could not send (webhooks)."""
    return {"recording_id": rec.recording_id, "by": None, "duration_s": rec.duration_s, "state": rec.state.value,
            "reason": "worker_lost", "group_id": rec.group_id}


class RecordingTakeover:
    def __init__(self, service: RecordingService, *, hold: Hold, unowned: Unowned, served: Served,
                 emit_unserved: EmitUnserved, sweep_s: float = SWEEP_S, grace_s: float = GRACE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.hold = hold
        self.unowned = unowned
        self.served = served
        self.emit_unserved = emit_unserved
        self.sweep_s = sweep_s
        self.grace_s = grace_s
        self.monotonic = monotonic
        self._recovering: set[str] = set()  # recording ids being recovered in this process
        self._suspects: dict[str, float] = {}  # recording id -> when a sweep first saw its room unowned
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._run(), name="recording-takeover")

    async def close(self) -> None:
        for task in [t for t in (self._loop, *self._tasks) if t is not None]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- orphans -----------------------------------------------------------------------------
    async def _orphans(self, room_id: str | None, *, before: float | None = None) -> list[Recording]:
        """Recordings left ``recording`` that this process is not writing (nor starting, nor
        recovering); of one room, started before ``before`` (a later one is this worker's own)."""
        found, _ = await self.service.store.find(RecordingQuery(room_id=room_id, state=RecordingState.RECORDING),
                                                 offset=0, limit=FIND_LIMIT)
        here = self.service.written_here() | self._recovering
        return [r for r in found if r.recording_id not in here and not self.service.starting(r.room_id)
                and (before is None or r.started_at < before)]

    @contextlib.asynccontextmanager
    async def _claimed(self, recs: list[Recording]) -> AsyncIterator[list[Recording]]:
        ids = {r.recording_id for r in recs} - self._recovering
        self._recovering |= ids
        try:
            yield [r for r in recs if r.recording_id in ids]
        finally:
            self._recovering -= ids

    # --- the room taken over -----------------------------------------------------------------
    async def room_opened(self, live: LiveRoom, *, opened_at: float) -> bool:
        """The first participant is in a room this worker just opened: if its recording was being
        written by a worker that died, the recording goes on (a new one, linked) and the first is
        recovered in the background.  Returns whether there was one (then no auto start)."""
        try:
            orphans = await self._orphans(live.room_id, before=opened_at)
        except Exception:  # the store is away: the lesson goes on; a sweep tries later
            log.exception("room %s: looking for an interrupted recording failed", live.room_id)
            return False
        if not orphans:
            return False
        mine = [r for r in orphans if r.recording_id not in self._recovering]
        self._recovering |= {r.recording_id for r in mine}  # until recovered (_recover)
        main = [r for r in mine if r.group_id is None]
        try:
            if main and live.room_id not in self.service.active and not live.closed:
                first = max(main, key=lambda r: r.started_at)
                try:  # media first: the teacher republishes within a second or two of coming back
                    rec = await self.service.start(live, by=first.started_by, continues=first.recording_id)
                    log.info("recording %s goes on as %s after its worker died", first.recording_id,
                             rec.recording_id, extra={"room_id": live.room_id})
                except (AlreadyRecording, RecordingDiskFull, RecordingNotAllowed, RecordingUnavailable) as e:
                    live.to_moderators({"event": "recording_failed", "recording_id": None,
                                        "reason": e.code, "message": e.message})
        finally:
            self._spawn(self._recover(live, mine))
        return True

    async def _recover(self, live: LiveRoom, recs: list[Recording]) -> None:
        try:
            for rec in recs:
                done = await self.service.recover_one(rec)
                live.emit("recording_stopped", stopped_event(done))
        except Exception:
            log.exception("room %s: recovering an interrupted recording failed", live.room_id)
        finally:
            self._recovering -= {r.recording_id for r in recs}

    # --- nobody came back --------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("looking for recordings of dead workers failed; it goes on")

    async def sweep(self) -> list[str]:
        """One look for recordings whose worker died and whose room nobody took over; returns the
        ids recovered now."""
        now = self.monotonic()
        seen: dict[str, float] = {}
        due: list[Recording] = []
        for rec in await self._orphans(None):
            if self.served(rec.room_id) or not await self.unowned(rec.room_id):
                continue
            first = self._suspects.get(rec.recording_id, now)
            seen[rec.recording_id] = first
            if now - first >= self.grace_s:
                due.append(rec)
        self._suspects = seen
        done: list[str] = []
        for room_id in sorted({r.room_id for r in due}):
            async with self.hold(room_id) as held:
                if not held or self.served(room_id):  # taken over meanwhile: room_opened's
                    continue
                # read again under the lease: a join may have come and gone meanwhile
                fresh = {r.recording_id for r in await self._orphans(room_id)}
                async with self._claimed([r for r in due if r.room_id == room_id and r.recording_id in fresh]) as recs:
                    for rec in recs:
                        rec2 = await self.service.recover_one(rec)
                        await self.emit_unserved(room_id, "recording_stopped", stopped_event(rec2))
                        done.append(rec.recording_id)
                        self._suspects.pop(rec.recording_id, None)
        return done


__all__ = ["GRACE_S", "SWEEP_S", "RecordingTakeover", "stopped_event"]

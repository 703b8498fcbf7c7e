"""Wires recording into the app: app keys, room features, lifecycle (recordings/)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from recordings.board_frames import board_timelines_of
from recordings.composition_runner import CompositionRunner
from recordings.errors import AlreadyRecording, RecordingDiskFull, RecordingNotAllowed, RecordingUnavailable
from recordings.recording_service import RecordingService
from recordings.recording_store import MemoryRecordingStore, RecordingStore
from recordings.sql_recording_store import SqlRecordingStore
from recordings.takeover import RecordingTakeover, stopped_event
from signaling.app_keys import CLOCK, CLUSTER, EVENTS, ROOMS, SETTINGS, STORE
from signaling.events import RoomEvent, room_event
from signaling.rooms import Participant
from signaling.settings import DEV_API_SECRET, Settings
from signaling.store.sql_store import SqlStore

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

RECORDINGS = web.AppKey("recordings", RecordingService)
log = logging.getLogger("urok.recording")
CHAT_DELETED = "chat_deleted"  # the room event chat_handlers emits (a message left the record)


def make_recording_store(store: object) -> RecordingStore:
    if isinstance(store, SqlStore):
        sql = store
        return SqlRecordingStore(lambda: sql.engine)
    return MemoryRecordingStore()


def recordings_root(settings: Settings) -> Path:
    return Path(settings.recordings_dir) if settings.recordings_dir else Path(settings.data_dir) / "recordings"


class RecordingFeature:
    """Per room: late joiners learn that the lesson is being recorded; auto_start; the room's end
    stops its recording."""

    def __init__(self, live: LiveRoom, service: RecordingService, takeover: RecordingTakeover | None = None) -> None:
        self.live = live
        self.service = service
        self.takeover = takeover  # a worker among others: a dead worker's recording goes on here
        self.opened_at = service.clock()  # the room opened (taken over) here now
        self._auto_tried = False

    async def on_joined(self, session: Session) -> None:
        if self.takeover is not None:
            takeover, self.takeover = self.takeover, None  # once per served room: its first join
            self._auto_tried = True  # not meanwhile: a continued recording is this room's recording
            if await takeover.room_opened(self.live, opened_at=self.opened_at):
                return  # recording_started went to everyone, this session included
            self._auto_tried = False
        state = self.service.state_event(self.live.room_id)
        if state is not None:
            session.send_event("recording_started", **state)
        settings = self.live.room.settings.recording
        if settings.auto_start and settings.allowed and not self._auto_tried and state is None:
            self._auto_tried = True  # once per served room: a host who stops it keeps it stopped
            try:
                await self.service.start(self.live, by=None)
            except (AlreadyRecording, RecordingDiskFull, RecordingNotAllowed, RecordingUnavailable) as e:
                self.live.to_moderators({"event": "recording_failed", "recording_id": None,
                                         "reason": e.code, "message": e.message})

    async def on_left(self, session: Session) -> None:
        return None

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        return None  # a muted producer sends nothing; the file has a gap on the same timeline

    async def close(self) -> None:
        await self.service.room_closed(self.live)


def captions_of(app: web.Application) -> Callable[[str, float, float], Awaitable[str | None]]:
    """The room's captions over a time as WebVTT, from the transcription feature when the server has
    it (looked up when asked: the features are set up in any order)."""

    async def captions(room_id: str, start: float, end: float) -> str | None:
        try:
            from transcription.feature import TRANSCRIPTION
            from transcription.transcript_store import captions_vtt
        except ImportError:
            return None
        service = app.get(TRANSCRIPTION)
        if service is None:
            return None
        return await captions_vtt(service.store, room_id, start, end)

    return captions


def setup_recordings(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""
    settings = app[SETTINGS]
    store = make_recording_store(app[STORE])
    composer = CompositionRunner(concurrency=settings.compose_concurrency, nice=settings.compose_nice,
                                 width=settings.compose_width, height=settings.compose_height,
                                 fps=settings.compose_fps, layout=settings.compose_layout)
    service = RecordingService(store, recordings_root(settings), secret=settings.api_secret or DEV_API_SECRET,
                               min_free_mb=settings.recording_min_free_mb,
                               retention_days=settings.recording_retention_days, composer=composer,
                               clock=app[CLOCK], captions=captions_of(app),
                               board=board_timelines_of(app))
    app[RECORDINGS] = service
    takeovers: list[RecordingTakeover] = []  # a worker among others: made at start (the cluster's node)
    app[ROOMS].feature_factories.append(
        lambda live: RecordingFeature(live, service, takeovers[0] if takeovers else None))
    pending: set[asyncio.Task[None]] = set()

    def on_event(event: RoomEvent) -> None:
        if event.name != CHAT_DELETED:
            return
        live = app[ROOMS].live.get(event.room_id)
        if live is not None:
            task = asyncio.get_running_loop().create_task(service.chat_deleted(live))
            pending.add(task)
            task.add_done_callback(pending.discard)

    app[EVENTS].subscribe(on_event)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        cluster = app.get(CLUSTER)  # several workers: one recovers, at a cold start (ClusterNode.may_recover)
        # the recording_stopped a dead server could not send (webhooks): once, by the process recovering
        await service.open(recover=cluster is None or await cluster.may_recover(),
                           on_recovered=lambda rec: emit_unserved(app, rec.room_id, "recording_stopped",
                                                                  stopped_event(rec)))
        if cluster is not None:
            takeovers.append(make_takeover(app, service))
            takeovers[0].start()
        yield
        for takeover in takeovers:
            await takeover.close()
        await service.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)


def recording_feature_of(live: LiveRoom) -> RecordingFeature:
    for feature in live.features:
        if isinstance(feature, RecordingFeature):
            return feature
    raise RecordingUnavailable("recording is not set up on this server")


def make_takeover(app: web.Application, service: RecordingService) -> RecordingTakeover:
    """The recordings of a dead worker, for one worker among others (recordings/takeover.py)."""
    from signaling.cluster.directory import DirectoryUnavailable
    from signaling.cluster.rooms import ClusterRooms

    node, rooms = app[CLUSTER], app[ROOMS]
    assert isinstance(rooms, ClusterRooms)

    async def unowned(room_id: str) -> bool:
        try:
            return await node.directory.owner(room_id) is None
        except DirectoryUnavailable:
            return False  # unknown: not now

    async def emit(room_id: str, name: str, data: dict[str, Any]) -> None:
        await emit_unserved(app, room_id, name, data)

    return RecordingTakeover(service, hold=rooms.hold, unowned=unowned, served=lambda room_id: room_id in rooms.live,
                             emit_unserved=emit)


async def emit_unserved(app: web.Application, room_id: str, name: str, data: dict[str, Any]) -> None:
    """A recording event of a room nobody serves here (its webhooks: the room's event bus)."""
    try:
        room = await app[ROOMS].get(room_id)
    except Exception:  # the room is gone (deleted): nobody to tell
        log.warning("room %s: %s not emitted (no room)", room_id, name)
        return
    app[EVENTS].emit(room_event(room, name, app[CLOCK](), data))

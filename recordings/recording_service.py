"""Recording, app-wide: start and stop a room's recording (rights and room settings checked by the
callers and here), tell the room, keep the record in the store, compose the video afterwards, and
look after recordings at startup (repair what a crash left) and over time (retention).

One recording per room at a time; its files live in ``<recordings_dir>/<recording_id>/``
(manifest.json, one file per track, speakers.jsonl, chat.vtt, lesson.mp4: docs/recording.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recordings.board_frames import BOARD_DIR, BoardTimelines, write_board_stills_apart
from recordings.chat_vtt import chat_vtt, write_chat_vtt
from recordings.composition_runner import CompositionRunner
from recordings.download_tokens import DownloadTokens
from recordings.errors import (
    AlreadyRecording,
    NotRecording,
    RecordingBusy,
    RecordingDiskFull,
    RecordingNotAllowed,
    RecordingNotFound,
    RecordingUnavailable,
)
from recordings.manifest import CHAT, COMPOSED, Manifest, read_manifest, write_manifest
from recordings.recording import Recording, RecordingState, TrackInfo
from recordings.recording_store import RecordingQuery, RecordingStore
from recordings.room_recorder import Keep, RecordingFailed, RoomRecorder
from recordings.track_writer import TrackWriteError, repair
from signaling.media.media_feature import MediaFeature, media_feature_of
from signaling.rooms.live_breakouts import LiveBreakouts

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom

log = logging.getLogger("urok.recording")

Captions = Callable[[str, float, float], Awaitable[str | None]]
CAPTIONS = "captions.vtt"
RETENTION_INTERVAL_S = 3600.0  # how often expired recordings are looked for
RETENTION_BATCH = 100


@dataclass(slots=True)
class Active:
    recording: Recording
    recorder: RoomRecorder
    live: LiveRoom
    breakouts: LiveBreakouts | None = None
    listener: Callable[[], None] | None = None  # subscribed to the breakouts' place changes
    groups: dict[str, Active] = field(default_factory=dict)  # group id -> its own recording (record_groups)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # group recordings start and stop in order
    continues: str | None = None  # the recording this one goes on from (recordings/takeover.py)


def breakouts_in(live: LiveRoom) -> LiveBreakouts | None:
    for feature in live.features:
        if isinstance(feature, LiveBreakouts):
            return feature
    return None


def track_infos(directory: Path, manifest: Manifest) -> tuple[TrackInfo, ...]:
    out = []
    for t in manifest.tracks:
        path = directory / t.file
        size = path.stat().st_size if path.exists() else 0
        out.append(TrackInfo(file=t.file, participant_id=t.participant_id, name=t.name, source=t.source,
                             kind=t.kind, codec=t.codec, start=t.start, end=t.end, size_bytes=size))
    return tuple(out)


def dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) if directory.is_dir() else 0


class RecordingService:
    def __init__(self, store: RecordingStore, root: Path, *, secret: str, min_free_mb: int, retention_days: int,
                 composer: CompositionRunner, clock: Callable[[], float],
                 captions: Captions | None = None, board: BoardTimelines | None = None) -> None:
        """``captions(room_id, start, end)``: the room's captions over that time as WebVTT, or None
        (no live captions on this server; the audio issue's transcription).  ``board(room_id,
        until)``: the room's whiteboard over the lesson (recordings/board_frames.py), or None."""
        self.store = store
        self.root = root
        self.min_free_bytes = min_free_mb * 2**20
        self.retention_days = retention_days
        self.composer = composer
        self.clock = clock
        self.captions = captions
        self.board = board
        self.tokens = DownloadTokens(secret)
        self.active: dict[str, Active] = {}  # room id -> the recording being written
        self._lives: dict[str, LiveRoom] = {}  # rooms with a recording made in this process
        self._starting: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retention: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def open(self, *, recover: bool = True,
                   on_recovered: Callable[[Recording], Awaitable[None]] | None = None) -> None:
        """``recover``: false for a worker that others run beside (signaling/cluster: may_recover);
        ``on_recovered``: told of each recording recovered (its webhook, feature.py)."""
        if recover:
            await self.recover(on_recovered)  # the directory itself is made by the first recording
        self._retention = asyncio.get_running_loop().create_task(self._retention_loop(), name="recording-retention")

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        for room_id in list(self.active):
            with contextlib.suppress(Exception):
                await self.stop(room_id, by=None, compose=False)
        for task in list(self._tasks):
            task.cancel()
        await self.composer.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def directory(self, recording_id: str) -> Path:
        return self.root / recording_id

    # --- control -----------------------------------------------------------------------------
    def state_event(self, room_id: str) -> dict[str, Any] | None:
        """What a late joiner is told: the recording running now, if any."""
        a = self.active.get(room_id)
        if a is None:
            return None
        state: dict[str, Any] = {"recording_id": a.recording.recording_id, "started_at": a.recording.started_at,
                                 "by": a.recording.started_by}
        if a.continues is not None:
            state["continues"] = a.continues
        return state

    def written_here(self) -> set[str]:
        """The recordings this process is writing (the room's and its groups')."""
        return {x.recording.recording_id for a in self.active.values() for x in (a, *a.groups.values())}

    def starting(self, room_id: str) -> bool:
        return room_id in self._starting

    async def start(self, live: LiveRoom, *, by: str | None, continues: str | None = None) -> Recording:
        """``continues``: the recording this one goes on from, whose worker died (recordings/takeover.py)."""
        room = live.room
        if not room.settings.recording.allowed:
            raise RecordingNotAllowed("recording is not allowed in this room (its settings: recording.allowed)")
        if live.room_id in self.active or live.room_id in self._starting:
            raise AlreadyRecording("this lesson is already being recorded")
        media = media_feature_of(live)
        if media is None or live.closed:
            raise RecordingUnavailable("this room has no media to record")
        breakouts = breakouts_in(live)
        keep: Keep | None = None
        if breakouts is not None:
            br = breakouts

            def keep(pid: str, audio: bool) -> bool:  # the main room's recording: the main room's tracks
                return br.heard_in(None, pid, audio=audio)

        self._starting.add(live.room_id)
        try:
            rec, recorder = await self._open(live, media, by=by, keep=keep, group=None, continues=continues)
        finally:
            self._starting.discard(live.room_id)
        a = Active(rec, recorder, live, breakouts, continues=continues)
        self.active[live.room_id] = a
        self._lives[live.room_id] = live
        if breakouts is not None:
            def places_changed() -> None:
                self._places_changed(a)

            a.listener = places_changed
            breakouts.subscribe(places_changed)
            if breakouts.recorded_groups():
                self._spawn(self._sync_groups(a))
        now = rec.started_at
        link = {"continues": continues} if continues is not None else {}
        live.broadcast({"event": "recording_started", "recording_id": rec.recording_id, "started_at": now,
                        "by": by, **link})
        live.emit("recording_started", {"recording_id": rec.recording_id, "by": by, **link})
        log.info("recording %s started", rec.recording_id, extra={"room_id": live.room_id})
        return rec

    async def _open(self, live: LiveRoom, media: MediaFeature, *, by: str | None, keep: Keep | None,
                    group: tuple[str, str] | None, continues: str | None = None) -> tuple[Recording, RoomRecorder]:
        """A recording's files begun and its record stored; ``group``: (id, name) of the breakout
        group it records (None: the room's main recording)."""
        room = live.room
        recording_id = secrets.token_hex(8)
        now = self.clock()
        group_id, group_name = group if group is not None else (None, None)
        rec = Recording(recording_id=recording_id, room_id=live.room_id, room_name=room.settings.name,
                        external_id=room.settings.external_id, state=RecordingState.RECORDING, started_at=now,
                        started_by=by, group_id=group_id, group_name=group_name)
        manifest = Manifest(recording_id=recording_id, room_id=live.room_id, room_name=room.settings.name,
                            started_at=now, group_id=group_id, group_name=group_name, continues=continues)

        def name_of(pid: str) -> str:
            p = room.participants.get(pid)
            return p.name if p is not None else pid

        def failed(error: RecordingFailed) -> None:
            self._spawn(self._failed(live.room_id, recording_id, error))

        recorder = RoomRecorder(media, self.directory(recording_id), manifest, min_free_bytes=self.min_free_bytes,
                                names=name_of, on_failed=failed, wall=self.clock, keep=keep)
        try:
            try:
                recorder.start()
            except RecordingFailed as e:
                shutil.rmtree(self.directory(recording_id), ignore_errors=True)
                if e.reason == "disk_full":
                    raise RecordingDiskFull(f"cannot record: {e}") from None
                raise RecordingUnavailable(f"cannot record: {e}") from None
            except OSError as e:
                shutil.rmtree(self.directory(recording_id), ignore_errors=True)
                raise RecordingUnavailable(f"cannot record: {e.strerror or e}") from None
            await self.store.add(rec)
        except BaseException:
            await recorder.stop()
            raise
        return rec, recorder

    # --- breakout groups ---------------------------------------------------------------------
    def _places_changed(self, a: Active) -> None:
        """On the loop, as the groups' media change: every recording keeps its place's tracks;
        group recordings begin and end with their groups."""
        a.recorder.refresh()
        for g in a.groups.values():
            g.recorder.refresh()
        if a.groups or (a.breakouts is not None and a.breakouts.recorded_groups()):
            self._spawn(self._sync_groups(a))

    async def _sync_groups(self, a: Active) -> None:
        async with a.lock:
            running = self.active.get(a.live.room_id) is a and not a.live.closed
            wanted = a.breakouts.recorded_groups() if running and a.breakouts is not None else {}
            for gid in [gid for gid in a.groups if gid not in wanted]:
                await self._stop_group(a, a.groups.pop(gid))
            media = media_feature_of(a.live)
            if media is None or a.breakouts is None:
                return
            br = a.breakouts
            for gid, name in wanted.items():
                if gid in a.groups:
                    continue

                def keep(pid: str, audio: bool, gid: str = gid) -> bool:
                    return br.heard_in(gid, pid, audio=audio)

                try:
                    rec, recorder = await self._open(a.live, media, by=a.recording.started_by, keep=keep,
                                                     group=(gid, name))
                except (RecordingDiskFull, RecordingUnavailable) as e:  # the room's recording goes on
                    log.warning("group %s not recorded: %s", gid, e, extra={"room_id": a.live.room_id})
                    continue
                a.groups[gid] = Active(rec, recorder, a.live)
                log.info("recording %s of group %s started", rec.recording_id, gid,
                         extra={"room_id": a.live.room_id})

    async def _taken_over(self, recording_id: str) -> Recording | None:
        """The record if another worker took the room over while this one stalled (its lease lost)
        and recovered the recording: the record and its events are that worker's (recordings/takeover.py)."""
        stored = await self.store.get(recording_id)
        if stored is not None and stored.state is not RecordingState.RECORDING:
            log.warning("recording %s: taken over by another worker; left as it is", recording_id)
            return stored
        return None

    async def _stop_group(self, a: Active, g: Active) -> None:
        await g.recorder.stop()
        if await self._taken_over(g.recording.recording_id) is not None:
            return
        rec = await self._finished(g, state=RecordingState.PROCESSING)
        a.live.emit("recording_stopped", {"recording_id": rec.recording_id, "by": None,
                                          "duration_s": rec.duration_s, "group_id": rec.group_id})
        self._spawn(self._compose(rec))

    def _unsubscribe(self, a: Active) -> None:
        if a.breakouts is not None and a.listener is not None:
            a.breakouts.unsubscribe(a.listener)
            a.listener = None

    async def stop(self, room_id: str, *, by: str | None, compose: bool = True) -> Recording:
        a = self.active.pop(room_id, None)
        if a is None:
            raise NotRecording("this lesson is not being recorded")
        self._unsubscribe(a)
        await a.recorder.stop()
        await self._sync_groups(a)  # not active any more: its groups' recordings stop with it
        stored = await self._taken_over(a.recording.recording_id)
        if stored is not None:
            return stored
        # without compose (the server is going down) it stays processing: composed at the next start
        rec = await self._finished(a, state=RecordingState.PROCESSING)
        live = a.live
        if not live.closed:
            live.broadcast({"event": "recording_stopped", "recording_id": rec.recording_id,
                            "ended_at": rec.ended_at, "duration_s": rec.duration_s, "by": by})
        live.emit("recording_stopped", {"recording_id": rec.recording_id, "by": by,
                                        "duration_s": rec.duration_s})
        if compose:
            self._spawn(self._compose(rec))
        return rec

    async def _finished(self, a: Active, *, state: RecordingState, error: RecordingFailed | None = None) -> Recording:
        """The record once the files are finished: tracks, sizes, the chat."""
        rec, live = a.recording, a.live
        directory = self.directory(rec.recording_id)
        manifest = a.recorder.manifest
        ended = manifest.ended_at or self.clock()
        chat = False
        if rec.group_id is not None:  # the room's chat and captions are the main room's
            rec = rec.with_(state=state, ended_at=ended, duration_s=round(ended - rec.started_at, 3),
                            tracks=track_infos(directory, manifest), size_bytes=dir_size(directory),
                            error=error.reason if error else None, error_message=str(error) if error else None)
            await self.store.save(rec)
            return rec
        with contextlib.suppress(OSError):
            write_chat_vtt(directory / CHAT, chat_vtt(live.room.chat.messages(), started_at=rec.started_at,
                                                      ended_at=ended))
            manifest.chat = CHAT
            write_manifest(directory, manifest)
            chat = True
        captions = await self._write_captions(directory, manifest, rec, ended)
        rec = rec.with_(state=state, ended_at=ended, duration_s=round(ended - rec.started_at, 3),
                        tracks=track_infos(directory, manifest), size_bytes=dir_size(directory), chat=chat,
                        captions=captions,
                        error=error.reason if error else None, error_message=str(error) if error else None)
        await self.store.save(rec)
        return rec

    async def _write_captions(self, directory: Path, manifest: Manifest, rec: Recording, ended: float) -> bool:
        """The lesson's captions over the recording as captions.vtt (subtitles of the composed video)."""
        if self.captions is None:
            return False
        try:
            vtt = await self.captions(rec.room_id, rec.started_at, ended)
        except Exception:  # the transcript store is down: the recording goes on without captions
            log.exception("recording %s: captions not written", rec.recording_id)
            return False
        if not vtt or "-->" not in vtt:
            return False
        try:
            (directory / CAPTIONS).write_text(vtt, encoding="utf-8")
            manifest.captions = CAPTIONS
            write_manifest(directory, manifest)
        except OSError:
            return False
        return True

    async def _write_board(self, directory: Path, rec: Recording) -> None:
        """The whiteboard as shown over the recording: stills + the manifest's ``board`` entry;
        once, before the first composition (not in stop: an hour of board takes seconds to render)."""
        if self.board is None or rec.group_id is not None or (directory / BOARD_DIR).exists():
            return
        try:
            manifest = await asyncio.to_thread(read_manifest, directory)
            ended = rec.ended_at or manifest.ended_at
            if ended is None:
                return
            frames = await self.board(rec.room_id, ended)
            if frames is None:
                return
            stills = await write_board_stills_apart(directory, frames, rec.started_at, ended)
            if stills:
                manifest.board = [s.to_json() for s in stills]
                write_manifest(directory, manifest)
        except Exception:  # the board store is down, a full disk: the recording goes on without it
            log.exception("recording %s: the whiteboard was not written", rec.recording_id)

    async def _failed(self, room_id: str, recording_id: str, error: RecordingFailed) -> None:
        a = self.active.get(room_id)
        if a is not None and a.recording.recording_id != recording_id:
            g = next((g for g in a.groups.values() if g.recording.recording_id == recording_id), None)
            if g is not None and g.recording.group_id is not None:  # a group's alone: the room's goes on
                async with a.lock:
                    if a.groups.get(g.recording.group_id) is g:
                        del a.groups[g.recording.group_id]
                        await g.recorder.stop()
                        await self._finished(g, state=RecordingState.FAILED, error=error)
            return
        if a is None:
            return
        del self.active[room_id]
        self._unsubscribe(a)
        await a.recorder.stop()
        await self._sync_groups(a)
        rec = await self._finished(a, state=RecordingState.FAILED, error=error)
        if not a.live.closed:
            a.live.broadcast({"event": "recording_failed", "recording_id": recording_id, "reason": error.reason,
                              "message": str(error)})
        a.live.emit("recording_failed", {"recording_id": recording_id, "reason": error.reason})
        log.warning("recording %s failed: %s", rec.recording_id, error, extra={"room_id": room_id})

    async def room_closed(self, live: LiveRoom) -> None:
        """The room ends or the server stops: its recording stops (and is composed)."""
        a = self.active.get(live.room_id)
        if a is not None and a.live is live:
            with contextlib.suppress(NotRecording):
                await self.stop(live.room_id, by=None)
        if self._lives.get(live.room_id) is live:
            del self._lives[live.room_id]

    # --- composition -------------------------------------------------------------------------
    def _tell_hosts(self, rec: Recording, event: dict[str, Any]) -> None:
        live = self._lives.get(rec.room_id)
        if live is not None and not live.closed:
            live.to_moderators(event)

    async def _compose(self, rec: Recording) -> None:
        directory = self.directory(rec.recording_id)
        await self._write_board(directory, rec)
        if not self.composer.available:
            log.info("recording %s: no composer installed; it stays processing", rec.recording_id)
            return
        last = -1.0

        def progress(p: float) -> None:
            nonlocal last
            if p - last < 0.05 and p < 1.0:
                return
            last = p
            self._tell_hosts(rec, {"event": "recording_progress", "recording_id": rec.recording_id,
                                   "state": RecordingState.PROCESSING.value, "progress": round(p, 3)})
            self._spawn(self._save_progress(rec.recording_id, p))

        try:
            await self.composer.compose(directory, directory / COMPOSED, progress=progress)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the composition's own failure: the tracks stay downloadable
            log.warning("recording %s: composition failed: %s", rec.recording_id, e)
            done = await self.store.get(rec.recording_id)
            if done is not None:
                done = done.with_(state=RecordingState.FAILED, error="composition_failed", error_message=str(e)[:900])
                await self.store.save(done)
                self._tell_hosts(done, {"event": "recording_failed", "recording_id": done.recording_id,
                                        "reason": "composition_failed", "message": str(e)[:300]})
            return
        done = await self.store.get(rec.recording_id)
        if done is None:  # deleted meanwhile
            return
        done = done.with_(state=RecordingState.READY, composed=COMPOSED, progress=1.0, size_bytes=dir_size(directory))
        await self.store.save(done)
        self._tell_hosts(done, {"event": "recording_ready", **self.links(done)})
        live = self._lives.get(done.room_id)
        if live is not None:
            live.emit("recording_ready", {"recording_id": done.recording_id, "duration_s": done.duration_s})

    async def compose_again(self, recording_id: str) -> Recording:
        """Compose a finished recording (again): a recovered one, a failed composition, new settings."""
        rec = await self.get(recording_id)
        if rec.state in (RecordingState.RECORDING, RecordingState.PROCESSING):
            raise RecordingBusy(f"this recording is {rec.state.value}: its video is made when that ends")
        rec = rec.with_(state=RecordingState.PROCESSING, progress=0.0, error=None, error_message=None)
        await self.store.save(rec)
        self._spawn(self._compose(rec))
        return rec

    async def _save_progress(self, recording_id: str, p: float) -> None:
        rec = await self.store.get(recording_id)
        if rec is not None and rec.state is RecordingState.PROCESSING:
            with contextlib.suppress(RecordingNotFound):
                await self.store.save(rec.with_(progress=round(p, 3)))

    # --- startup and retention ---------------------------------------------------------------
    async def recover(self, on_recovered: Callable[[Recording], Awaitable[None]] | None = None) -> list[str]:
        """Recordings a dead server left ``recording``: files repaired, state ``recovered``; those
        left ``processing`` are composed again.  Returns the recovered ids."""
        recovered = []
        found, _ = await self.store.find(RecordingQuery(state=RecordingState.RECORDING), offset=0, limit=1000)
        for rec in found:
            done = await self.recover_one(rec)
            if done.state is RecordingState.RECOVERED:
                recovered.append(rec.recording_id)
            if on_recovered is not None:
                try:
                    await on_recovered(done)
                except Exception:  # telling is not recovering: the next ones still are
                    log.exception("recording %s: telling of its recovery failed", rec.recording_id)
        processing, _ = await self.store.find(RecordingQuery(state=RecordingState.PROCESSING), offset=0, limit=1000)
        for rec in processing:
            self._spawn(self._compose(rec))
        return recovered

    async def recover_one(self, rec: Recording) -> Recording:
        """One recording whose writer died: its files repaired and its record ``recovered`` (or
        ``failed``, ``not_recoverable``, when its files cannot be read); returns the record saved."""
        directory = self.directory(rec.recording_id)
        try:
            manifest = await asyncio.to_thread(self._repair, directory, rec)
        except (OSError, ValueError, KeyError) as e:
            log.warning("recording %s: cannot be recovered: %s", rec.recording_id, e)
            failed = rec.with_(state=RecordingState.FAILED, ended_at=rec.started_at,
                               error="not_recoverable", error_message=str(e)[:900])
            await self.store.save(failed)
            return failed
        ended = manifest.ended_at or rec.started_at
        done = rec.with_(state=RecordingState.RECOVERED, ended_at=ended, duration_s=round(ended - rec.started_at, 3),
                         tracks=track_infos(directory, manifest), size_bytes=dir_size(directory))
        await self.store.save(done)
        log.info("recording %s recovered", rec.recording_id, extra={"room_id": rec.room_id})
        return done

    @staticmethod
    def _repair(directory: Path, rec: Recording) -> Manifest:
        manifest = read_manifest(directory)
        end = 0.0
        for t in manifest.tracks:
            path = directory / t.file
            if not path.exists():
                continue
            try:
                duration = repair(path)
            except TrackWriteError as e:
                log.warning("recording %s: %s", rec.recording_id, e)
                continue
            if t.end is None:
                t.end = round(t.start + duration, 4)
            end = max(end, t.end)
        manifest.tracks = [t for t in manifest.tracks if (directory / t.file).exists()]
        if manifest.ended_at is None:
            manifest.ended_at = manifest.started_at + end
        write_manifest(directory, manifest)
        return manifest

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.expire()
            except Exception:
                log.exception("recording retention failed")
            await asyncio.sleep(RETENTION_INTERVAL_S)

    async def expire(self) -> list[str]:
        """Delete recordings that ended more than ``retention_days`` ago (0 = keep all)."""
        if self.retention_days <= 0:
            return []
        old = await self.store.ended_before(self.clock() - self.retention_days * 86400.0, limit=RETENTION_BATCH)
        gone = []
        for rec in old:
            if rec.state is RecordingState.PROCESSING:
                continue  # still being composed: next round
            await self.delete(rec.recording_id)
            gone.append(rec.recording_id)
        return gone

    # --- the library -------------------------------------------------------------------------
    async def get(self, recording_id: str) -> Recording:
        rec = await self.store.get(recording_id)
        if rec is None:
            raise RecordingNotFound(f"no recording {recording_id!r}")
        return rec

    async def delete(self, recording_id: str) -> None:
        rec = await self.get(recording_id)
        if rec.state is RecordingState.RECORDING and any(
                x.recording.recording_id == recording_id
                for a in self.active.values() for x in (a, *a.groups.values())):
            raise RecordingBusy("this recording is still being made: stop it first")
        self.composer.cancel(self.directory(recording_id))
        await asyncio.to_thread(shutil.rmtree, self.directory(recording_id), True)
        await self.store.delete(recording_id)

    def file_path(self, rec: Recording, name: str) -> Path:
        allowed = {t.file for t in rec.tracks} | {"manifest.json", "speakers.jsonl"}
        if rec.composed:
            allowed.add(rec.composed)
        if rec.chat:
            allowed.add(CHAT)
        if rec.captions:
            allowed.add(CAPTIONS)
        path = self.directory(rec.recording_id) / name
        if name not in allowed or not path.is_file():
            raise RecordingNotFound(f"recording {rec.recording_id!r} has no file {name!r}")
        return path

    def links(self, rec: Recording) -> dict[str, Any]:
        """The recording as JSON with signed download URLs (for a host's page)."""
        now = self.clock()
        out = rec.to_json()
        out["video_url"] = (self.tokens.url("", rec.recording_id, rec.composed, now=now) if rec.composed
                            else None)
        out["chat_url"] = self.tokens.url("", rec.recording_id, CHAT, now=now) if rec.chat else None
        out["captions_url"] = self.tokens.url("", rec.recording_id, CAPTIONS, now=now) if rec.captions else None
        for t, j in zip(rec.tracks, out["tracks"], strict=True):
            j["url"] = self.tokens.url("", rec.recording_id, t.file, now=now)
        return out

    async def chat_deleted(self, live: LiveRoom) -> None:
        """A chat message of the room was deleted: every recording of the room writes its chat again."""
        found, _ = await self.store.find(RecordingQuery(room_id=live.room_id), offset=0, limit=1000)
        for rec in found:
            path = self.directory(rec.recording_id) / CHAT
            if rec.chat and path.exists():
                with contextlib.suppress(OSError):
                    write_chat_vtt(path, chat_vtt(live.room.chat.messages(), started_at=rec.started_at,
                                                  ended_at=rec.ended_at))

"""One running recording of one room: every published track into its own file, the manifest, the
active speaker changes.  A TrackObserver of the room's MediaFeature.

Work is split so that the room's packets never wait: the receive path only appends each packet to
its track's queue; every ``FLUSH_INTERVAL_S`` a task on the loop takes the queues and hands them to
the recording's own writer thread (depacketizing, muxing and the disk writes happen there); track
arrivals and departures are applied on the loop between two runs of the thread, so the manifest is
never changed while the thread writes it.  A write that fails (disk full, I/O error) or free space
under the minimum stops the recording (``on_failed``), never the lesson.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import json
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from recordings.manifest import SPEAKERS, Manifest, TrackEntry, write_manifest
from recordings.track_recorder import TrackRecorder
from recordings.track_writer import EXTENSIONS, TrackWriteError, codec_of
from sfu import ClosedError, DirectTransport, Router, SfuError
from signaling.media.media_feature import MediaFeature, Track

log = logging.getLogger("urok.recording")

FLUSH_INTERVAL_S = 0.25  # packets wait at most this long in memory before the writer thread has them
SPACE_CHECK_S = 2.0  # how often the free disk space is looked at
Keep = Callable[[str, bool], bool]  # (participant_id, audio) -> the track belongs to the recording now
RECORDED_SOURCES = frozenset({"microphone", "camera", "screen", "screen_audio"})


def _reason(code: int | None) -> str:
    """The stable reason of a failed write: the disk (or the quota) is full, or another I/O error."""
    return "disk_full" if code in (errno.ENOSPC, errno.EDQUOT) else "write_error"


class RecordingFailed(Exception):
    """Why a recording stopped by itself: ``reason`` is a stable code (disk_full, write_error)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RoomRecorder:
    def __init__(self, media: MediaFeature, directory: Path, manifest: Manifest, *, min_free_bytes: int,
                 names: Callable[[str], str], on_failed: Callable[[RecordingFailed], None],
                 wall: Callable[[], float] = time.time, keep: Keep | None = None) -> None:
        """``names``: a participant's display name by id; ``on_failed``: called once on the loop
        when the recording stops by itself (the recorder is closed by then); ``keep(participant_id,
        audio)``: whether that participant's track belongs to this recording now (breakout groups:
        the main room's recording keeps the main room; ``refresh`` when the places change)."""
        self.media = media
        self.router: Router = media.router
        self.directory = directory
        self.manifest = manifest
        self.min_free_bytes = min_free_bytes
        self._names = names
        self._on_failed = on_failed
        self._wall = wall
        self._keep = keep
        self._direct: DirectTransport | None = None
        self.tracks: dict[str, TrackRecorder] = {}  # producer id -> the file being written
        self._ending: list[TrackRecorder] = []
        self._speakers: deque[str] = deque()
        self._clocks: dict[str, dict[str, tuple[float, float | None]]] = {}
        self._dirty = True  # the manifest must be written
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="urok-rec")
        self._task: asyncio.Task[None] | None = None
        self._chained: Callable[[str], None] | None = None
        self._last_speaker: str | None = None
        self._space_checked = 0.0
        self.failed: RecordingFailed | None = None
        self.closed = False
        self.bytes_written = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_space()
        write_manifest(self.directory, self.manifest)
        (self.directory / SPEAKERS).touch()
        self._direct = self.router.create_direct_transport()
        # the active speaker observer has one callback (the media feature's broadcast): chained
        self._chained = self.media.speakers.on_dominant_speaker
        self.media.speakers.on_dominant_speaker = self._dominant_speaker
        self.media.observe(self)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recording")

    async def stop(self) -> None:
        """Every file finished (duration, cues), the manifest's end written.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._detach()
        if self._task is None:  # start() failed (no space): nothing was written, nothing to finish
            self._executor.shutdown(wait=False)
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.manifest.ended_at = self._wall()
        self._ending.extend(self.tracks.values())
        self.tracks.clear()
        batches = [(t, t.take()) for t in self._ending]
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, batches, True)
        except (TrackWriteError, OSError) as e:  # a full disk: what was written stays
            log.warning("recording %s: finishing failed: %s", self.manifest.recording_id, e)
        finally:
            self._executor.shutdown(wait=False)

    def _detach(self) -> None:
        self.media.unobserve(self)
        if self.media.speakers.on_dominant_speaker == self._dominant_speaker:
            self.media.speakers.on_dominant_speaker = self._chained
        for t in self.tracks.values():
            t.stop_consuming()
        if self._direct is not None:
            self._direct.close()

    # --- TrackObserver -----------------------------------------------------------------------
    def on_track_added(self, track: Track) -> None:
        producer = track.producer
        if self.closed or self._direct is None or producer.source not in RECORDED_SOURCES:
            return
        codec = codec_of(producer.codec)
        if codec not in EXTENSIONS:
            log.warning("recording %s: codec %s of track %s is not recorded", self.manifest.recording_id,
                        producer.codec, producer.id)
            return
        pid = track.participant_id
        segment = self.manifest.next_segment(pid, producer.source)
        entry = TrackEntry(file=TrackRecorder.file_name(producer, segment, pid), track_id=producer.id,
                           participant_id=pid, name=self._names(pid), source=producer.source,
                           kind=producer.kind, codec=codec, start=0.0, segment=segment)
        try:
            recorder = TrackRecorder(self._direct, producer, self.directory, entry,
                                     started_at=self.manifest.started_at, clocks=self._clocks, wall=self._wall)
        except (ClosedError, SfuError) as e:
            log.warning("recording %s: cannot record track %s: %s", self.manifest.recording_id, producer.id, e)
            return
        if self._keep is not None:
            recorder.set_paused(not self._keep(pid, producer.kind == "audio"))
        self.tracks[producer.id] = recorder
        self.manifest.tracks.append(entry)  # on the loop, while the writer thread is not writing it
        self._dirty = True

    def on_track_removed(self, track: Track) -> None:
        recorder = self.tracks.pop(track.producer.id, None)
        if recorder is not None:
            recorder.stop_consuming()
            self._ending.append(recorder)

    def refresh(self) -> None:
        """The places changed (breakout groups): each track is paused or resumed by ``keep``."""
        if self._keep is None or self.closed:
            return
        for t in self.tracks.values():
            t.set_paused(not self._keep(t.entry.participant_id, t.entry.kind == "audio"))

    def _dominant_speaker(self, track_id: str) -> None:
        if self._chained is not None:
            self._chained(track_id)
        if self.closed:
            return  # several recordings chain this callback; one stopped early stays a link
        track = self.media.tracks.get(track_id)
        if track is None or (self._keep is not None and not self._keep(track.participant_id, True)):
            return  # a speaker of another breakout group
        if track.participant_id != self._last_speaker:
            self._last_speaker = track.participant_id
            t = round(self._wall() - self.manifest.started_at, 3)
            self._speakers.append(json.dumps({"t": t, "participant_id": track.participant_id}))

    # --- the writer --------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            ending, self._ending = self._ending, []
            batches = [(t, t.take()) for t in (*self.tracks.values(), *ending)]
            finish = {id(t) for t in ending}
            try:
                await loop.run_in_executor(self._executor, self._write, batches, False, finish)
            except TrackWriteError as e:
                self._fail(RecordingFailed(_reason(e.errno), str(e)))
                return
            except OSError as e:  # the manifest or speakers.jsonl could not be written
                self._fail(RecordingFailed(_reason(e.errno), f"cannot write the recording: {e.strerror or e}"))
                return
            except RecordingFailed as e:
                self._fail(e)
                return

    def _fail(self, error: RecordingFailed) -> None:
        log.warning("recording %s stopped: %s (%s)", self.manifest.recording_id, error, error.reason)
        self.failed = error
        self._on_failed(error)

    def _check_space(self) -> None:
        free = shutil.disk_usage(self.directory).free
        if free < self.min_free_bytes:
            raise RecordingFailed("disk_full", f"{free // 2**20} MB free on the recordings disk, "
                                               f"{self.min_free_bytes // 2**20} MB needed")

    def _write(self, batches: list[tuple[TrackRecorder, deque[tuple[float, bytes]]]], finish_all: bool,
               finish: set[int] | None = None) -> None:
        """In the writer thread."""
        now = time.monotonic()
        if not finish_all and now - self._space_checked >= SPACE_CHECK_S:
            self._space_checked = now
            self._check_space()
        for t, batch in batches:
            try:
                t.write(batch)
            except TrackWriteError:
                if not finish_all:
                    raise
            self._dirty = self._dirty or t.moved
            t.moved = False
            if finish_all or (finish is not None and id(t) in finish):
                with contextlib.suppress(TrackWriteError):
                    t.finish()
                if not t.started and t.entry in self.manifest.tracks:
                    self.manifest.tracks.remove(t.entry)  # not a frame came: no file, no entry
                self._dirty = True
        if self._speakers:
            lines = []
            while self._speakers:
                lines.append(self._speakers.popleft())
            with (self.directory / SPEAKERS).open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        if self._dirty or finish_all:
            self._dirty = False
            write_manifest(self.directory, self.manifest)

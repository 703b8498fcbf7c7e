"""Recogniser processes, kept warm, and the slots of the speakers they caption.

``workers`` processes each load the model once (1.7 s and ~550 MB for the small Korean model on
this machine) and hold up to ``max_speakers`` phrases at a time.  A phrase that starts when every
slot is taken gets one only if it is louder than the quietest phrase being recognised (which then
ends early, with a final for what it said): with 30 people unmuted the loudest are captioned, and
``counters()`` says what was dropped.  Each process's inbox is bounded in audio chunks
(``queue_chunks``): a process that falls behind loses chunks (counted), never memory; one that
is more than ``BUSY_CHUNKS`` behind takes no new phrase (dropped whole, counted in ``busy_phrases``
too), so a machine short of CPU captions fewer speakers rather than garbling all of them.

The event loop only pickles 100 ms chunks into a queue; results come back through one reader
thread that hands them to the loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from transcription.errors import TranscriptionUnavailable
from transcription.recognizer_worker import worker_main

log = logging.getLogger("urok.transcription")

QUEUE_CHUNKS = 100  # 100 ms chunks waiting per process: 10 s of audio, ~330 kB
BUSY_CHUNKS = 20  # a process this far behind (2 s of audio) takes no new phrase: whole phrases are
# dropped (counted) rather than chunks of the ones it has (which garbles them) when the CPU is short
LOAD_TIMEOUT_S = 120.0
EVICT_MARGIN_DB = 3.0  # a new phrase must be this much louder than the quietest to take its slot
LOUDNESS_SMOOTHING = 0.2  # of each chunk's level in a phrase's running loudness


@dataclass(frozen=True, slots=True)
class Recognised:
    """A partial or final result of one phrase, on the caller's timeline."""

    key: str
    text: str
    final: bool
    start: float
    end: float
    busy_s: float = 0.0  # CPU seconds the recogniser spent (finals)
    audio_s: float = 0.0  # audio seconds it was fed (finals)


ResultSink = Callable[[Recognised], None]


@dataclass(slots=True)
class _Slot:
    key: str
    worker: int
    loudness: float  # dBFS
    sink: ResultSink


class RecognizerPool:
    def __init__(self, model_dir: Path, *, workers: int, max_speakers: int, queue_chunks: int = QUEUE_CHUNKS) -> None:
        self.model_dir = model_dir
        self.workers = max(1, workers)
        self.max_speakers = max(1, max_speakers)
        self.queue_chunks = queue_chunks
        self._ctx = mp.get_context("spawn")  # never fork a process with an event loop and threads
        self._inboxes: list[Queue[tuple[Any, ...]]] = []
        self._outbox: Queue[tuple[Any, ...]] | None = None
        self._procs: list[BaseProcess] = []
        self._ready: list[bool] = []
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Future[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._slots: dict[str, _Slot] = {}  # phrases being fed
        self._routes: dict[str, ResultSink] = {}  # phrases whose final is still due
        self._files: dict[int, asyncio.Future[tuple[list[tuple[float, float, str]], float]]] = {}
        self._file_ids = itertools.count(1)
        self.load_s: list[float] = []
        self.closed = False
        self.stats = {"phrases": 0, "dropped_phrases": 0, "busy_phrases": 0, "evicted_phrases": 0, "dropped_chunks": 0,
                      "chunks": 0, "finals": 0, "partials": 0, "worker_restarts": 0, "files": 0}
        self.busy_s = 0.0
        self.audio_s = 0.0

    # --- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the processes and wait until each has loaded the model; concurrent callers share one
        start.  TranscriptionUnavailable if the model does not load."""
        if self._started is None:
            self._loop = asyncio.get_running_loop()
            self._started = self._loop.create_future()
            self._outbox = self._ctx.Queue()
            self._reader = threading.Thread(target=self._read, name="urok-transcription-results", daemon=True)
            self._reader.start()
            for w in range(self.workers):
                self._inboxes.append(self._ctx.Queue())
                self._procs.append(self._spawn(w))
                self._ready.append(False)
            self._watch = asyncio.create_task(self._watch_workers())
        try:
            await asyncio.wait_for(asyncio.shield(self._started), LOAD_TIMEOUT_S)
        except TimeoutError:
            raise TranscriptionUnavailable(f"the speech model did not load in {LOAD_TIMEOUT_S:.0f} s") from None

    @property
    def ready(self) -> bool:
        return self._started is not None and self._started.done() and self._started.exception() is None

    def _spawn(self, w: int) -> BaseProcess:
        assert self._outbox is not None
        proc = self._ctx.Process(target=worker_main, args=(str(self.model_dir), self._inboxes[w], self._outbox, w),
                                 name=f"urok-recogniser-{w}", daemon=True)
        proc.start()
        return proc

    async def _watch_workers(self) -> None:
        """A recogniser process that died (out of memory, a crash in the native code) is started
        again; its phrases are lost, the others go on."""
        while not self.closed:
            await asyncio.sleep(1.0)
            for w, proc in enumerate(self._procs):
                if proc.is_alive() or self.closed:
                    continue
                if not self._ready[w]:  # it never loaded the model: the start fails, no retry loop
                    if self._started is not None and not self._started.done():
                        self._started.set_exception(TranscriptionUnavailable(
                            f"the recogniser process exited (code {proc.exitcode}) before loading the model"))
                    continue
                log.error("recogniser process %d died (exit %s): starting it again", w, proc.exitcode)
                self.stats["worker_restarts"] += 1
                self._ready[w] = False
                for slot in [s for s in self._slots.values() if s.worker == w]:
                    del self._slots[slot.key]
                    self._routes.pop(slot.key, None)
                self._inboxes[w] = self._ctx.Queue()
                self._procs[w] = self._spawn(w)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
        for inbox in self._inboxes:
            with contextlib.suppress(Exception):
                inbox.put(("stop",))
        loop = asyncio.get_running_loop()
        for proc in self._procs:
            await loop.run_in_executor(None, proc.join, 5.0)
            if proc.is_alive():
                proc.kill()
        if self._outbox is not None:
            self._outbox.put(("bye",))
        if self._reader is not None:
            await loop.run_in_executor(None, self._reader.join, 5.0)
        for fut in self._files.values():
            if not fut.done():
                fut.set_exception(TranscriptionUnavailable("the server is stopping"))

    # --- results (reader thread -> loop) ---------------------------------------------------------
    def _read(self) -> None:
        assert self._outbox is not None and self._loop is not None
        while True:
            try:
                msg = self._outbox.get()
            except (EOFError, OSError):
                return
            if msg[0] == "bye":
                return
            try:
                self._loop.call_soon_threadsafe(self._dispatch, msg)
            except RuntimeError:  # the loop is closed
                return

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "partial":
            _, key, text, start, end = msg
            sink = self._routes.get(key)
            if sink is not None:
                self.stats["partials"] += 1
                sink(Recognised(key, text, False, start, end))
        elif kind == "final":
            _, key, text, start, end, busy, audio = msg
            self.busy_s += busy
            self.audio_s += audio
            sink = self._routes.get(key) if key in self._slots else self._routes.pop(key, None)
            if sink is not None:
                self.stats["finals"] += 1
                sink(Recognised(key, text, True, start, end, busy, audio))
        elif kind in ("file_done", "file_failed"):
            fut = self._files.pop(msg[1], None)
            if fut is not None and not fut.done():
                if kind == "file_done":
                    self.busy_s += msg[3]
                    fut.set_result((msg[2], msg[3]))
                else:
                    fut.set_exception(RuntimeError(msg[2]))
        elif kind == "ready":
            _, w, load_s = msg
            self._ready[w] = True
            self.load_s.append(load_s)
            log.info("recogniser process %d loaded %s in %.2f s", w, self.model_dir, load_s)
            if all(self._ready) and self._started is not None and not self._started.done():
                self._started.set_result(None)
        elif kind == "failed":
            log.error("speech model failed to load: %s", msg[2])
            if self._started is not None and not self._started.done():
                self._started.set_exception(TranscriptionUnavailable(msg[2]))

    # --- phrases ------------------------------------------------------------------------------
    def _load(self, w: int) -> int:
        return sum(1 for s in self._slots.values() if s.worker == w)

    def _behind(self, w: int) -> bool:
        try:
            return self._inboxes[w].qsize() >= BUSY_CHUNKS
        except NotImplementedError:  # macOS has no sem_getvalue: never "behind"
            return False

    def begin(self, key: str, loudness: float, sink: ResultSink) -> bool:
        """A phrase starts: a slot for it (True), or none (False, counted in dropped_phrases)."""
        if key in self._slots:
            return True
        if not self.ready or self.closed:
            return False
        self.stats["phrases"] += 1
        open_ = [w for w in range(self.workers) if self._ready[w] and self._load(w) < self.max_speakers]
        free = [(self._load(w), w) for w in open_ if not self._behind(w)]
        if free:
            worker = min(free)[1]
        else:
            # taking the quietest phrase's slot adds no work to its process, even one that is behind
            quietest = min(self._slots.values(), key=lambda s: s.loudness, default=None)
            if quietest is None or loudness < quietest.loudness + EVICT_MARGIN_DB:
                self.stats["dropped_phrases"] += 1
                if open_:
                    self.stats["busy_phrases"] += 1  # (of those dropped) a slot was free, its process behind
                return False
            self.stats["evicted_phrases"] += 1
            self.end(quietest.key, float("inf"))  # its final (what it said so far) still goes out
            worker = quietest.worker
        self._slots[key] = _Slot(key, worker, loudness, sink)
        self._routes[key] = sink
        return True

    def feed(self, key: str, pcm: bytes, t0: float, t1: float, loudness: float) -> bool:
        """100 ms of a phrase (16 kHz mono s16le); False if the phrase has no slot (any more)."""
        slot = self._slots.get(key)
        if slot is None:
            return False
        slot.loudness += LOUDNESS_SMOOTHING * (loudness - slot.loudness)
        inbox = self._inboxes[slot.worker]
        self.stats["chunks"] += 1
        if inbox.qsize() >= self.queue_chunks:
            self.stats["dropped_chunks"] += 1  # the process is behind: this chunk is lost, not queued
            return True
        inbox.put(("audio", key, pcm, t0, t1))
        return True

    def end(self, key: str, t_voice_end: float) -> None:
        """The phrase ended (its final comes to its sink); its slot is free at once."""
        slot = self._slots.pop(key, None)
        if slot is not None:
            self._inboxes[slot.worker].put(("end", key, t_voice_end))

    @property
    def speaking(self) -> int:
        return len(self._slots)

    # --- files --------------------------------------------------------------------------------
    async def transcribe(self, pcm: bytes) -> tuple[list[tuple[float, float, str]], float]:
        """A whole recording (16 kHz mono s16le) on the least busy process: its segments
        (start, end, text) and the CPU seconds it took."""
        if not self.ready or self.closed:
            raise TranscriptionUnavailable("the speech model is not loaded")
        assert self._loop is not None
        job = next(self._file_ids)
        fut: asyncio.Future[tuple[list[tuple[float, float, str]], float]] = self._loop.create_future()
        self._files[job] = fut
        worker = min((self._load(w), w) for w in range(self.workers) if self._ready[w])[1]
        self.stats["files"] += 1
        self._inboxes[worker].put(("file", job, pcm))
        return await fut

    def backlog(self) -> int:
        """100 ms chunks waiting in the processes' inboxes (all of them)."""
        try:
            return sum(inbox.qsize() for inbox in self._inboxes)
        except NotImplementedError:
            return 0

    def counters(self) -> dict[str, float]:
        return {**self.stats, "speaking": len(self._slots), "backlog_chunks": self.backlog(),
                "busy_seconds": self.busy_s, "audio_seconds": self.audio_s}

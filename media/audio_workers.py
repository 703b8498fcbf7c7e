"""The audio threads: decoding, RNNoise and encoding of the streams a feature processes.

Measured on this 2-core machine (benchmarks/audio.py): per 20 ms frame Opus decoding ~35-70 us,
RNNoise ~1.1-1.5 ms, Opus encoding ~0.2-0.35 ms; all three are native calls through ctypes, which
releases the GIL, so threads run several streams at once while the event loop forwards, as long
as the loop is not busy in Python itself: each hand-over of the GIL back to a thread then waits
for the loop's switch interval (noise suppression runs in processes for that reason:
media/audio_processes.py; decoding for a tap, one native call per packet, stays here).

:class:`AudioWorkers` is one pool per app (setting ``audio_workers``).  :class:`SerialQueue` is one
stream's lane through it: packets queued from the receive path (bounded: when the pool is behind,
the oldest are dropped and counted), processed in order by one thread at a time, the results
handed back to the event loop in one call per batch.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["QUEUE_LIMIT", "AudioWorkers", "SerialQueue"]

log = logging.getLogger("urok.media")

QUEUE_LIMIT = 50  # packets (1 s of 20 ms audio) a stream may have waiting; older ones are dropped
R = TypeVar("R")


class AudioWorkers:
    """A thread pool of ``threads`` for audio processing (``threads`` >= 1)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(self.threads, thread_name_prefix="urok-audio")

    @property
    def closed(self) -> bool:
        return self._pool is None

    def submit(self, fn: Callable[[], None]) -> bool:
        pool = self._pool
        if pool is None:
            return False
        try:
            pool.submit(fn)
        except RuntimeError:  # shut down meanwhile
            return False
        return True

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class SerialQueue(Generic[R]):
    """One stream's packets through the pool, in order.

    ``process(packet) -> list[R]`` runs on a worker thread (one at a time for this queue: the
    decoder state is the stream's); ``deliver(results)`` runs on ``loop`` with what a batch made.
    ``put`` is called on the receive path: a deque append, and a submit when no job is running.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, workers: AudioWorkers,
                 process: Callable[[bytes], list[R]], deliver: Callable[[list[R]], None],
                 *, limit: int = QUEUE_LIMIT) -> None:
        self._loop = loop
        self._workers = workers
        self._process = process
        self._deliver = deliver
        self._queue: collections.deque[bytes] = collections.deque()
        self._limit = limit
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self.dropped = 0  # packets dropped because the workers were behind
        self.errors = 0  # exceptions of process/deliver (logged once)

    def put(self, packet: bytes) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(packet)
        with self._lock:
            if self._running:
                return
            self._running = True
        if not self._workers.submit(self._run):
            with self._lock:
                self._running = False

    def close(self) -> None:
        self._closed = True
        self._queue.clear()

    def _run(self) -> None:
        """On a worker thread: everything queued, then hand the batch to the loop."""
        while True:
            results: list[R] = []
            while self._queue and not self._closed:
                try:
                    packet = self._queue.popleft()
                except IndexError:
                    break
                try:
                    results.extend(self._process(packet))
                except Exception:
                    self._error("audio processing failed")
            if results and not self._closed:
                try:
                    self._loop.call_soon_threadsafe(self._deliver_safe, results)
                except RuntimeError:  # the loop is closed: the app is going away
                    self._closed = True
            with self._lock:
                if not self._queue or self._closed:
                    self._running = False
                    return

    def _deliver_safe(self, results: list[R]) -> None:
        if self._closed:
            return
        try:
            self._deliver(results)
        except Exception:
            self._error("audio delivery failed")

    def _error(self, what: str) -> None:
        self.errors += 1
        if self.errors == 1:
            log.exception("%s (further failures of this stream only counted)", what)

"""The server's captions: one RecognizerPool (started on the first caption start, kept warm), the
transcript store, and retention.

The model is looked for only when someone starts captions: a server without one starts and serves
rooms; ``transcription_start`` then answers ``transcription_unavailable`` with what is missing.
A model that failed to load is not retried on every start (it costs seconds and memory): the
error is kept until the server restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from signaling.settings import Settings
from transcription.errors import TranscriptionUnavailable
from transcription.model_dir import resolve_model_dir
from transcription.recognizer_pool import RecognizerPool
from transcription.transcript_store import TranscriptStore

log = logging.getLogger("urok.transcription")

RETENTION_EVERY_S = 3600.0
DAY_S = 86400.0


class TranscriptionService:
    def __init__(self, settings: Settings, store: TranscriptStore, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._pool: RecognizerPool | None = None
        self._failed: TranscriptionUnavailable | None = None
        self._starting: asyncio.Lock | None = None
        self._retention: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def pool(self) -> RecognizerPool | None:
        """The pool once it has loaded the model (None before the first start or after a failure)."""
        return self._pool if self._pool is not None and self._pool.ready else None

    async def ready_pool(self) -> RecognizerPool:
        """The started pool, starting it on the first call; TranscriptionUnavailable if there is no model."""
        if self.closed:
            raise TranscriptionUnavailable("the server is stopping")
        if self._failed is not None:
            raise TranscriptionUnavailable(self._failed.message)
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                try:
                    model = resolve_model_dir(self.settings.transcription_model)
                except TranscriptionUnavailable as e:
                    raise TranscriptionUnavailable(e.message) from None  # looked for again next time
                self._pool = RecognizerPool(model, workers=self.settings.transcription_workers,
                                            max_speakers=self.settings.transcription_max_speakers)
            try:
                await self._pool.start()
            except TranscriptionUnavailable as e:
                self._failed = e
                await self._pool.close()
                raise
        return self._pool

    async def open(self) -> None:
        await self.store.open()
        if self.settings.transcription_retention_days > 0:
            self._retention = asyncio.create_task(self._retain())

    async def close(self) -> None:
        self.closed = True
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        if self._pool is not None:
            await self._pool.close()
        await self.store.close()

    async def apply_retention(self) -> int:
        """Forget the caption lines older than ``transcription_retention_days``; how many went."""
        days = self.settings.transcription_retention_days
        if days <= 0:
            return 0
        return await self.store.delete_before(self.clock() - days * DAY_S)

    async def _retain(self) -> None:
        while True:
            try:
                gone = await self.apply_retention()
                if gone:
                    log.info("transcript retention: %d caption lines deleted", gone)
            except Exception:  # the store is down: try again next time
                log.exception("transcript retention failed")
            await asyncio.sleep(RETENTION_EVERY_S)

    def counters(self) -> dict[str, float]:
        """For /metrics (urok_transcription_*): phrases, dropped_phrases (no slot: quieter than those
        being captioned; busy_phrases of them: a slot was free on a process behind), dropped_chunks
        (a process 10 s behind), backlog_chunks (waiting now), finals, partials, speaking,
        busy_seconds, audio_seconds, worker_restarts; ready is 1 once the model is loaded."""
        pool = self._pool
        return {"ready": 1.0 if self.pool is not None else 0.0, **(pool.counters() if pool is not None else {})}

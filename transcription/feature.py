"""Wires live captions and transcripts into the app: the service (recogniser pool, transcript store,
retention) and one RoomCaptions per served room."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from media.feature import AUDIO_WORKERS
from signaling.app_keys import CLOCK, METRICS, ROOMS, SETTINGS, STORE
from signaling.store.sql_store import SqlStore
from transcription.file_jobs import FileJobs
from transcription.room_captions import RoomCaptions
from transcription.service import TranscriptionService
from transcription.sql_transcript_store import SqlTranscriptStore
from transcription.transcript_store import MemoryTranscriptStore, TranscriptStore

TRANSCRIPTION = web.AppKey("transcription", TranscriptionService)
FILE_JOBS = web.AppKey("transcription_files", FileJobs)


def make_transcript_store(store: object) -> TranscriptStore:
    """Transcripts live where the rooms do: on the SQL store's engine, or in memory."""
    if isinstance(store, SqlStore):
        sql = store
        return SqlTranscriptStore(lambda: sql.engine)
    return MemoryTranscriptStore()


def setup_transcription(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered
    and after setup_audio (the audio threads)."""
    service = TranscriptionService(app[SETTINGS], make_transcript_store(app[STORE]), clock=app[CLOCK])
    app[TRANSCRIPTION] = service
    files = FileJobs(service)
    app[FILE_JOBS] = files
    workers = app.get(AUDIO_WORKERS)
    app[ROOMS].feature_factories.append(lambda live: RoomCaptions(live, service, workers))
    app[METRICS].add_gauges(service.counters, "urok_transcription", "live captions")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.open()
        yield
        await files.close()
        await service.close()  # after the rooms closed (cleanup runs in reverse)

    app.cleanup_ctx.append(lifecycle)

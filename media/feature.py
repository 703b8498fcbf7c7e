"""Wires server-side audio processing (noise suppression, voice activity) into the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from media.audio_processes import AudioProcesses
from media.audio_workers import AudioWorkers
from media.noise_feature import NoiseFeature
from signaling.app_keys import ROOMS, SETTINGS

AUDIO_WORKERS = web.AppKey("audio_workers", AudioWorkers)
"""The app's audio threads (setting ``audio_workers``): pass to ``AudioTap(..., workers=...)``."""
AUDIO_PROCESSES = web.AppKey("audio_processes", AudioProcesses)
"""The app's audio processes (setting ``audio_workers``; started at the first suppressed microphone):
noise suppression runs there, out of reach of the event loop's GIL (media/audio_processes.py)."""


def setup_audio(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""
    workers = AudioWorkers(app[SETTINGS].audio_workers)
    app[AUDIO_WORKERS] = workers
    processes = AudioProcesses(app[SETTINGS].audio_workers)
    app[AUDIO_PROCESSES] = processes
    app[ROOMS].feature_factories.append(lambda live: NoiseFeature(live, processes))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        workers.close()  # after the rooms closed (cleanup runs in reverse): no stream is left
        processes.close()

    app.cleanup_ctx.append(lifecycle)

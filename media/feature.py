"""Wires server-side audio processing (noise suppression, voice activity) into the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from media.audio_workers import AudioWorkers
from media.noise_feature import NoiseFeature
from signaling.app_keys import ROOMS, SETTINGS

AUDIO_WORKERS = web.AppKey("audio_workers", AudioWorkers)
"""The app's audio threads (setting ``audio_workers``): pass to ``AudioTap(..., workers=...)``."""


def setup_audio(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""
    workers = AudioWorkers(app[SETTINGS].audio_workers)
    app[AUDIO_WORKERS] = workers
    app[ROOMS].feature_factories.append(lambda live: NoiseFeature(live, workers))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        workers.close()  # after the rooms closed (cleanup runs in reverse): no stream is left

    app.cleanup_ctx.append(lifecycle)

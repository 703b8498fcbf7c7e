"""Wires server-side audio processing (noise suppression, voice activity) into the app."""

from __future__ import annotations

from aiohttp import web


def setup_audio(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""

"""Wires live captions and transcripts into the app."""

from __future__ import annotations

from aiohttp import web


def setup_transcription(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""

"""Wires recording into the app: app keys, room features, lifecycle (recordings/)."""

from __future__ import annotations

from aiohttp import web


def setup_recordings(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""

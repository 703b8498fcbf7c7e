"""Wires the whiteboard into the app: app keys, room features, lifecycle."""

from __future__ import annotations

from aiohttp import web


def setup_whiteboard(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""

"""Wires the lessons service into the app (app keys, event subscriptions, lifecycle)."""

from __future__ import annotations

from aiohttp import web


def setup_lessons(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""

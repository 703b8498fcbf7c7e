"""Wires webhooks into the app (app keys, event subscriptions, the delivery task's lifecycle)."""

from __future__ import annotations

from aiohttp import web


def setup_webhooks(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""

"""Wires the BigBlueButton API (/bigbluebutton/api/...) into the app when bbb_secret is set."""

from __future__ import annotations

from aiohttp import web


def setup_bbb(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""

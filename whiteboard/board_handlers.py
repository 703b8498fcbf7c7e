"""WebSocket requests of the whiteboard."""

from __future__ import annotations

from typing import Any

from signaling.dispatcher import Route

ROUTES: dict[str, Route[Any]] = {}

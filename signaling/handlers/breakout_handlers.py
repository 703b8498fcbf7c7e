"""Breakout rooms: breakouts_start, breakouts_broadcast, breakouts_move, breakouts_end and the rest."""

from __future__ import annotations

from typing import Any

from signaling.dispatcher import Route

ROUTES: dict[str, Route[Any]] = {}

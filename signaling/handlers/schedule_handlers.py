"""The lesson's time: a host extends it (`room_extend`)."""

from __future__ import annotations

from typing import Any

from signaling.dispatcher import Route

ROUTES: dict[str, Route[Any]] = {}

"""REST for breakout templates of a class."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()

"""REST for recordings: list, metadata, download (HTTP Range), delete."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()

"""REST for boards: materials upload, export (PNG, SVG, PDF)."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()

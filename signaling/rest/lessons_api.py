"""REST /v1/lessons: lessons from the e-journal's timetable.  Thin: parse, call the service, map errors."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()

"""REST /v1/webhooks: registrations, deliveries, the dead-letter list.  Thin: parse, call, map errors."""

from __future__ import annotations

from signaling.rest.api_route import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()

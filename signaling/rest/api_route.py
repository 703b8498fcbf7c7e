"""One declaration per REST route: it registers the handler and describes it in the OpenAPI document,
so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_BODY_ERRORS = (400, 413, 415)  # malformed JSON, over client_max_size, not Content-Type: application/json
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    admin: bool = True  # needs an admin token
    body: type | None = None
    response: type | None = None
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = (400, 401, 404)
    content_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """``errors`` plus what every call that reads a body can answer (middleware.read_body)."""
        if self.method not in _BODY_METHODS:
            return self.errors
        return (*self.errors, *(s for s in _BODY_ERRORS if s not in self.errors))

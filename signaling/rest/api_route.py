"""One declaration per REST route: it registers the handler and describes it in the OpenAPI document,
so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

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

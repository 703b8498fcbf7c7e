"""Dispatch of WebSocket requests through a table of typed handlers.

Each entry names the request model, the handler and, for restricted requests, the domain action
to check *before* the parameters are looked at (PROTOCOL.md: a non-host gets ``forbidden``
whatever else it sent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from signaling.errors import InvalidMessage, UnknownType
from signaling.messages import Request
from signaling.rooms import Action

if TYPE_CHECKING:
    from signaling.ws.session import Session

R = TypeVar("R", bound=Request)
Reply = dict[str, Any] | None
Handler = Callable[["Session", R], Awaitable[Reply]]
Precheck = Callable[["Session"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route(Generic[R]):
    model: type[R]
    handler: Handler[R]
    action: Action | None = None  # checked before parsing
    joined_only: bool = True  # a participant in the waiting room may not send it
    precheck: Precheck | None = None  # a permission check that needs more than one action, before parsing


class DispatchTable:
    def __init__(self, routes: Mapping[str, Route[Any]]) -> None:
        self._routes = dict(routes)

    @property
    def types(self) -> list[str]:
        return sorted(self._routes)

    def route(self, type_: Any) -> Route[Any]:
        if not isinstance(type_, str):
            raise InvalidMessage("field 'type' must be a string")
        route = self._routes.get(type_)
        if route is None:
            raise UnknownType(f"unknown message type {type_[:64]!r}")
        return route

    @staticmethod
    def parse(route: Route[R], frame: dict[str, Any]) -> R:
        body = {k: v for k, v in frame.items() if k not in ("id", "type")}
        try:
            return msgspec.convert(body, route.model)
        except msgspec.ValidationError as e:
            raise InvalidMessage(str(e)) from None

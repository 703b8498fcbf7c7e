"""REST /v1: the lesson's record beyond attendance: the raised hands and the attention checks with
their answers (also after the room ended, and after a restart: the store keeps them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from signaling.app_keys import ROOMS
from signaling.rest.api_route import ApiRoute
from signaling.rest.middleware import require_admin
from signaling.rooms import Room


class Person(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str | None  # None: not in the room's record (cannot happen for a stored room)
    name: str


class HandOut(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str | None
    name: str
    raised_at: float
    lowered_at: float | None  # None: still up (or lowered by a caller that gave no time)
    lowered_by: Person | None  # who lowered it (None: still up, or its owner left)
    reason: str | None  # lowered (by its owner) | answered (a host lowered it) | cleared (all lowered) | left
    answered: bool
    raised: bool  # still up


class HandsOut(msgspec.Struct, kw_only=True):
    room_id: str
    name: str
    count: int
    hands: list[HandOut]


class AckOut(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str | None
    name: str
    acked_at: float
    after_ms: int


class AttentionOut(msgspec.Struct, kw_only=True):
    attention_id: str
    text: str
    sent_at: float
    from_: Person = msgspec.field(name="from")
    targets: int
    acked: list[AckOut]  # in the order they acknowledged
    not_acked: list[Person]


class AttentionPage(msgspec.Struct, kw_only=True):
    room_id: str
    name: str
    count: int
    requests: list[AttentionOut]


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: msgspec.json.encode(d).decode())


def _identity(room: Room, participant_id: str) -> str | None:
    p = room.participants.get(participant_id)
    return None if p is None else p.identity


def _name(room: Room, participant_id: str) -> str:
    p = room.participants.get(participant_id)
    return "" if p is None else p.name


def _person(room: Room, participant_id: str, name: str | None = None) -> dict[str, Any]:
    return {"participant_id": participant_id, "identity": _identity(room, participant_id),
            "name": _name(room, participant_id) if name is None else name}


async def _room_records(request: web.Request, key: str,
                        records: Callable[[Room], list[dict[str, Any]]]) -> web.Response:
    """An admin's page of one room's records: ``{room_id, name, count, <key>: [...]}``."""
    require_admin(request)
    room = await request.app[ROOMS].get(request.match_info["room_id"])
    items = records(room)
    return _json({"room_id": room.room_id, "name": room.settings.name, "count": len(items), key: items})


def _hands(room: Room) -> list[dict[str, Any]]:
    hands = []
    for h in room.hands.history():
        out = h.to_json()
        out.update(identity=_identity(room, h.participant_id), name=_name(room, h.participant_id),
                   raised=h.raised, lowered_by=None if h.lowered_by is None else _person(room, h.lowered_by))
        hands.append(out)
    return hands


def _attention(room: Room) -> list[dict[str, Any]]:
    requests = []
    for r in room.attention.requests():
        out = r.record_json()
        out["from"] = _person(room, r.from_id, r.from_name)
        for a in [*out["acked"], *out["not_acked"]]:
            a["identity"] = _identity(room, a["participant_id"])
        requests.append(out)
    return requests


async def list_hands(request: web.Request) -> web.Response:
    """Every hand raised in the room (the latest 1000), in the order raised."""
    return await _room_records(request, "hands", _hands)


async def list_attention(request: web.Request) -> web.Response:
    """The attention checks (the latest 100), oldest first: who asked, who answered and when, who did not."""
    return await _room_records(request, "requests", _attention)


ROUTES = (
    ApiRoute("GET", "/v1/rooms/{room_id}/hands", list_hands,
             "Raised hands: who, raised and lowered when, by whom (answered)", response=HandsOut),
    ApiRoute("GET", "/v1/rooms/{room_id}/attention", list_attention,
             "Attention checks: who asked what, who acknowledged and when, who did not", response=AttentionPage),
)

"""REST /v1: rooms, tokens, participants.  Thin: parse, call the service layer, map errors."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS, SETTINGS, TOKENS
from signaling.errors import NotFound, RoomEnded
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import int_query, read_body, require_admin
from signaling.rest.models import (
    ParticipantPage,
    RemoveResult,
    RoomOut,
    RoomPage,
    TokenRequest,
    TokenResponse,
)
from signaling.rooms import ParticipantState, RoomSettings
from signaling.rooms.room import MAX_EXTEND_MINUTES

PAGE = (QueryParam("offset", {"type": "integer", "minimum": 0}, "first item"),
        QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "items per page (100)"))


class ExtendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_EXTEND_MINUTES)]


class ExtendResult(msgspec.Struct, kw_only=True):
    room_id: str
    ends_at: float | None  # None: a duration that starts with the first join
    minutes: int


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


async def create_room(request: web.Request) -> web.Response:
    require_admin(request)
    # decoded as a plain object first: a field that does not fit is `invalid_settings` naming the field
    settings = RoomSettings.parse(await read_body(request, dict[str, Any]))
    room, created = await request.app[ROOMS].create(settings)
    return _json(room.to_json(), status=201 if created else 200)


async def list_rooms(request: web.Request) -> web.Response:
    require_admin(request)
    offset = int_query(request, "offset", 0, 0, 10**9)
    limit = int_query(request, "limit", 100, 1, 500)
    active = request.query.get("active", "true").lower() not in ("0", "false", "no")
    rooms, total = await request.app[ROOMS].list_rooms(active_only=active, offset=offset, limit=limit)
    return _json({"rooms": [r.to_json(participants=0) for r in rooms], "total": total, "offset": offset,
                  "limit": limit})


async def get_room(request: web.Request) -> web.Response:
    require_admin(request)
    rooms = request.app[ROOMS]
    room = await rooms.get(request.match_info["room_id"])
    data = room.to_json()
    live = rooms.live.get(room.room_id)
    if live is not None and live.places is not None:  # the open breakout groups are the live room's
        data["breakouts"] = live.places.open_groups()
    return _json(data)


async def end_room(request: web.Request) -> web.Response:
    require_admin(request)
    room = await request.app[ROOMS].end(request.match_info["room_id"], reason="ended through the API")
    return _json(room.to_json())


async def extend_room(request: web.Request) -> web.Response:
    require_admin(request)
    body: ExtendRequest = await read_body(request, ExtendRequest)
    rooms = request.app[ROOMS]
    room = await rooms.get(request.match_info["room_id"])
    live = rooms.live.get(room.room_id)
    if live is not None and not live.closed:  # the same path as a host's `room_extend`
        ends_at = await live.extend(None, body.minutes)
    else:
        ends_at = room.extend(None, body.minutes, request.app[CLOCK](), minute_s=rooms.minute_s)
        await rooms.store.save_room(room)
    return _json({"room_id": room.room_id, "ends_at": ends_at, "minutes": body.minutes})


async def mint_token(request: web.Request) -> web.Response:
    require_admin(request)
    app = request.app
    room = await app[ROOMS].get(request.match_info["room_id"])
    if room.ended:
        raise RoomEnded("this lesson has ended; create a new room")
    body: TokenRequest = await read_body(request, TokenRequest)
    settings = app[SETTINGS]
    ttl = body.ttl_s or settings.token_ttl_s
    token = app[TOKENS].mint_access(
        identity=body.identity, name=body.name, room_id=room.room_id, role=body.role,
        registered=body.registered, ttl_s=ttl, family_name=body.family_name, given_name=body.given_name,
    )
    join_url = f"{settings.base_url}/join/{quote(room.room_id, safe='')}?token={token}"
    return _json({"token": token, "join_url": join_url, "expires_at": int(time.time()) + ttl}, status=201)


async def list_participants(request: web.Request) -> web.Response:
    require_admin(request)
    room = await request.app[ROOMS].get(request.match_info["room_id"])
    offset = int_query(request, "offset", 0, 0, 10**9)
    limit = int_query(request, "limit", 100, 1, 500)
    listed, total = room.page(offset, limit)
    return _json({"participants": [p.to_json() for p in listed], "total": total, "offset": offset,
                  "limit": limit})


async def remove_participant(request: web.Request) -> web.Response:
    require_admin(request)
    rooms = request.app[ROOMS]
    room_id, identity = request.match_info["room_id"], request.match_info["identity"]
    room = await rooms.get(room_id)
    ban = request.query.get("ban", "false").lower() in ("1", "true", "yes")
    p = room.by_identity(identity)
    live = rooms.live.get(room_id)
    removed = p is not None and p.state is not ParticipantState.LEFT
    if p is not None and removed:
        reason = "removed by the school's administrator"
        if live is not None:  # the same path as a host's `remove`
            await live.remove(None, p.participant_id, ban=ban, reason=reason)
        else:
            room.remove(None, p.participant_id, ban=ban, now=request.app[CLOCK]())
    elif ban:
        room.ban(identity)
    else:
        raise NotFound(f"{identity!r} is not in this room")
    await rooms.store.save_room(room)
    return _json({"removed": removed, "banned": ban})


ROUTES = (
    ApiRoute("POST", "/v1/rooms", create_room, "Create a room (idempotent on external_id)",
             response=RoomOut, status=201),
    ApiRoute("GET", "/v1/rooms", list_rooms, "List rooms, newest first", response=RoomPage,
             query=(*PAGE, QueryParam("active", {"type": "boolean"}, "only active rooms (default true)"))),
    ApiRoute("GET", "/v1/rooms/{room_id}", get_room, "A room with settings, counts and participants",
             response=RoomOut),
    ApiRoute("DELETE", "/v1/rooms/{room_id}", end_room, "End the room for everyone", response=RoomOut),
    ApiRoute("POST", "/v1/rooms/{room_id}/extend", extend_room,
             "Move the lesson's end later (1..240 minutes); everyone in the room gets room_extended",
             body=ExtendRequest, response=ExtendResult, errors=(400, 401, 404, 409, 410)),
    ApiRoute("POST", "/v1/rooms/{room_id}/tokens", mint_token, "Mint an access token and join link",
             body=TokenRequest, response=TokenResponse, status=201, errors=(400, 401, 404, 410)),
    ApiRoute("GET", "/v1/rooms/{room_id}/participants", list_participants,
             "Participants sorted by family name (paginated)", response=ParticipantPage, query=PAGE),
    ApiRoute("DELETE", "/v1/rooms/{room_id}/participants/{identity}", remove_participant,
             "Remove a participant (?ban=true keeps them out)", response=RemoveResult,
             query=(QueryParam("ban", {"type": "boolean"}, "keep them out of this room"),)),
)

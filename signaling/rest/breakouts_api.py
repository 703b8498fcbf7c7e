"""REST for breakout groups: a room's groups now and who was in which group when; templates of a class."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS
from signaling.errors import NotFound
from signaling.rest.api_route import ApiRoute
from signaling.rest.middleware import read_body, require_admin
from signaling.rooms.breakout_feature import BREAKOUT_STORE
from signaling.rooms.breakout_store import BreakoutTemplate, TemplateGroup
from signaling.rooms.breakouts import MAX_NAME, clean_name
from signaling.rooms.live_breakouts import LiveBreakouts
from signaling.rooms.room import new_id


class TemplateGroupIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
    identities: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]],
                          msgspec.Meta(max_length=2000)] = msgspec.field(default_factory=list)


class TemplateIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
    groups: Annotated[list[TemplateGroupIn], msgspec.Meta(min_length=2, max_length=50)]


class TemplateOut(msgspec.Struct, kw_only=True):
    template_id: str
    class_id: str
    name: str
    groups: list[dict[str, Any]]
    created_at: float
    updated_at: float


class TemplateList(msgspec.Struct, kw_only=True):
    templates: list[TemplateOut]


class RoomBreakouts(msgspec.Struct, kw_only=True):
    room_id: str
    breakouts: dict[str, Any] | None  # the groups now (None: none in this process)
    attendance: list[dict[str, Any]]  # every stay in a group: breakout_id, participant, joined_at, left_at


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


async def room_breakouts(request: web.Request) -> web.Response:
    require_admin(request)
    room_id = request.match_info["room_id"]
    rooms = request.app[ROOMS]
    await rooms.get(room_id)  # room_not_found
    live = rooms.live.get(room_id)
    current = None
    if live is not None:
        feature = next((f for f in live.features if isinstance(f, LiveBreakouts)), None)
        if feature is not None and feature.current is not None:
            current = feature.current.to_json(request.app[CLOCK]())
    stints = await request.app[BREAKOUT_STORE].stints(room_id)
    return _json({"room_id": room_id, "breakouts": current, "attendance": [s.to_json() for s in stints]})


async def list_templates(request: web.Request) -> web.Response:
    require_admin(request)
    found = await request.app[BREAKOUT_STORE].templates(request.match_info["class_id"])
    return _json({"templates": [t.to_json() for t in found]})


async def put_template(request: web.Request) -> web.Response:
    require_admin(request)
    body: TemplateIn = await read_body(request, TemplateIn)
    now = request.app[CLOCK]()
    groups = tuple(TemplateGroup(clean_name(g.name, f"Группа {i}"), tuple(g.identities))
                   for i, g in enumerate(body.groups, 1))
    tpl = BreakoutTemplate(new_id("BT"), request.match_info["class_id"], clean_name(body.name, "Шаблон"), groups,
                           now, now)
    saved = await request.app[BREAKOUT_STORE].save_template(tpl)
    return _json(saved.to_json())


async def delete_template(request: web.Request) -> web.Response:
    require_admin(request)
    template_id = request.match_info["template_id"]
    if not await request.app[BREAKOUT_STORE].delete_template(template_id):
        raise NotFound(f"no breakout template {template_id!r}")
    return _json({"deleted": template_id})


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/v1/rooms/{room_id}/breakouts", room_breakouts,
             "The room's breakout groups now and who was in which group when", response=RoomBreakouts),
    ApiRoute("GET", "/v1/classes/{class_id}/breakout_templates", list_templates,
             "Breakout templates saved for a class", response=TemplateList),
    ApiRoute("POST", "/v1/classes/{class_id}/breakout_templates", put_template,
             "Save a breakout template for a class (the same name replaces it)", body=TemplateIn,
             response=TemplateOut),
    ApiRoute("DELETE", "/v1/breakout_templates/{template_id}", delete_template, "Delete a breakout template"),
)

"""The browser client: /, /join/{room_id}, /web/* (static files from web/; nothing from the internet),
and the e-journal's pages: /lesson/{lesson_id} (a per-person lesson link: enters the occurrence open
now, or says when it starts) and /teacher (a teacher's schedule and the form to plan a lesson).

Two small JSON calls serve the join page itself, authorised by the page's own access token
(``Authorization: Bearer <token>``, never an admin token): ``GET /join/{room_id}/check`` tells the
page before the device check whether its link is good (the lesson's name, the person's role, ended or
not), and ``GET /join/{room_id}/attendance`` gives a host the attendance summary for the end screen
(``?format=csv`` for the download). They live outside /v1 on purpose: they are the page's, not the
school's API, and the OpenAPI document stays the school's.

The client is plain ES modules and CSS (docs/client.md). Its files are revalidated on every load
(``Cache-Control: no-cache``: a 304 when unchanged) so a server upgrade never mixes old and new modules.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS, SETTINGS, TOKENS
from signaling.auth import AccessGrant, TokenError
from signaling.errors import Forbidden, InvalidRequest, Unauthorized
from signaling.rooms.attendance import CSV_COLUMNS

WEB_ROOT = web.AppKey("web_root", Path)
NO_STORE = {"Cache-Control": "no-store"}


def default_web_root() -> Path:
    return Path(__file__).resolve().parents[2] / "web"


async def join_page(request: web.Request) -> web.FileResponse:
    # the page itself reads ?token= and shows a clear message when it is missing
    return web.FileResponse(request.app[WEB_ROOT] / "index.html", headers=NO_STORE)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "index.html", headers=NO_STORE)


async def lesson_page(request: web.Request) -> web.FileResponse:
    # the token is in the fragment (#token=...): it never reaches the server or its logs
    return web.FileResponse(request.app[WEB_ROOT] / "lesson.html", headers=NO_STORE)


async def teacher_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[WEB_ROOT] / "teacher.html", headers=NO_STORE)


def _grant(request: web.Request) -> AccessGrant:
    """The page's access token for this room, from ``Authorization: Bearer``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send the join link's token: Authorization: Bearer <token>")
    try:
        return request.app[TOKENS].verify_access(token.strip(), room_id=request.match_info["room_id"])
    except TokenError as e:
        raise Unauthorized(str(e), code="expired_token" if "expired" in str(e) else None) from None


async def check_link(request: web.Request) -> web.Response:
    """What the join page says before it asks for the camera: a bad or expired token is 401, a room
    that does not exist 404 (`not_found`), an ended one 200 with ``ended: true`` and its name."""
    grant = _grant(request)
    rooms = request.app[ROOMS]
    room = await rooms.get(grant.room_id)
    body: dict[str, Any] = {
        "room_id": room.room_id, "name": room.settings.name, "mode": room.settings.mode.value,
        "role": grant.role.value, "ended": room.ended, "ends_at": room.ends_at(rooms.minute_s),
        "display_name": grant.name,
    }
    return web.json_response(body, headers=NO_STORE)


async def join_attendance(request: web.Request) -> web.Response:
    """The attendance summary for a host's end screen (JSON, or CSV with ``?format=csv``): hosts and
    co-hosts only (by the token's role, or the role the room gave that person)."""
    grant = _grant(request)
    fmt = request.query.get("format", "json").lower()
    if fmt not in ("json", "csv"):
        raise InvalidRequest("query parameter 'format' must be json or csv")
    room = await request.app[ROOMS].get(grant.room_id)
    records = room.attendance.records()
    roles = {r.identity: r.role for r in records}
    if not grant.role.is_moderator and roles.get(grant.identity) not in ("host", "cohost"):
        raise Forbidden("only the lesson's teacher sees its attendance")
    now = room.ended_at if room.ended_at is not None else request.app[CLOCK]()
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # a BOM: spreadsheets then read Cyrillic names as UTF-8
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        for row in room.attendance.rows(now):
            w.writerow(["" if v is None else v for v in row])
        return web.Response(body=buf.getvalue().encode("utf-8"), headers={
            **NO_STORE, "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="attendance.csv"'})
    return web.json_response({"room_id": room.room_id, "name": room.settings.name, "started_at": room.started_at,
                              "ended_at": room.ended_at,
                              "participants": [r.to_json(now) for r in records]}, headers=NO_STORE)


async def _revalidate_client_files(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/web/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"


def setup_web(app: web.Application) -> None:
    root = Path(app[SETTINGS].web_root) if app[SETTINGS].web_root else default_web_root()
    app[WEB_ROOT] = root
    app.router.add_get("/", index_page)
    app.router.add_get("/join/{room_id}", join_page)
    app.router.add_get("/lesson/{lesson_id}", lesson_page)
    app.router.add_get("/teacher", teacher_page)
    app.router.add_get("/join/{room_id}/check", check_link)
    app.router.add_get("/join/{room_id}/attendance", join_attendance)
    if root.is_dir():
        app.router.add_static("/web/", root, follow_symlinks=False, append_version=False)
        app.on_response_prepare.append(_revalidate_client_files)

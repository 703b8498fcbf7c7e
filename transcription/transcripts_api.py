"""REST for transcripts: ``GET /v1/rooms/{room_id}/transcript?format=vtt|srt|txt|json``.

An admin token (``Authorization: Bearer``), or ``?token=`` a host's or co-host's access token to that
room (what the browser client has: a link it can open).  Times are relative to the room's start."""

from __future__ import annotations

from aiohttp import web

from signaling.app_keys import ROOMS, TOKENS
from signaling.auth import TokenError
from signaling.errors import Forbidden, InvalidRequest, Unauthorized
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import require_admin
from transcription.feature import TRANSCRIPTION
from transcription.transcript import CONTENT_TYPES, ExportFormat, export


def _authorise(request: web.Request, room_id: str) -> None:
    token = request.query.get("token")
    if token is None:
        require_admin(request)
        return
    try:
        grant = request.app[TOKENS].verify_access(token, room_id=room_id)
    except TokenError as e:
        raise Unauthorized(str(e)) from None
    if not grant.role.is_moderator:
        raise Forbidden("only the room's hosts and co-hosts may download its transcript")


async def get_transcript(request: web.Request) -> web.Response:
    room_id = request.match_info["room_id"]
    _authorise(request, room_id)
    try:
        fmt = ExportFormat(request.query.get("format", "json"))
    except ValueError:
        raise InvalidRequest(f"query parameter 'format': one of {', '.join(f.value for f in ExportFormat)}") from None
    room = await request.app[ROOMS].get(room_id)  # room_not_found
    origin = room.started_at if room.started_at is not None else room.created_at
    lines = await request.app[TRANSCRIPTION].store.lines(room_id)
    body = export(lines, origin, fmt)
    filename = f"transcript-{room_id}.{fmt.value}"
    return web.Response(text=body, content_type=CONTENT_TYPES[fmt], charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/v1/rooms/{room_id}/transcript", get_transcript,
             "The room's transcript (final captions: speaker, times from the room's start, text)", admin=False,
             query=(QueryParam("format", {"type": "string", "enum": [f.value for f in ExportFormat]},
                               "vtt, srt, txt or json (default)"),
                    QueryParam("token", {"type": "string"}, "a host's access token to the room (instead of "
                               "an admin token)")),
             errors=(400, 401, 403, 404), content_type="text/vtt"),
)

"""REST for recordings: list, metadata, start/stop, download (HTTP Range), delete.  Thin: parse, call
the service, map errors.

Everything answers an admin token.  The file routes also take ``?token=`` (a signed link that a host's
page got over the WebSocket, recordings/download_tokens.py), since a ``<video src>`` sends no header."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from recordings.errors import RecordingNotFound
from recordings.feature import RECORDINGS
from recordings.recording import RecordingState
from recordings.recording_store import RecordingQuery
from signaling.app_keys import ROOMS
from signaling.cluster.forward import forward_to_owner
from signaling.errors import Conflict, InvalidRequest, Unauthorized
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import int_query, require_admin

PAGE = (QueryParam("offset", {"type": "integer", "minimum": 0}, "first item"),
        QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "items per page (100)"))
FILTERS = (QueryParam("room_id", {"type": "string"}, "only this room's"),
           QueryParam("external_id", {"type": "string"}, "only the rooms with this external id"),
           QueryParam("since", {"type": "string"}, "started at or after (ISO 8601 or epoch seconds)"),
           QueryParam("until", {"type": "string"}, "started before (ISO 8601 or epoch seconds)"),
           QueryParam("state", {"type": "string", "enum": [s.value for s in RecordingState]}, "in this state"))
MEDIA_TYPES = {".webm": "video/webm", ".mkv": "video/x-matroska", ".mp4": "video/mp4", ".vtt": "text/vtt",
               ".json": "application/json", ".jsonl": "application/x-ndjson"}


class TrackOut(msgspec.Struct, kw_only=True):
    file: str
    participant_id: str
    name: str
    source: str
    kind: str
    codec: str
    start: float
    end: float | None
    size_bytes: int


class RecordingOut(msgspec.Struct, kw_only=True):
    recording_id: str
    room_id: str
    room_name: str
    external_id: str | None
    state: str  # recording | processing | ready | failed | recovered
    started_at: float
    ended_at: float | None
    started_by: str | None
    duration_s: float
    size_bytes: int
    tracks: list[TrackOut]
    composed: str | None
    progress: float
    error: str | None
    error_message: str | None
    chat: bool
    captions: bool


class RecordingPage(msgspec.Struct, kw_only=True):
    recordings: list[RecordingOut]
    total: int
    offset: int
    limit: int


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


def _time_query(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r}: give ISO 8601 or epoch seconds") from None


def _query(request: web.Request, room_id: str | None) -> RecordingQuery:
    state_text = request.query.get("state")
    try:
        state = RecordingState(state_text) if state_text else None
    except ValueError:
        raise InvalidRequest(f"query parameter 'state': one of {', '.join(s.value for s in RecordingState)}") from None
    return RecordingQuery(room_id=room_id or request.query.get("room_id") or None,
                          external_id=request.query.get("external_id") or None,
                          since=_time_query(request, "since"), until=_time_query(request, "until"), state=state)


async def _page(request: web.Request, room_id: str | None) -> web.Response:
    require_admin(request)
    offset = int_query(request, "offset", 0, 0, 10**9)
    limit = int_query(request, "limit", 100, 1, 500)
    found, total = await request.app[RECORDINGS].store.find(_query(request, room_id), offset=offset, limit=limit)
    return _json({"recordings": [r.to_json() for r in found], "total": total, "offset": offset, "limit": limit})


async def list_recordings(request: web.Request) -> web.Response:
    return await _page(request, None)


async def list_room_recordings(request: web.Request) -> web.Response:
    return await _page(request, request.match_info["room_id"])


async def get_recording(request: web.Request) -> web.Response:
    require_admin(request)
    rec = await request.app[RECORDINGS].get(request.match_info["recording_id"])
    return _json(rec.to_json())


async def delete_recording(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    rec = await request.app[RECORDINGS].get(request.match_info["recording_id"])
    # one being made is refused by the worker making it (several workers: signaling/cluster/)
    forwarded = await forward_to_owner(request, rec.room_id) if rec.state is RecordingState.RECORDING else None
    if forwarded is not None:
        return forwarded
    await request.app[RECORDINGS].delete(rec.recording_id)
    return web.Response(status=204)


def _live(request: web.Request) -> Any:
    room_id = request.match_info["room_id"]
    live = request.app[ROOMS].live.get(room_id)
    if live is None or live.closed:
        raise Conflict(f"room {room_id!r} is not in session here (nobody has joined it)", code="room_not_live")
    return live


async def start_recording(request: web.Request) -> web.Response:
    require_admin(request)
    rec = await request.app[RECORDINGS].start(_live(request), by=None)
    return _json(rec.to_json(), status=201)


async def stop_recording(request: web.Request) -> web.Response:
    require_admin(request)
    rec = await request.app[RECORDINGS].stop(request.match_info["room_id"], by=None)
    return _json(rec.to_json())


async def compose_recording(request: web.Request) -> web.Response:
    require_admin(request)
    rec = await request.app[RECORDINGS].compose_again(request.match_info["recording_id"])
    return _json(rec.to_json(), status=202)


async def _serve(request: web.Request, name: str | None) -> web.StreamResponse:
    service = request.app[RECORDINGS]
    recording_id = request.match_info["recording_id"]
    token = request.query.get("token")
    if token is None:
        require_admin(request)
    elif not service.tokens.valid(token, recording_id, now=service.clock()):
        raise Unauthorized("this download link is not valid (expired, or for another recording)")
    rec = await service.get(recording_id)
    if name is None:
        if rec.composed is None:
            raise RecordingNotFound(f"recording {recording_id!r} has no composed video yet (state {rec.state.value})")
        name = rec.composed
    path = service.file_path(rec, name)
    headers = {"Content-Type": MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
               "Cache-Control": "private, max-age=300"}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{rec.recording_id}-{path.name}"'
    return web.FileResponse(path, headers=headers)  # answers Range requests (206) itself


async def download_file(request: web.Request) -> web.StreamResponse:
    return await _serve(request, request.match_info["name"])


async def download_video(request: web.Request) -> web.StreamResponse:
    return await _serve(request, None)


FILE_QUERY = (QueryParam("token", {"type": "string"}, "a signed link's token instead of an admin token"),
              QueryParam("download", {"type": "boolean"}, "as an attachment"))

ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/v1/recordings", list_recordings, "All recordings, newest first (filters, paginated)",
             response=RecordingPage, query=(*PAGE, *FILTERS)),
    ApiRoute("GET", "/v1/rooms/{room_id}/recordings", list_room_recordings, "A room's recordings, newest first",
             response=RecordingPage, query=(*PAGE, *FILTERS[2:])),
    ApiRoute("POST", "/v1/rooms/{room_id}/recordings/start", start_recording,
             "Start recording a room in session (everyone in it is told)", response=RecordingOut, status=201,
             errors=(400, 401, 403, 404, 409, 503, 507)),
    ApiRoute("POST", "/v1/rooms/{room_id}/recordings/stop", stop_recording,
             "Stop the room's recording (it is then composed)", response=RecordingOut, errors=(401, 404, 409)),
    ApiRoute("GET", "/v1/recordings/{recording_id}", get_recording,
             "A recording: state, duration, size, tracks", response=RecordingOut),
    ApiRoute("POST", "/v1/recordings/{recording_id}/compose", compose_recording,
             "Compose the video (again): a recovered recording, a failed composition", response=RecordingOut,
             status=202, errors=(401, 404, 409)),
    ApiRoute("DELETE", "/v1/recordings/{recording_id}", delete_recording, "Delete a recording (files and record)",
             status=204, errors=(401, 404, 409)),
    ApiRoute("GET", "/v1/recordings/{recording_id}/video", download_video,
             "The composed MP4 (HTTP Range)", admin=False, query=FILE_QUERY, content_type="video/mp4"),
    ApiRoute("GET", "/v1/recordings/{recording_id}/files/{name}", download_file,
             "One file of the recording: a track, chat.vtt, manifest.json (HTTP Range)", admin=False,
             query=FILE_QUERY, content_type="application/octet-stream"),
)

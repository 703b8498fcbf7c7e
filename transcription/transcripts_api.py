"""REST for transcripts: ``GET /v1/rooms/{room_id}/transcript?format=vtt|srt|txt|json``; and
file transcription jobs: ``POST /v1/transcriptions`` (the media file as the body), then
``GET /v1/transcriptions/{job_id}`` until ``state`` is ``done`` or ``failed``.

An admin token (``Authorization: Bearer``), or ``?token=`` a host's or co-host's access token to that
room (what the browser client has: a link it can open).  Times are relative to the room's start."""

from __future__ import annotations

from aiohttp import web

from signaling.app_keys import ROOMS, TOKENS
from signaling.auth import TokenError
from signaling.errors import Forbidden, InvalidRequest, Unauthorized
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import require_admin
from transcription.errors import MediaTooLarge
from transcription.feature import FILE_JOBS, TRANSCRIPTION
from transcription.file_jobs import MAX_BYTES
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


async def submit_file(request: web.Request) -> web.Response:
    require_admin(request)
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise MediaTooLarge(f"the upload is larger than {MAX_BYTES // (1024 * 1024)} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):  # streamed: past the app's 1 MiB body limit
        size += len(chunk)
        if size > MAX_BYTES:
            raise MediaTooLarge(f"the upload is larger than {MAX_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    if not size:
        raise InvalidRequest("send the voice or video message as the request body")
    job = await request.app[FILE_JOBS].submit(b"".join(chunks))
    return web.json_response(job.to_json(), status=202)


async def get_file_job(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(request.app[FILE_JOBS].get(request.match_info["job_id"]).to_json())


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/v1/rooms/{room_id}/transcript", get_transcript,
             "The room's transcript (final captions: speaker, times from the room's start, text)", admin=False,
             query=(QueryParam("format", {"type": "string", "enum": [f.value for f in ExportFormat]},
                               "vtt, srt, txt or json (default)"),
                    QueryParam("token", {"type": "string"}, "a host's access token to the room (instead of "
                               "an admin token)")),
             errors=(400, 401, 403, 404), content_type="text/vtt"),
    ApiRoute("POST", "/v1/transcriptions", submit_file,
             "Transcribe a voice or video message (the file as the body, any audio PyAV reads, up to 25 MB "
             "and 120 s): an async job", status=202, errors=(400, 401, 413, 429, 503)),
    ApiRoute("GET", "/v1/transcriptions/{job_id}", get_file_job,
             "A file transcription job: state queued|running|done|failed, text, segments (start, end, text)",
             errors=(401, 404)),
)

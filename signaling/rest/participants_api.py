"""REST /v1: host controls through the school's API (mute) and the attendance report."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS
from signaling.errors import InvalidRequest, NotFound
from signaling.messages import Source
from signaling.rest.api_route import ApiRoute, QueryParam
from signaling.rest.middleware import read_body, require_admin
from signaling.rooms import ParticipantState
from signaling.rooms.attendance import CSV_COLUMNS


class MuteRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    source: Source
    muted: bool = True


class MuteResult(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str
    muted: dict[str, bool]


class AttendanceInterval(msgspec.Struct, kw_only=True):
    joined: float
    left: float | None


class AttendanceRecordOut(msgspec.Struct, kw_only=True):
    identity: str
    name: str
    family_name: str
    given_name: str
    role: str
    registered: bool
    first_joined: float | None
    last_left: float | None
    total_seconds: float
    sessions: int
    intervals: list[AttendanceInterval]


class AttendanceOut(msgspec.Struct, kw_only=True):
    room_id: str
    name: str
    started_at: float | None
    ended_at: float | None
    count: int
    participants: list[AttendanceRecordOut]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


async def mute_participant(request: web.Request) -> web.Response:
    """Mute (or lift the server-side mute of) a source of a participant who is in the room."""
    require_admin(request)
    rooms = request.app[ROOMS]
    room_id, identity = request.match_info["room_id"], request.match_info["identity"]
    room = await rooms.get(room_id)
    body: MuteRequest = await read_body(request, MuteRequest)
    p = room.by_identity(identity)
    if p is None or p.state is not ParticipantState.JOINED:
        raise NotFound(f"{identity!r} is not in this room")
    live = rooms.live.get(room_id)
    if body.muted:
        room.mute_targets(None, p.participant_id, body.source)
    if live is not None:
        await live.set_muted(p, body.source, body.muted)
        live.send_to(p.participant_id, {"event": "muted_by_host", "source": body.source, "muted": body.muted,
                                        "by": None})
    else:
        p.muted[body.source] = body.muted
    await rooms.store.save_room(room)
    return _json({"participant_id": p.participant_id, "identity": p.identity, "muted": dict(p.muted)})


async def attendance(request: web.Request) -> web.Response:
    """Who was there, from when to when (also after the room ended); ?format=csv for spreadsheets."""
    require_admin(request)
    room = await request.app[ROOMS].get(request.match_info["room_id"])
    fmt = request.query.get("format", "json").lower()
    if fmt not in ("json", "csv"):
        raise InvalidRequest("query parameter 'format' must be json or csv")
    now = room.ended_at if room.ended_at is not None else request.app[CLOCK]()
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # a BOM: spreadsheets then read Cyrillic names as UTF-8
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        for row in room.attendance.rows(now):
            w.writerow(["" if v is None else v for v in row])
        return web.Response(body=buf.getvalue().encode("utf-8"), headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": _attachment(f"attendance-{room.room_id}.csv"),
        })
    records = [r.to_json(now) for r in room.attendance.records()]
    return _json({"room_id": room.room_id, "name": room.settings.name, "started_at": room.started_at,
                  "ended_at": room.ended_at, "count": len(records), "participants": records})


def _attachment(filename: str) -> str:
    """A Content-Disposition for a download named after a room id, which a token may choose
    (rooms_created_by_token): an ASCII fallback with nothing that could end the quoted string or
    the header, and the exact name percent-encoded (RFC 6266 section 4.3, RFC 8187)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


ROUTES = (
    ApiRoute("POST", "/v1/rooms/{room_id}/participants/{identity}/mute", mute_participant,
             "Mute a participant's source at the server (muted: false lifts it)", body=MuteRequest,
             response=MuteResult),
    ApiRoute("GET", "/v1/rooms/{room_id}/attendance", attendance,
             "Attendance: joins and leaves per person (JSON, or CSV with ?format=csv)", response=AttendanceOut,
             query=(QueryParam("format", {"type": "string", "enum": ["json", "csv"]},
                               "json (default) or csv (UTF-8 with BOM)"),)),
)

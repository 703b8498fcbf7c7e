"""REST /v1/lessons: lessons from the e-journal's timetable.  Thin: parse, call the service, map errors.

Lessons answer an admin token, or a teacher token for the lessons that teacher teaches; ``enter``
answers the lesson link's own token.  Lesson errors carry ``details`` where useful (``lesson_not_open``:
when it opens and starts)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from signaling.app_keys import SETTINGS, TOKENS
from signaling.auth import AdminGrant, TeacherGrant, TokenError
from signaling.cluster.forward import forward_to_owner, may_forward
from signaling.errors import Unauthorized
from signaling.lessons.errors import InvalidLesson, LessonError
from signaling.lessons.feature import LESSONS
from signaling.lessons.lesson import Lesson
from signaling.lessons.lesson_service import Actor, LessonService
from signaling.lessons.roster_attendance import roster_csv
from signaling.lessons.spec import LessonIn, LessonPatch, RosterIn
from signaling.rest.api_route import ApiRoute, Handler, QueryParam
from signaling.rest.middleware import int_query, read_body, require_admin
from signaling.rest.models import Identity, Name, OptName

TEACHER_TOKEN_TTL_S = 24 * 3600  # the default lifetime of a teacher token (the school's system mints more)


# --- response shapes (for the OpenAPI document) ---------------------------------------------------
class LinkOut(msgspec.Struct, kw_only=True):
    identity: str
    role: str
    name: str
    family_name: str
    given_name: str
    join_url: str


class OccurrenceOut(msgspec.Struct, kw_only=True):
    starts_at: str
    ends_at: str
    opens_at: str
    closes_at: str
    starts_at_s: float
    ends_at_s: float
    state: str  # scheduled | open | running | ended | cancelled
    room_id: str | None


class LessonOut(msgspec.Struct, kw_only=True):
    lesson_id: str
    external_id: str | None
    name: str
    subject: str
    class_: dict[str, str] = msgspec.field(name="class")
    teachers: list[dict[str, Any]]
    students: list[dict[str, Any]]
    starts_at: str
    starts_at_s: float
    duration_minutes: int
    timezone: str
    recurrence: dict[str, Any] | None
    wait_for_teacher: bool
    room: dict[str, Any]
    state: str  # scheduled | cancelled
    created_at: float
    updated_at: float
    next_occurrences: list[OccurrenceOut]
    links: list[LinkOut]


class LessonPage(msgspec.Struct, kw_only=True):
    lessons: list[LessonOut]
    total: int
    offset: int
    limit: int
    occurrences: list[dict[str, Any]]  # {lesson_id, name, subject, class, ...OccurrenceOut}


class LinksOut(msgspec.Struct, kw_only=True):
    lesson_id: str
    links: list[LinkOut]


class EnterOut(msgspec.Struct, kw_only=True):
    room_id: str
    token: str
    join_url: str
    name: str
    role: str
    starts_at: str
    ends_at: str
    closes_at: str
    starts_at_s: float
    ends_at_s: float
    closes_at_s: float
    expires_at: int


class TeacherTokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    teacher_id: Identity
    name: Name
    family_name: OptName = ""
    given_name: OptName = ""
    ttl_s: Annotated[int, msgspec.Meta(ge=60)] | None = None


class TeacherTokenOut(msgspec.Struct, kw_only=True):
    token: str
    url: str
    expires_at: int


# --- the edge ---------------------------------------------------------------------------------------
def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: msgspec.json.encode(d).decode())


def lesson_errors(handler: Handler) -> Handler:
    """Lesson errors as ``{"error": {code, message, details?}}`` with their status."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LessonError as e:
            return _json(e.to_json(), e.status)

    return wrapped


def _bearer(request: web.Request, what: str) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"send {what}: Authorization: Bearer <token>")
    return token.strip()


def actor(request: web.Request) -> Actor:
    """An admin token, or a teacher token (then the service keeps the teacher to their lessons)."""
    token = _bearer(request, "an admin or teacher token")
    tokens = request.app[TOKENS]
    try:
        admin: AdminGrant = tokens.verify_admin(token)
        return admin
    except TokenError:
        pass
    try:
        teacher: TeacherGrant = tokens.verify_teacher(token)
        return teacher
    except TokenError as e:
        raise Unauthorized(f"not an admin or teacher token: {e}") from None


def time_query(request: web.Request, name: str) -> float | None:
    """An ISO 8601 time with its offset (a '+' sent unencoded arrives as a space), or epoch seconds."""
    text = request.query.get(name, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    if " " in text and "T" in text:
        text = text.replace(" ", "+")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise InvalidLesson(f"{name}: an ISO 8601 time with its UTC offset (2026-12-08T09:00:00+03:00) "
                            "or seconds since the epoch")
    return dt.timestamp()


# --- handlers -----------------------------------------------------------------------------------------
@lesson_errors
async def create_lesson(request: web.Request) -> web.Response:
    who = actor(request)
    svc = request.app[LESSONS]
    lesson, created = await svc.create(await read_body(request, dict[str, Any]), who)
    return _json(await svc.view(lesson), status=201 if created else 200)


@lesson_errors
async def list_lessons(request: web.Request) -> web.Response:
    who = actor(request)
    q = request.query
    result = await request.app[LESSONS].list(
        who, class_id=q.get("class_id") or None, teacher_id=q.get("teacher_id") or None,
        start=time_query(request, "from"), end=time_query(request, "to"),
        offset=int_query(request, "offset", 0, 0, 10**9), limit=int_query(request, "limit", 100, 1, 500))
    return _json(result)


async def _on_lesson(request: web.Request,
                     op: Callable[[LessonService, str, Actor], Awaitable[Lesson]]) -> web.Response:
    """``op`` on the path's lesson as the token's actor; answers the lesson's view."""
    svc = request.app[LESSONS]
    lesson = await op(svc, request.match_info["lesson_id"], actor(request))
    return _json(await svc.view(lesson))


async def _change_lesson(request: web.Request,
                         op: Callable[[LessonService, str, Any, Actor], Awaitable[Lesson]]) -> web.Response:
    """``op`` on the path's lesson with the JSON body, as the token's actor (checked before the body
    is read); answers the lesson's view."""
    who = actor(request)
    svc = request.app[LESSONS]
    lesson = await op(svc, request.match_info["lesson_id"], await read_body(request, dict[str, Any]), who)
    return _json(await svc.view(lesson))


@lesson_errors
async def get_lesson(request: web.Request) -> web.Response:
    return await _on_lesson(request, LessonService.get)


@lesson_errors
async def update_lesson(request: web.Request) -> web.Response:
    return await _change_lesson(request, LessonService.update)


@lesson_errors
async def cancel_lesson(request: web.Request) -> web.StreamResponse:
    forwarded = await _at_the_room(request)  # (a response is a mapping: empty ones are falsy)
    return forwarded if forwarded is not None else await _on_lesson(request, LessonService.cancel)


async def _at_the_room(request: web.Request) -> web.StreamResponse | None:
    """With several workers (signaling/cluster/), a change that must reach a running occurrence's
    room (the roster, a cancel) is answered by the worker serving that room: the live roster, who
    waits and the sockets are there.  The path names the lesson, not the room, so the cluster's
    middleware cannot forward it by its path: the lesson's rooms are looked up here and the request
    is forwarded as it came (the owner runs the one-process code; its answer, or a 503 if it cannot
    be reached, goes back as it is).  A forward, not a cluster event: the caller's 200 means the
    running room has the change, as with one process, instead of a hint that is lost while Redis is
    away (a cancel's cluster event, ClusterRooms.end, then waits at most 5 s for the database to say
    the room ended; it stays the way for a second running room served by a third worker).  One
    process: None."""
    if not may_forward(request):
        return None
    for room_id in await request.app[LESSONS].recent_rooms(request.match_info["lesson_id"], actor(request)):
        forwarded = await forward_to_owner(request, room_id)
        if forwarded is not None:
            return forwarded
    return None


@lesson_errors
async def replace_roster(request: web.Request) -> web.StreamResponse:
    forwarded = await _at_the_room(request)  # (a response is a mapping: empty ones are falsy)
    return forwarded if forwarded is not None else await _change_lesson(request, LessonService.replace_roster)


@lesson_errors
async def lesson_links(request: web.Request) -> web.Response:
    svc = request.app[LESSONS]
    lesson = await svc.get(request.match_info["lesson_id"], actor(request))
    return _json({"lesson_id": lesson.lesson_id, "links": svc.links(lesson)})


@lesson_errors
async def enter_lesson(request: web.Request) -> web.Response:
    token = _bearer(request, "the lesson link's token")
    try:
        entry = await request.app[LESSONS].enter(request.match_info["lesson_id"], token)
    except TokenError as e:
        raise Unauthorized(str(e)) from None
    tt, occ = entry.lesson.timetable, entry.occurrence
    base = request.app[SETTINGS].base_url
    return _json({"room_id": entry.room_id, "token": entry.token,
                  "join_url": f"{base}/join/{quote(entry.room_id, safe='')}#token={entry.token}",
                  "name": entry.lesson.name, "role": entry.role.value,
                  "starts_at": tt.iso(occ.starts_at), "ends_at": tt.iso(occ.ends_at),
                  "closes_at": tt.iso(occ.closes_at),
                  "starts_at_s": occ.starts_at, "ends_at_s": occ.ends_at, "closes_at_s": occ.closes_at,
                  "expires_at": entry.expires_at})


@lesson_errors
async def lesson_attendance(request: web.Request) -> web.StreamResponse:
    who = actor(request)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidLesson("format: json or csv")
    lesson_id = request.match_info["lesson_id"]
    report = await request.app[LESSONS].attendance(lesson_id, who, occurrence=time_query(request, "occurrence"))
    if fmt == "json":
        return _json(report)
    day = str(report.get("starts_at") or "")[:10]
    return web.Response(body=roster_csv(report), content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="attendance-{quote(lesson_id, safe="")}-{day}.csv"'})


async def mint_teacher_token(request: web.Request) -> web.Response:
    require_admin(request)
    body: TeacherTokenRequest = await read_body(request, TeacherTokenRequest)
    tokens = request.app[TOKENS]
    ttl = body.ttl_s or min(TEACHER_TOKEN_TTL_S, tokens.max_ttl_s)
    now = int(time.time())  # on the wall clock, as the API's other tokens
    token = tokens.mint_teacher(teacher_id=body.teacher_id, name=body.name, family_name=body.family_name,
                                given_name=body.given_name, ttl_s=ttl, now=now)
    return _json({"token": token, "url": f"{request.app[SETTINGS].base_url}/teacher#token={token}",
                  "expires_at": now + ttl}, status=201)


LESSON = "/v1/lessons/{lesson_id}"
ADMIN_OR_TEACHER = " (admin token, or a teacher token for the teacher's own lessons)"
RANGE = (QueryParam("from", {"type": "string"}, "ISO 8601 with offset, or epoch seconds (default now)"),
         QueryParam("to", {"type": "string"}, "end of the range, exclusive (default from + 7 days)"))
ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("POST", "/v1/lessons", create_lesson, "Create a lesson (idempotent on external_id)" + ADMIN_OR_TEACHER,
             body=LessonIn, response=LessonOut, status=201, errors=(400, 401, 403)),
    ApiRoute("GET", "/v1/lessons", list_lessons, "Lessons by class, teacher and date range, with their "
             "occurrences in the range" + ADMIN_OR_TEACHER, response=LessonPage, errors=(400, 401, 403),
             query=(QueryParam("class_id", {"type": "string"}), QueryParam("teacher_id", {"type": "string"}), *RANGE,
                    QueryParam("offset", {"type": "integer", "minimum": 0}, "first lesson"),
                    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "lessons per page (100)"))),
    ApiRoute("GET", LESSON, get_lesson, "A lesson with its next occurrences and links" + ADMIN_OR_TEACHER,
             response=LessonOut, errors=(401, 403, 404)),
    ApiRoute("PATCH", LESSON, update_lesson, "Change a lesson's name, time, recurrence or room settings"
             + ADMIN_OR_TEACHER, body=LessonPatch, response=LessonOut, errors=(400, 401, 403, 404, 410)),
    ApiRoute("DELETE", LESSON, cancel_lesson, "Cancel a lesson (a running occurrence ends)" + ADMIN_OR_TEACHER,
             response=LessonOut, errors=(401, 403, 404)),
    ApiRoute("PUT", LESSON + "/roster", replace_roster, "Replace the roster (applies at once to a running "
             "occurrence)" + ADMIN_OR_TEACHER, body=RosterIn, response=LessonOut, errors=(400, 401, 403, 404, 410)),
    ApiRoute("GET", LESSON + "/links", lesson_links, "Every teacher's and student's link" + ADMIN_OR_TEACHER,
             response=LinksOut, errors=(401, 403, 404)),
    ApiRoute("POST", LESSON + "/enter", enter_lesson, "Enter the occurrence open now (Authorization: the lesson "
             "link's token): its room and a room token", admin=False, response=EnterOut,
             errors=(401, 404, 409, 410)),
    ApiRoute("GET", LESSON + "/attendance", lesson_attendance, "An occurrence's attendance against the roster"
             + ADMIN_OR_TEACHER, errors=(400, 401, 403, 404, 409),
             query=(QueryParam("format", {"enum": ["json", "csv"]}, "json (default) or csv (UTF-8 with BOM)"),
                    QueryParam("occurrence", {"type": "string"},
                               "the occurrence's start (default: the latest that has started)"))),
    ApiRoute("POST", "/v1/teacher_tokens", mint_teacher_token, "Mint a teacher token and the teacher page's URL",
             body=TeacherTokenRequest, response=TeacherTokenOut, status=201, errors=(400, 401)),
)

"""Lessons from the e-journal through the real server on real sockets: create (idempotent), recurrence
with exceptions, the join window, enter then a WebSocket join with the room token, the roster changed
during the lesson, cancel, teacher tokens, bad input, attendance.

The server runs on a clock the test moves (create_app(settings, clock=...)): real time plus an
offset, so the tokens (checked on the wall clock) stay valid while the lesson's time is what the
test says."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from signaling.app_keys import EVENTS
from signaling.events import ATTENDANCE_READY, RoomEvent
from signaling.rooms import Role
from tests.conftest import Server

MSK = timezone(timedelta(hours=3))
MIN = 60.0


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, t: float) -> None:
        self.offset = t - time.time()


Make = Callable[..., Any]


@pytest.fixture
def lesson_server(server_factory: Make) -> Make:
    """``server_factory``'s server on a ``Clock`` of its own: (server, clock)."""

    async def make(**overrides: Any) -> tuple[Server, Clock]:
        clock = Clock()
        srv: Server = await server_factory(clock=clock, **overrides)
        return srv, clock

    return make


def start_in(hours: float) -> datetime:
    """A lesson start this far from now, on a whole minute, in Moscow time."""
    t = datetime.fromtimestamp(time.time() + hours * 3600, MSK)
    return t.replace(second=0, microsecond=0)


def lesson_body(start: datetime, **overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "external_id": "ejd-7b-alg", "subject": "Алгебра", "class": {"id": "7b", "name": "7Б"},
        "teachers": [{"id": "t-1", "family_name": "Иванова", "given_name": "Мария"}],
        "students": [{"id": "s-1", "family_name": "Петров", "given_name": "Пётр"},
                     {"id": "s-2", "family_name": "Алексеева", "given_name": "Анна"}],
        "starts_at": start.isoformat(), "duration_minutes": 45, "timezone": "Europe/Moscow",
    }
    b.update(overrides)
    return b


def link_token(lesson: dict[str, Any], identity: str) -> str:
    url = next(x["join_url"] for x in lesson["links"] if x["identity"] == identity)
    return str(url.split("#token=", 1)[1])


async def enter(srv: Server, lesson: dict[str, Any], identity: str) -> tuple[int, Any]:
    return await srv.rest("POST", f"/v1/lessons/{lesson['lesson_id']}/enter", auth=False,
                          headers={"Authorization": "Bearer " + link_token(lesson, identity)})


async def create(srv: Server, body: dict[str, Any]) -> dict[str, Any]:
    status, lesson = await srv.rest("POST", "/v1/lessons", body)
    assert status == 201, lesson
    return dict(lesson)


async def test_create_gives_links_and_occurrences_and_is_idempotent_on_external_id(lesson_server: Make) -> None:
    srv, _ = await lesson_server()
    lesson = await create(srv, lesson_body(start_in(2)))
    assert lesson["lesson_id"].startswith("LS_") and lesson["state"] == "scheduled"
    assert lesson["name"] == "Алгебра, 7Б" and lesson["starts_at"].endswith("+03:00")
    assert [(x["identity"], x["role"]) for x in lesson["links"]] == [
        ("t-1", "host"), ("s-1", "participant"), ("s-2", "participant")]
    assert "/lesson/" + lesson["lesson_id"] + "#token=" in lesson["links"][0]["join_url"]
    [occ] = lesson["next_occurrences"]
    assert occ["state"] == "scheduled" and occ["room_id"] is None and occ["starts_at"] == lesson["starts_at"]
    again_status, again = await srv.rest("POST", "/v1/lessons", lesson_body(start_in(5), subject="Другое"))
    assert again_status == 200 and again["lesson_id"] == lesson["lesson_id"] and again["subject"] == "Алгебра"
    status, page = await srv.rest("GET", "/v1/lessons?class_id=7b")
    assert status == 200 and page["total"] == 1


async def test_a_weekly_lesson_with_exceptions_lists_only_the_occurrences_that_happen(lesson_server: Make) -> None:
    srv, _ = await lesson_server()
    start = start_in(2)
    skipped = (start + timedelta(weeks=1)).date().isoformat()
    lesson = await create(srv, lesson_body(start, recurrence={"weekly": {"count": 4}, "except": [skipped]}))
    starts = [o["starts_at"] for o in lesson["next_occurrences"]]
    assert starts == [(start + timedelta(weeks=w)).isoformat() for w in (0, 2, 3)]
    frm = quote_time(start - timedelta(hours=1))
    to = quote_time(start + timedelta(weeks=3))  # the last one is at `to`: outside [from, to)
    status, page = await srv.rest("GET", f"/v1/lessons?from={frm}&to={to}")
    assert status == 200
    assert [o["starts_at"] for o in page["occurrences"]] == starts[:2]
    assert page["occurrences"][0]["class"] == {"id": "7b", "name": "7Б"}


def quote_time(t: datetime) -> str:
    return t.isoformat().replace("+", "%2B")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_the_join_window_then_enter_and_join_the_room_with_the_token(lesson_server: Make, store: str,
                                                                          tmp_path: Any) -> None:
    srv, clock = await lesson_server(store=store, **({"data_dir": str(tmp_path)} if store == "sqlite" else {}))
    start = start_in(2)
    lesson = await create(srv, lesson_body(start))
    clock.set(start.timestamp() - 16 * MIN)  # one minute before the window opens
    status, body = await enter(srv, lesson, "s-1")
    assert status == 409 and body["error"]["code"] == "lesson_not_open"
    details = body["error"]["details"]
    assert details["starts_at"] == start.isoformat() and details["name"] == "Алгебра, 7Б"
    assert details["opens_at"] == (start - timedelta(minutes=15)).isoformat()
    assert start.strftime("%H:%M") in body["error"]["message"]

    clock.set(start.timestamp() - 10 * MIN)
    status, student = await enter(srv, lesson, "s-1")
    assert status == 200, student
    assert student["role"] == "participant" and student["starts_at"] == start.isoformat()
    assert student["join_url"].endswith(f"/join/{student['room_id']}#token={student['token']}")
    status, teacher = await enter(srv, lesson, "t-1")
    assert status == 200 and teacher["room_id"] == student["room_id"] and teacher["role"] == "host"

    status, room = await srv.rest("GET", f"/v1/rooms/{student['room_id']}")
    assert status == 200
    assert room["external_id"] == f"{lesson['lesson_id']}@{start.isoformat()}"
    assert room["settings"]["lesson"]["lesson_id"] == lesson["lesson_id"]
    assert room["settings"]["ends_at"] == start.timestamp() + 45 * MIN

    s1 = await srv.connect(student["token"])
    welcome = await s1.event("welcome")
    assert welcome["state"] == "joined" and welcome["you"]["family_name"] == "Петров"
    t1 = await srv.connect(teacher["token"])
    assert (await t1.event("welcome"))["you"]["role"] == "host"

    status, got = await srv.rest("GET", f"/v1/lessons/{lesson['lesson_id']}")
    assert got["next_occurrences"][0]["state"] == "running"
    assert got["next_occurrences"][0]["room_id"] == student["room_id"]

    clock.set(start.timestamp() + 46 * MIN)  # after the end (close margin 0): no more entry
    await srv.rest("DELETE", f"/v1/rooms/{student['room_id']}")
    status, body = await enter(srv, lesson, "s-2")
    assert status == 410 and body["error"]["code"] == "lesson_ended"


async def test_a_roster_change_during_the_lesson_lets_the_waiting_student_in(lesson_server: Make) -> None:
    srv, clock = await lesson_server()
    start = start_in(2)
    lesson = await create(srv, lesson_body(start, students=[
        {"id": "s-1", "family_name": "Петров"}, {"id": "s-3", "family_name": "Новиков"}]))
    lid = lesson["lesson_id"]
    smaller = {"teachers": lesson_body(start)["teachers"], "students": [{"id": "s-1", "family_name": "Петров"}]}
    status, _ = await srv.rest("PUT", f"/v1/lessons/{lid}/roster", smaller)
    assert status == 200
    clock.set(start.timestamp() + MIN)
    status, teacher = await enter(srv, lesson, "t-1")
    t1 = await srv.connect(teacher["token"])
    await t1.event("welcome")
    status, newcomer = await enter(srv, lesson, "s-3")  # an old link of someone taken off the roster
    assert status == 200 and newcomer["role"] == "participant"
    s3 = await srv.connect(newcomer["token"])
    waiting = await s3.event("welcome")
    assert waiting["state"] == "waiting" and waiting["you"]["waiting_reason"] == "not_on_roster"

    back = {**smaller, "students": [*smaller["students"], {"id": "s-3", "family_name": "Новиков"}]}
    status, changed = await srv.rest("PUT", f"/v1/lessons/{lid}/roster", back)
    assert status == 200 and [p["id"] for p in changed["students"]] == ["s-1", "s-3"]
    await s3.event("admitted")
    await t1.event("participant_joined", participant_id=waiting["participant_id"])
    status, room = await srv.rest("GET", f"/v1/rooms/{teacher['room_id']}")
    assert {p["identity"] for p in room["participants"]} == {"t-1", "s-3"}


async def test_cancel_ends_the_running_occurrence_and_refuses_entry(lesson_server: Make) -> None:
    srv, clock = await lesson_server()
    start = start_in(2)
    lesson = await create(srv, lesson_body(start, recurrence={"weekly": {"count": 3}}))
    clock.set(start.timestamp())
    _, student = await enter(srv, lesson, "s-1")
    s1 = await srv.connect(student["token"])
    await s1.event("welcome")
    status, cancelled = await srv.rest("DELETE", f"/v1/lessons/{lesson['lesson_id']}")
    assert status == 200 and cancelled["state"] == "cancelled"
    ended = await s1.event("room_ended")
    assert ended["reason"] == "the lesson was cancelled"
    assert [o["state"] for o in cancelled["next_occurrences"]] == ["ended", "cancelled", "cancelled"]
    status, body = await enter(srv, lesson, "s-2")
    assert status == 410 and body["error"]["code"] == "lesson_cancelled"
    status, body = await srv.rest("PATCH", f"/v1/lessons/{lesson['lesson_id']}", {"name": "x"})
    assert status == 410 and body["error"]["code"] == "lesson_cancelled"


async def test_a_teacher_token_sees_and_edits_only_the_teachers_own_lessons(lesson_server: Make) -> None:
    srv, _ = await lesson_server()
    start = start_in(2)
    mine = await create(srv, lesson_body(start))
    status, minted = await srv.rest("POST", "/v1/teacher_tokens", {"teacher_id": "t-2", "name": "Олег Смирнов"})
    assert status == 201 and minted["url"].endswith("/teacher#token=" + minted["token"])
    as_t2 = {"Authorization": "Bearer " + minted["token"]}

    async def t2(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, got = await srv.rest(method, path, body, headers=as_t2, auth=False)
        return status, got

    path = f"/v1/lessons/{mine['lesson_id']}"
    for method, p, b in (("GET", path, None), ("PATCH", path, {"name": "x"}), ("DELETE", path, None),
                         ("GET", path + "/links", None), ("GET", path + "/attendance", None)):
        status, body = await t2(method, p, b)
        assert status == 403 and body["error"]["code"] == "forbidden", (method, p, body)
    status, body = await t2("POST", "/v1/lessons", lesson_body(start, external_id="other"))
    assert status == 403  # t-2 is not among its teachers
    own_body = lesson_body(start, external_id="t2-own", teachers=[{"id": "t-2", "family_name": "Смирнов"}])
    status, own = await t2("POST", "/v1/lessons", own_body)
    assert status == 201
    status, page = await t2("GET", "/v1/lessons")
    assert status == 200 and [x["lesson_id"] for x in page["lessons"]] == [own["lesson_id"]]
    status, _ = await t2("GET", "/v1/lessons?teacher_id=t-1")
    assert status == 403
    status, patched = await t2("PATCH", f"/v1/lessons/{own['lesson_id']}", {"name": "Геометрия, 7Б"})
    assert status == 200 and patched["name"] == "Геометрия, 7Б"
    status, _ = await t2("POST", "/v1/teacher_tokens", {"teacher_id": "t-2", "name": "x"})
    assert status == 401  # teacher tokens are the admin's to mint
    status, _ = await srv.rest("GET", "/v1/rooms", headers=as_t2, auth=False)
    assert status == 401  # nor is it an admin token elsewhere


async def test_bad_input_gets_a_code_and_changes_nothing(lesson_server: Make) -> None:
    srv, _ = await lesson_server()
    start = start_in(2)
    for bad in (lesson_body(start, timezone="Europe/Nowhere"), lesson_body(start, teachers=[]),
                lesson_body(start, starts_at="2026-13-40T09:00:00+03:00"),
                lesson_body(start, recurrence={"weekly": {"days": ["sunday"], "count": 2}})):
        status, body = await srv.rest("POST", "/v1/lessons", bad)
        assert status == 400 and body["error"]["code"] == "invalid_lesson", body
    status, page = await srv.rest("GET", "/v1/lessons")
    assert page["total"] == 0
    lesson = await create(srv, lesson_body(start))
    path = f"/v1/lessons/{lesson['lesson_id']}"
    status, body = await srv.rest("PATCH", path, {"duration_minutes": -5})
    assert status == 400 and body["error"]["code"] == "invalid_lesson"
    status, body = await srv.rest("PUT", path + "/roster", {"teachers": [{"id": "t-1"}], "students": [{"id": "t-1"}]})
    assert status == 400 and "twice" in body["error"]["message"]
    status, same = await srv.rest("GET", path)
    assert same["duration_minutes"] == 45 and len(same["students"]) == 2
    status, body = await srv.rest("GET", "/v1/lessons?from=yesterday")
    assert status == 400 and body["error"]["code"] == "invalid_lesson"
    status, body = await srv.rest("GET", "/v1/lessons/LS_nope")
    assert status == 404 and body["error"]["code"] == "lesson_not_found"
    # enter: only the lesson link's own token
    room_token = srv.tokens.mint_access(identity="s-1", name="x", room_id="R", role=Role.PARTICIPANT,
                                        registered=True, ttl_s=60)
    for token in (room_token, srv.admin["Authorization"].split()[1], ""):
        status, body = await srv.rest("POST", path + "/enter", auth=False,
                                      headers={"Authorization": f"Bearer {token}"})
        assert status == 401 and body["error"]["code"] == "unauthorized"
    other = await create(srv, lesson_body(start, external_id="other"))
    status, body = await srv.rest("POST", path + "/enter", auth=False,
                                  headers={"Authorization": "Bearer " + link_token(other, "s-1")})
    assert status == 401 and "another lesson" in body["error"]["message"]
    # a lesson token does not join a room
    c = await srv.http.ws_connect(srv.base.replace("http", "ws", 1) + "/v1/rtc?token=" + link_token(lesson, "s-1"))
    refused = (await c.receive_json(timeout=5))["error"]
    assert refused["code"] == "unauthorized" and "lesson link" in refused["message"]
    await c.receive(timeout=5)
    assert c.close_code == 4401
    await c.close()


async def test_attendance_against_the_roster_and_attendance_ready_when_the_room_ends(lesson_server: Make) -> None:
    srv, clock = await lesson_server()
    seen: list[RoomEvent] = []
    srv.app[EVENTS].subscribe(seen.append)
    start = start_in(2)
    lesson = await create(srv, lesson_body(start))
    lid = lesson["lesson_id"]
    clock.set(start.timestamp() - MIN)
    _, student = await enter(srv, lesson, "s-1")
    s1 = await srv.connect(student["token"])
    await s1.event("welcome")
    clock.set(start.timestamp() + 20 * MIN)
    status, report = await srv.rest("GET", f"/v1/lessons/{lid}/attendance")
    assert status == 200 and report["lesson"]["lesson_id"] == lid and report["room_id"] == student["room_id"]
    by_id = {r["identity"]: r for r in report["students"]}
    assert by_id["s-1"]["status"] == "present" and by_id["s-2"]["status"] == "absent"
    async with srv.http.get(srv.base + f"/v1/lessons/{lid}/attendance?format=csv", headers=srv.admin) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        raw = await r.read()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["family_name"] for row in rows if row["group"] == "student"] == ["Алексеева", "Петров"]

    await srv.rest("DELETE", f"/v1/rooms/{student['room_id']}")

    async def ready() -> RoomEvent:
        while True:
            for e in seen:
                if e.name == ATTENDANCE_READY:
                    return e
            await asyncio.sleep(0.02)

    event = await asyncio.wait_for(ready(), 5)
    assert event.lesson is not None and event.lesson["lesson_id"] == lid
    students = event.data["attendance"]["students"]
    assert {r["identity"]: r["status"] for r in students} == {"s-1": "present", "s-2": "absent"}


async def test_a_plain_room_gets_its_plain_attendance_when_it_ends(lesson_server: Make) -> None:
    srv, _ = await lesson_server()
    seen: list[RoomEvent] = []
    srv.app[EVENTS].subscribe(seen.append)
    room_id = await srv.create_room(name="Кружок")
    c = await srv.join(room_id, "u-1", family_name="Сидоров")
    await srv.rest("DELETE", f"/v1/rooms/{room_id}")
    await c.event("room_ended")
    for _ in range(100):
        if any(e.name == ATTENDANCE_READY for e in seen):
            break
        await asyncio.sleep(0.02)
    [event] = [e for e in seen if e.name == ATTENDANCE_READY]
    assert event.lesson is None and [r["identity"] for r in event.data["attendance"]] == ["u-1"]


async def test_the_whole_class_entering_at_once_gets_one_room(lesson_server: Make, tmp_path: Any) -> None:
    srv, clock = await lesson_server(store="sqlite", data_dir=str(tmp_path))
    start = start_in(2)
    students = [{"id": f"s-{i}", "family_name": f"Ученик {i}"} for i in range(12)]
    lesson = await create(srv, lesson_body(start, students=students))
    clock.set(start.timestamp() - 5 * MIN)
    answers = await asyncio.gather(*(enter(srv, lesson, p["id"]) for p in [*students, {"id": "t-1"}]))
    assert {status for status, _ in answers} == {200}
    assert len({body["room_id"] for _, body in answers}) == 1
    status, rooms = await srv.rest("GET", "/v1/rooms")
    assert status == 200 and rooms["total"] == 1

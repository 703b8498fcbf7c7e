"""A room with an end (a lesson's timetable end, a duration) ends on time also when nobody is
connected at that moment: everyone left a minute early, or the server was down.  Only then does
the journal get room_ended and the attendance (attendance_ready), each once, through the real
server (and, across a restart, through a webhook to a real receiver)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from signaling.app_keys import CLOCK, EVENTS
from signaling.app_keys import TOKENS as APP_TOKENS
from signaling.events import ATTENDANCE_READY, PARTICIPANT_LEFT, ROOM_ENDED, RoomEvent
from signaling.rooms import Role
from tests.conftest import Server, start_server, test_settings
from tests.e2e.restart_journal import admin, start_with_journal, stop_all
from tests.e2e.test_roster_entry import lesson_room
from tests.e2e.test_store_restart import Serve, connect, token
from tests.e2e.test_webhooks import Receiver


def names(seen: list[RoomEvent], room_id: str) -> list[str]:
    return [e.name for e in seen if e.room_id == room_id and e.name in (ROOM_ENDED, ATTENDANCE_READY)]


def recorder(server: Server) -> tuple[list[RoomEvent], asyncio.Event]:
    """The bus's events as they come, and a flag set at each."""
    seen: list[RoomEvent] = []
    changed = asyncio.Event()

    def record(e: RoomEvent) -> None:
        seen.append(e)
        changed.set()

    server.app[EVENTS].subscribe(record)
    return seen, changed


async def until(pred: Callable[[], bool], changed: asyncio.Event, timeout: float = 5.0) -> None:
    async def loop() -> None:
        while not pred():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(loop(), timeout)


async def test_a_lesson_everyone_left_before_its_end_ends_on_time_and_reports_attendance_once(
        server: Server) -> None:
    seen, changed = recorder(server)
    ends_at = server.app[CLOCK]() + 0.8
    room_id = await lesson_room(server, {"s-1"}, ends_at=ends_at,
                                lesson={"lesson_id": "LS_x", "starts_at": ends_at - 2700})
    teacher = await server.join(room_id, "teacher", role=Role.HOST)
    student = await server.join(room_id, "s-1")
    await student.close()
    await teacher.close()  # the last one out: the room is no longer served, its timer with it
    await until(lambda: ATTENDANCE_READY in names(seen, room_id), changed)
    status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert status == 200 and room["active"] is False and abs(room["ended_at"] - ends_at) < 1e-3
    await asyncio.sleep(0.3)
    assert names(seen, room_id) == [ROOM_ENDED, ATTENDANCE_READY]


async def test_an_extended_room_nobody_is_in_ends_at_its_new_end(server: Server) -> None:
    seen, _ = recorder(server)
    ends_at = server.app[CLOCK]() + 0.5
    room_id = await lesson_room(server, {"s-1"}, ends_at=ends_at)
    await (await server.join(room_id, "teacher", role=Role.HOST)).close()
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/extend", {"minutes": 1})
    assert status == 200, body
    await asyncio.sleep(0.8)
    assert names(seen, room_id) == []  # the old end passed: the room goes on
    status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert room["active"] is True


async def test_a_room_whose_end_passed_while_the_server_was_down_ends_at_the_start_and_the_journal_gets_it(
        tmp_path: Path) -> None:
    journal = await Receiver().start()
    first, second = (Serve(tmp_path / "data", "") for _ in range(2))
    async with aiohttp.ClientSession() as http:
        try:
            await start_with_journal(http, first, journal, [ROOM_ENDED, PARTICIPANT_LEFT, ATTENDANCE_READY])
            ends_at = time.time() + 1.5
            async with http.post(first.base + "/v1/rooms", json={"name": "7Б", "ends_at": ends_at},
                                 headers=admin()) as r:
                room_id = (await r.json())["room_id"]
            student = await connect(http, first, token(room_id, "s-1"))
            await student.event("welcome")
            await asyncio.sleep(0.7)  # the store writes behind (0.5 s): the join is on disk
            await first.kill9()  # a crash with the student in: nobody comes back
            await student.close()
            await asyncio.sleep(max(0.0, ends_at + 0.2 - time.time()))  # the end passes while no server runs

            await second.start(http)
            await journal.wait_for(lambda: any(g.payload["event"] == ATTENDANCE_READY for g in journal.unique()))
            got = [(g.payload["event"], g.payload["room"]["room_id"]) for g in journal.unique()]
            assert got == [(PARTICIPANT_LEFT, room_id), (ROOM_ENDED, room_id), (ATTENDANCE_READY, room_id)]
            left = journal.unique()[0].payload
            assert left["participant"]["identity"] == "s-1" and left["reason"] == "room_ended"
            async with http.get(second.base + f"/v1/rooms/{room_id}", headers=admin()) as r:
                room = await r.json()
            assert room["active"] is False and abs(room["ended_at"] - ends_at) < 1e-3
            async with http.get(second.base + f"/v1/rooms/{room_id}/attendance", headers=admin()) as r:
                [record] = (await r.json())["participants"]
            assert abs(record["intervals"][-1]["left"] - ends_at) < 1e-3  # present to the end, as the store knew
        finally:
            await stop_all(journal, first, second)


async def test_the_attendance_of_a_room_ended_just_before_a_graceful_stop_still_reaches_the_journal(
        tmp_path: Path) -> None:
    journal = await Receiver(down=True).start()  # nothing is delivered before the stop: all is in the outbox
    runners: list[web.AppRunner] = []
    http = aiohttp.ClientSession()

    async def serve() -> Server:
        runner, base = await start_server(test_settings(store="sqlite", data_dir=str(tmp_path)))
        runners.append(runner)
        return Server(app=runner.app, base=base, http=http,
                      admin={"Authorization": "Bearer " + runner.app[APP_TOKENS].mint_admin(ttl_s=600)})

    try:
        first = await serve()
        status, _ = await first.rest("POST", "/v1/webhooks", {"url": journal.url(),
                                                              "events": [ROOM_ENDED, ATTENDANCE_READY]})
        assert status == 201
        # a lesson's room: its report reads the lesson from the database first
        room_id = await lesson_room(first, {"s-1"}, lesson={"lesson_id": "LS_gone", "starts_at": 1.0})
        await (await first.join(room_id, "s-1")).close()
        status, _ = await first.rest("DELETE", f"/v1/rooms/{room_id}")
        assert status == 200
        await runners.pop().cleanup()  # at once: the attendance report is still being made

        journal.down = False
        await serve()
        await journal.wait_for(lambda: len(journal.unique()) == 2)
        assert [g.payload["event"] for g in journal.unique()] == [ROOM_ENDED, ATTENDANCE_READY]
    finally:
        for runner in runners:
            await runner.cleanup()
        await http.close()
        await journal.stop()

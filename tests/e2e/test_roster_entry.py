"""A lesson's room through the real server: the roster lets the class in and keeps strangers
waiting, "wait for the teacher", and the teacher extending the timetable's end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from signaling.app_keys import CLOCK, EVENTS, ROOMS
from signaling.events import RoomEvent
from signaling.rooms import Role, RoomSettings
from tests.conftest import Server, WsClient


async def lesson_room(server: Server, roster: Iterable[str], **settings: Any) -> str:
    """A lesson's room as the lessons service makes it: settings through the room manager, the roster
    on the room (no REST sets a roster on a plain room)."""
    rooms = server.app[ROOMS]
    room, _ = await rooms.create(RoomSettings.parse({"name": "Алгебра, 7Б", **settings}))
    room.roster = set(roster)
    await rooms.store.save_room(room)
    return room.room_id


async def welcomed(server: Server, room_id: str, identity: str, **kw: Any) -> tuple[WsClient, dict[str, Any]]:
    c = await server.connect(server.token(room_id, identity, **kw))
    return c, await c.event("welcome")


def named(c: WsClient, name: str) -> list[dict[str, Any]]:
    return [e for e in c.events if e["event"] == name]


async def test_a_roster_student_enters_directly_and_a_stranger_waits_not_on_roster(server: Server) -> None:
    room_id = await lesson_room(server, {"s-1"}, guest_policy="ASK_HOST")
    host = await server.join(room_id, "teacher", role=Role.HOST)
    # on the roster: in at once, even as a guest and whatever the guest policy says
    _student, w = await welcomed(server, room_id, "s-1", registered=False, family_name="Петров")
    assert w["state"] == "joined" and "waiting_reason" not in w["you"]
    await host.event("participant_joined", participant_id=w["participant_id"])
    stranger, ws = await welcomed(server, room_id, "stranger")
    assert ws["state"] == "waiting" and ws["you"]["waiting_reason"] == "not_on_roster"
    assert ws["participants"] == []  # who is in the lesson is not a stranger's to see
    waiting = await host.event("participant_waiting", participant_id=ws["participant_id"])
    assert waiting["participant"]["waiting_reason"] == "not_on_roster"
    r = await host.request("list_waiting")
    assert [p["waiting_reason"] for p in r["participants"]] == ["not_on_roster"]
    # the host lets the stranger in as usual
    await host.request("admit", participant_ids=[ws["participant_id"]])
    await stranger.event("admitted")
    await stranger.wait_for(lambda: len(named(stranger, "welcome")) == 2)
    assert named(stranger, "welcome")[-1]["state"] == "joined"


async def test_with_wait_for_host_the_class_waits_until_the_teacher_joins_then_enters_at_once(server: Server) -> None:
    room_id = await lesson_room(server, {"s-1", "s-2", "s-3"}, wait_for_host=True)
    seen: list[RoomEvent] = []
    server.app[EVENTS].subscribe(seen.append)
    s1, w1 = await welcomed(server, room_id, "s-1")
    s2, w2 = await welcomed(server, room_id, "s-2")
    stranger, ws = await welcomed(server, room_id, "stranger")
    assert [w["state"] for w in (w1, w2, ws)] == ["waiting"] * 3
    assert [w["you"]["waiting_reason"] for w in (w1, w2, ws)] == ["host_absent", "host_absent", "not_on_roster"]
    forbidden = await s1.request("chat_send", text="есть кто?")
    assert forbidden["ok"] is False and forbidden["error"]["code"] == "forbidden"

    host = await server.join(room_id, "teacher", role=Role.HOST)
    for c, w in ((s1, w1), (s2, w2)):
        assert (await c.event("admitted"))["by"] is not None
        await c.wait_for(lambda c=c: len(named(c, "welcome")) == 2)  # type: ignore[misc]
        joined = named(c, "welcome")[-1]
        assert joined["state"] == "joined" and joined["participant_id"] == w["participant_id"]
        assert "teacher" in {p["identity"] for p in joined["participants"]}
    # the host: one participants_joined for the class, then the queue that is left (the stranger)
    together = await host.event("participants_joined")
    assert sorted(together["participant_ids"]) == sorted([w1["participant_id"], w2["participant_id"]])
    await host.wait_for(lambda: named(host, "waiting_room")[-1]["count"] == 1)
    assert named(host, "waiting_room")[-1]["participants"][0]["waiting_reason"] == "not_on_roster"
    await asyncio.sleep(0.1)
    assert len(named(host, "participants_joined")) == 1 and not named(host, "participant_joined")
    assert named(stranger, "admitted") == [] and len(named(stranger, "welcome")) == 1
    hid = named(host, "welcome")[0]["participant_id"]
    admitted = [e for e in seen if e.name == "participant_admitted"]
    assert sorted(e.data["participant"]["identity"] for e in admitted) == ["s-1", "s-2"]
    assert all(e.data["by"] == hid for e in admitted)
    # with the teacher in, a latecomer of the class enters directly
    _s3, w3 = await welcomed(server, room_id, "s-3")
    assert w3["state"] == "joined"


async def test_a_roster_change_during_the_lesson_lets_in_a_waiting_newcomer(server: Server) -> None:
    room_id = await lesson_room(server, {"s-1"})
    host = await server.join(room_id, "teacher", role=Role.HOST)
    newcomer, wn = await welcomed(server, room_id, "s-new")
    other, wo = await welcomed(server, room_id, "other")
    assert wn["you"]["waiting_reason"] == wo["you"]["waiting_reason"] == "not_on_roster"
    live = server.app[ROOMS].live[room_id]
    entered = await live.set_roster({"s-1", "s-new"})
    assert [p.participant_id for p in entered] == [wn["participant_id"]]
    await newcomer.event("admitted")
    await newcomer.wait_for(lambda: len(named(newcomer, "welcome")) == 2)
    await host.event("participant_joined", participant_id=wn["participant_id"])
    await host.wait_for(lambda: named(host, "waiting_room")[-1]["count"] == 1)
    assert named(other, "admitted") == []
    _s, w = await welcomed(server, room_id, "s-new-2")
    assert w["state"] == "waiting"


async def test_room_extend_from_a_participant_is_forbidden_and_from_a_host_moves_the_end_for_everyone(
        server: Server) -> None:
    now = server.app[CLOCK]()
    room_id = await lesson_room(server, {"s-1"}, ends_at=now + 3600)
    seen: list[RoomEvent] = []
    server.app[EVENTS].subscribe(seen.append)
    host = await server.join(room_id, "teacher", role=Role.HOST)
    student = await server.join(room_id, "s-1")
    assert named(student, "welcome")[0]["room"]["ends_at"] == now + 3600

    for minutes in (10, 0, "soon"):  # permission before parameters: forbidden whatever it sent
        r = await student.request("room_extend", minutes=minutes)
        assert r["ok"] is False and r["error"]["code"] == "forbidden", r
    _status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert room["settings"]["ends_at"] == now + 3600
    assert named(host, "room_extended") == []

    r = await host.request("room_extend", minutes=10)
    assert r["ok"] is True and r["ends_at"] == now + 3600 + 600 and r["minutes"] == 10
    hid = named(host, "welcome")[0]["participant_id"]
    for c in (host, student):
        e = await c.event("room_extended")
        assert e == {"event": "room_extended", "ends_at": now + 4200, "minutes": 10, "by": hid}
    _status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert room["settings"]["ends_at"] == now + 4200
    assert [(e.name, dict(e.data)) for e in seen if e.name == "room_extended"] == [
        ("room_extended", {"ends_at": now + 4200, "minutes": 10, "by": hid})]

    bad = await host.request("room_extend", minutes=241)
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_message"

    # the school's API: same event, no host behind it
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/extend", {"minutes": 5})
    assert status == 200 and body == {"room_id": room_id, "ends_at": now + 4500, "minutes": 5}
    e = await student.event("room_extended", minutes=5)
    assert e["by"] is None and e["ends_at"] == now + 4500


async def test_rest_extend_refuses_what_cannot_be_extended(server: Server) -> None:
    plain = await server.create_room()
    status, body = await server.rest("POST", f"/v1/rooms/{plain}/extend", {"minutes": 5})
    assert status == 409 and body["error"]["code"] == "invalid_state"
    timed = await server.create_room(duration_minutes=45)  # nobody joined: the duration grows
    status, body = await server.rest("POST", f"/v1/rooms/{timed}/extend", {"minutes": 15})
    assert status == 200 and body["ends_at"] is None
    _status, room = await server.rest("GET", f"/v1/rooms/{timed}")
    assert room["settings"]["duration_minutes"] == 60
    for bad in ({"minutes": 0}, {"minutes": 241}, {}, {"minutes": 5, "extra": 1}):
        status, body = await server.rest("POST", f"/v1/rooms/{timed}/extend", bad)
        assert status == 400, (bad, body)
    status, _ = await server.rest("POST", "/v1/rooms/RM_nope/extend", {"minutes": 5})
    assert status == 404
    status, _ = await server.rest("POST", f"/v1/rooms/{timed}/extend", {"minutes": 5}, auth=False)
    assert status == 401
    await server.rest("DELETE", f"/v1/rooms/{timed}")
    status, body = await server.rest("POST", f"/v1/rooms/{timed}/extend", {"minutes": 5})
    assert status == 410 and body["error"]["code"] == "room_ended"


async def test_the_timetable_end_warns_and_ends_on_the_extended_time(server: Server) -> None:
    rooms = server.app[ROOMS]
    rooms.minute_s = 0.1  # a lesson minute lasts 0.1 s: a 10-minute lesson is 1 s
    now = server.app[CLOCK]()
    room_id = await lesson_room(server, {"s-1"}, ends_at=now + 1.0,
                                lesson={"lesson_id": "LS_1", "starts_at": now})
    host = await server.join(room_id, "teacher", role=Role.HOST)
    student = await server.join(room_id, "s-1")
    await student.event("room_ending", seconds_left=300, timeout=3)  # 5 lesson minutes before the end
    r = await host.request("room_extend", minutes=5)  # 0.5 s more
    new_end = r["ends_at"]
    assert abs(new_end - (now + 1.5)) < 1e-6
    ending = await student.event("room_ending", seconds_left=60, timeout=3)
    assert ending["ends_at"] == new_end
    await student.event("room_ended", timeout=3)
    assert time.time() >= new_end - 0.05
    _status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert room["active"] is False and room["ended_at"] >= new_end - 1e-3


async def test_the_timetable_end_also_closes_the_room_for_students_still_waiting_for_the_teacher(
        server: Server) -> None:
    now = server.app[CLOCK]()
    room_id = await lesson_room(server, {"s-1"}, ends_at=now + 0.5, wait_for_host=True)
    student, w = await welcomed(server, room_id, "s-1")
    assert w["you"]["waiting_reason"] == "host_absent"
    ended = await student.event("room_ended", timeout=3)
    assert "time" in ended["reason"]
    await student.closed.wait()
    assert student.ws.close_code == 4410

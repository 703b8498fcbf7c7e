"""Breakout requests through the real server (no media): a student's host requests are refused and
change nothing (every route that declares Action.BREAKOUTS, read from the dispatch table); the
host's flow sends the right events to the right people; late joiners get the state; templates
and attendance reach the store and the REST API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling.app_keys import DISPATCH, ROOMS
from signaling.rooms import Action, Role
from signaling.rooms.live_breakouts import breakouts_of
from signaling.rooms.permissions import ROLE_ACTIONS
from tests.conftest import Server, WsClient


def host_fields(ids: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Valid fields for each host request (and nonsense ones below): each must still be `forbidden`."""
    g1 = ids["g1"]
    return {
        "breakouts_prepare": [{"count": 2, "assign": "auto"}],
        "breakouts_start": [{"rooms": [{"name": "A"}, {"name": "B"}], "assign": "random", "seed": 1},
                            {"duration_s": 60}],
        "breakouts_broadcast": [{"text": "две минуты"}],
        "breakouts_move": [{"participant_id": ids["self"], "breakout_id": g1},
                           {"participant_id": ids["other"], "breakout_id": None}],
        "breakouts_end": [{}, {"countdown_s": 0}, {"breakout_id": g1}],
        "breakouts_extend": [{"seconds": 60}],
        "breakouts_join": [{"breakout_id": g1}, {"breakout_id": g1, "listen_only": True}],
        "breakouts_speak_all": [{"on": True}],
        "breakouts_help_done": [{"participant_id": ids["other"]}],
        "breakouts_template_save": [{"name": "x"}],
        "breakouts_templates": [{}],
    }


def snapshot(server: Server, room_id: str) -> str:
    live = server.app[ROOMS].live[room_id]
    b = breakouts_of(live).current
    assert b is not None
    return json.dumps({**b.to_json(0.0), "where": b.where, "stints": b.attendance()}, sort_keys=True)


async def open_groups(server: Server, n_students: int = 4, **start: Any,
                      ) -> tuple[str, WsClient, list[WsClient], list[str], dict[str, Any]]:
    room_id = await server.create_room()
    host = await server.join(room_id, "teacher", role=Role.HOST)
    students = [await server.join(room_id, f"s{i}") for i in range(n_students)]
    pids = [s.events[0]["participant_id"] for s in students]
    rooms = start.pop("rooms", [{"name": "Группа 1", "participant_ids": pids[0::2]},
                                {"name": "Группа 2", "participant_ids": pids[1::2]}])
    r = await host.request("breakouts_start", rooms=rooms, **start)
    assert r["ok"], r
    return room_id, host, students, pids, r["breakouts"]


@pytest.mark.parametrize("actor", ["participant", "viewer", "guest"])
async def test_a_students_breakout_requests_are_forbidden_and_change_nothing(server_factory: Any, actor: str) -> None:
    server: Server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    room_id, _host, students, pids, state = await open_groups(server)
    by_actor: dict[str, dict[str, Any]] = {"participant": {}, "viewer": {"role": Role.VIEWER},
                                           "guest": {"registered": False}}
    kw = by_actor[actor]
    me = await server.join(room_id, f"me-{actor}", **kw)
    ids = {"self": me.events[0]["participant_id"], "other": pids[0], "g1": state["rooms"][0]["breakout_id"]}
    table = server.app[DISPATCH]
    host_types = {t for t in table.types if table.route(t).action is Action.BREAKOUTS}
    fields = host_fields(ids)
    assert host_types == set(fields), "a new host request needs its fields in host_fields"
    assert Action.BREAKOUTS not in ROLE_ACTIONS[Role.PARTICIPANT] | ROLE_ACTIONS[Role.VIEWER]
    seen = [len(s.events) for s in students]
    before = snapshot(server, room_id)
    for type_ in sorted(host_types):
        for f in [*fields[type_], {"participant_id": 5, "breakout_id": [], "text": {}, "on": "x", "rooms": 1}]:
            r = await me.request(type_, **f)
            assert r["ok"] is False and r["error"]["code"] == "forbidden", (actor, type_, f, r)
            assert snapshot(server, room_id) == before, (type_, f)
    assert [s.events[n:] for s, n in zip(students, seen, strict=True)] == [[] for _ in students]


async def test_opening_tells_each_student_their_group_and_the_host_everything(server: Server) -> None:
    _room_id, host, students, pids, state = await open_groups(server, duration_s=600)
    g1, g2 = (g["breakout_id"] for g in state["rooms"])
    assert state["state"] == "open" and state["rooms"][0]["participant_ids"] == pids[0::2]
    for i, s in enumerate(students):
        e = await s.event("breakouts_started")
        assert e["breakouts"]["breakout_id"] == (g1 if i % 2 == 0 else g2)
        assert e["breakouts"]["ends_at"] == pytest.approx(state["ends_at"])
        assert "participant_ids" not in e["breakouts"]["rooms"][0]  # students see names and counts only
    assert (await host.event("breakouts_started"))["breakouts"]["session_id"] == state["session_id"]


async def test_broadcast_reaches_every_group_and_a_move_tells_the_moved_student(server: Server) -> None:
    _room_id, host, students, pids, state = await open_groups(server)
    g2 = state["rooms"][1]["breakout_id"]
    assert (await host.request("breakouts_broadcast", text="  Две минуты!  "))["ok"]
    for s in students:
        assert (await s.event("breakouts_broadcast"))["text"] == "Две минуты!"
    r = await host.request("breakouts_move", participant_id=pids[0], breakout_id=g2)
    assert r["ok"] and r["to"] == g2
    assert (await students[0].event("breakout_assigned"))["breakout_id"] == g2
    await host.wait_for(lambda: pids[0] in [e for e in host.events if e["event"] == "breakouts_updated"][-1]
                        ["breakouts"]["rooms"][1]["participant_ids"])
    bad = await host.request("breakouts_move", participant_id=pids[0], breakout_id="BS_nope")
    assert bad["error"]["code"] == "not_found"
    host_pid = host.events[0]["participant_id"]
    bad = await host.request("breakouts_move", participant_id=host_pid, breakout_id=g2)
    assert bad["error"]["code"] == "invalid_message"


async def test_help_requests_reach_the_hosts_in_order_and_a_visit_answers_them(server: Server) -> None:
    room_id, host, students, pids, state = await open_groups(server)
    g1 = state["rooms"][0]["breakout_id"]
    assert (await students[1].request("breakouts_help"))["position"] == 1
    assert (await students[0].request("breakouts_help"))["position"] == 2
    first = await host.event("breakout_help", participant_id=pids[1])
    assert first["position"] == 1 and first["group_name"] == "Группа 2"
    assert (await host.request("breakouts_join", breakout_id=g1))["ok"]
    b = breakouts_of(server.app[ROOMS].live[room_id]).current
    assert b is not None and [h.participant_id for h in b.help] == [pids[1]]  # group 1's request answered
    assert (await students[0].event("breakout_help_answered"))["by_name"] == "teacher"
    assert not [e for e in students[1].events if e["event"] == "breakout_help_answered"]


async def test_group_chat_stays_in_the_group_and_follows_the_chat_lock(server: Server) -> None:
    _room_id, host, students, _pids, _state = await open_groups(server)
    r = await students[0].request("breakouts_chat", text="привет, группа")
    assert r["ok"], r
    assert (await students[2].event("breakout_chat"))["message"]["text"] == "привет, группа"
    assert not [e for e in students[1].events if e["event"] == "breakout_chat"]
    assert (await host.request("set_lock", chat=True))["ok"]
    locked = await students[0].request("breakouts_chat", text="ещё")
    assert locked["error"]["code"] == "forbidden"


async def test_end_with_a_countdown_returns_everyone_and_the_attendance_is_stored(server_factory: Any) -> None:
    server: Server = await server_factory(store="sqlite")
    room_id, host, students, pids, _state = await open_groups(server)
    r = await host.request("breakouts_end", countdown_s=0.3)
    assert r["ok"] and r["closing_at"] > 0
    for s in students:
        assert (await s.event("breakouts_ending"))["countdown_s"] == pytest.approx(0.3, abs=0.05)
        await s.event("breakouts_ended", timeout=3)
    status, body = await server.rest("GET", f"/v1/rooms/{room_id}/breakouts")
    assert status == 200 and body["breakouts"]["state"] == "closed"
    stays = body["attendance"]
    assert sorted(s["participant_id"] for s in stays) == sorted(pids)
    assert all(s["left_at"] is not None and s["left_at"] >= s["joined_at"] for s in stays)
    assert {s["identity"] for s in stays} == {f"s{i}" for i in range(4)}


async def test_a_group_closed_alone_returns_its_members_only(server: Server) -> None:
    room_id, host, students, pids, state = await open_groups(server)
    g1 = state["rooms"][0]["breakout_id"]
    assert (await host.request("breakouts_end", breakout_id=g1))["ok"]
    assert (await students[0].event("breakout_closed"))["breakout_id"] == g1
    assert (await students[0].event("breakout_assigned"))["breakout_id"] is None
    b = breakouts_of(server.app[ROOMS].live[room_id]).current
    assert b is not None and b.state.value == "open" and b.group_of(pids[1]) is not None


async def test_a_late_joiner_and_a_reconnect_get_the_open_groups(server: Server) -> None:
    room_id, _host, students, _pids, state = await open_groups(server)
    await students[0].close()
    again = await server.join(room_id, "s0")
    e = await again.event("breakouts_state")
    assert e["breakouts"]["breakout_id"] == state["rooms"][0]["breakout_id"]
    late = await server.join(room_id, "late")
    assert (await late.event("breakouts_state"))["breakouts"]["breakout_id"] is None  # the main room
    co = await server.join(room_id, "co", role=Role.COHOST)
    assert (await co.event("breakouts_updated"))["breakouts"]["state"] == "open"


async def test_guests_in_the_waiting_room_are_not_assigned(server: Server) -> None:
    room_id = await server.create_room()  # registered users enter, guests wait for a host
    host = await server.join(room_id, "teacher", role=Role.HOST)
    a, b = await server.join(room_id, "a"), await server.join(room_id, "b")
    guest = await server.join(room_id, "guest", registered=False)
    gid = guest.events[0]["participant_id"]
    r = await host.request("breakouts_start", count=2, assign="auto")
    assert r["ok"]
    assigned = [p for g in r["breakouts"]["rooms"] for p in g["participant_ids"]]
    assert sorted(assigned) == sorted([a.events[0]["participant_id"], b.events[0]["participant_id"]])
    g1 = r["breakouts"]["rooms"][0]["breakout_id"]
    bad = await host.request("breakouts_move", participant_id=gid, breakout_id=g1)
    assert bad["error"]["code"] == "not_found"


async def test_a_template_saved_for_the_class_prepares_the_same_groups_next_time(server_factory: Any) -> None:
    server: Server = await server_factory(store="sqlite")
    _room_id, host, students, pids, _state = await open_groups(server)
    r = await host.request("breakouts_template_save", name="Пары", class_id="7А")
    assert r["ok"], r
    tpl = r["template"]
    assert [g["identities"] for g in tpl["groups"]] == [["s0", "s2"], ["s1", "s3"]]
    status, body = await server.rest("GET", "/v1/classes/7А/breakout_templates")
    assert status == 200 and [t["template_id"] for t in body["templates"]] == [tpl["template_id"]]
    assert (await host.request("breakouts_end", countdown_s=0))["ok"]
    r = await host.request("breakouts_prepare", template_id=tpl["template_id"])
    assert r["ok"] and r["breakouts"]["state"] == "prepared"
    assert [g["participant_ids"] for g in r["breakouts"]["rooms"]] == [pids[0::2], pids[1::2]]
    assert not [e for e in students[0].events[-3:] if e["event"] == "breakouts_updated"]  # a draft: hosts only

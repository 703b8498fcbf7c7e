"""Breakout timing and choosing through the real server (no media): the timer runs out, the close
countdown everyone sees, then everyone is back; an extension reaches every student and calls a
countdown off; self-select with a cap per group; moves while open keep the group chat apart."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.app_keys import ROOMS
from signaling.rooms import Role
from signaling.rooms.live_breakouts import breakouts_of
from tests.conftest import Server, WsClient


async def _class(server: Server, n: int = 4) -> tuple[str, WsClient, list[WsClient], list[str]]:
    room_id = await server.create_room()
    host = await server.join(room_id, "teacher", role=Role.HOST)
    students = [await server.join(room_id, f"s{i}") for i in range(n)]
    return room_id, host, students, [s.events[0]["participant_id"] for s in students]


async def test_the_timer_runs_out_then_a_countdown_then_everyone_is_back(server_factory: Any) -> None:
    server: Server = await server_factory(breakouts_close_countdown_s=1)
    room_id, host, students, _pids = await _class(server)
    r = await host.request("breakouts_start", count=2, assign="auto", duration_s=0.6)
    assert r["ok"], r
    for s in students:
        started = await s.event("breakouts_started")
        assert started["breakouts"]["remaining_s"] == pytest.approx(0.6, abs=0.2)
    for s in [*students, host]:
        ending = await s.event("breakouts_ending", timeout=5)  # nobody pressed anything
        assert ending["countdown_s"] == pytest.approx(1.0, abs=0.2)
    for s in [*students, host]:
        await s.event("breakouts_ended", timeout=5)
    b = breakouts_of(server.app[ROOMS].live[room_id]).current
    assert b is not None and b.state.value == "closed" and all(b.group_of(p) is None for p in _pids)


async def test_an_extension_reaches_every_student_and_calls_a_countdown_off(server: Server) -> None:
    room_id, host, students, _pids = await _class(server)
    r = await host.request("breakouts_start", count=2, assign="auto", duration_s=600)
    ends_at = r["breakouts"]["ends_at"]
    assert (await host.request("breakouts_end", countdown_s=30))["ok"]
    for s in students:
        await s.event("breakouts_ending")
    r = await host.request("breakouts_extend", seconds=120)
    assert r["ok"] and r["ends_at"] == pytest.approx(ends_at + 120)
    for s in students:
        e = await s.event("breakouts_timer")
        assert e["breakouts"]["state"] == "open" and e["breakouts"]["ends_at"] == pytest.approx(ends_at + 120)
        assert e["breakouts"]["closing_at"] is None
    b = breakouts_of(server.app[ROOMS].live[room_id]).current
    assert b is not None and b.state.value == "open" and b.next_due_at() == pytest.approx(ends_at + 120)


async def test_students_choose_their_group_within_the_cap(server: Server) -> None:
    room_id, host, students, pids = await _class(server, 3)
    r = await host.request("breakouts_start", count=2, assign="self", cap=1)
    assert r["ok"], r
    g1, g2 = (g["breakout_id"] for g in r["breakouts"]["rooms"])
    for s in students:
        e = await s.event("breakouts_started")
        assert e["breakouts"]["breakout_id"] is None and e["breakouts"]["assign"] == "self"
        assert e["breakouts"]["cap"] == 1 and [g["count"] for g in e["breakouts"]["rooms"]] == [0, 0]
    assert (await students[0].request("breakouts_choose", breakout_id=g1))["ok"]
    assert (await students[0].event("breakout_assigned"))["breakout_id"] == g1
    full = await students[1].request("breakouts_choose", breakout_id=g1)
    assert full["error"]["code"] == "invalid_state" and "full" in full["error"]["message"]
    assert (await students[1].request("breakouts_choose", breakout_id=g2))["ok"]
    assert (await students[0].request("breakouts_choose", breakout_id=g2))["error"]["code"] == "invalid_state"
    b = breakouts_of(server.app[ROOMS].live[room_id]).current
    assert b is not None and b.groups[g1].members == [pids[0]] and b.groups[g2].members == [pids[1]]
    third = await students[2].wait_for(lambda: next((e for e in reversed(students[2].events)
                                                     if e["event"] == "breakouts_state"
                                                     and len(e["breakouts"]["places"]) == 2), None))
    assert third["breakouts"]["breakout_id"] is None  # the third stays in the main room, seeing who went where
    assert not [e for e in students[2].events if e["event"] == "breakout_assigned"]
    update = await host.wait_for(lambda: next((e for e in reversed(host.events) if e["event"] == "breakouts_updated"
                                               and e["breakouts"]["rooms"][1]["participant_ids"]), None))
    assert update["breakouts"]["rooms"][1]["participant_ids"] == [pids[1]]


async def test_choosing_is_refused_when_the_host_assigns(server: Server) -> None:
    _room_id, host, students, _pids = await _class(server, 2)
    r = await host.request("breakouts_start", count=2, assign="auto")
    g2 = r["breakouts"]["rooms"][1]["breakout_id"]
    bad = await students[0].request("breakouts_choose", breakout_id=g2)
    assert bad["error"]["code"] == "invalid_state"


async def test_a_student_moved_while_open_talks_in_the_new_groups_chat_only(server: Server) -> None:
    _room_id, host, students, pids = await _class(server, 4)  # groups: s0 s2 | s1 s3
    r = await host.request("breakouts_start", count=2, assign="auto")
    g2 = r["breakouts"]["rooms"][1]["breakout_id"]
    assert (await host.request("breakouts_move", participant_id=pids[0], breakout_id=g2))["ok"]
    await students[0].event("breakout_assigned", breakout_id=g2)
    assert (await students[0].request("breakouts_chat", text="я у вас"))["ok"]
    for s in (students[1], students[3]):
        assert (await s.event("breakout_chat"))["message"]["text"] == "я у вас"
    assert not [e for e in students[2].events if e["event"] == "breakout_chat"]
    # the host visits group 2 and gets its chat; back in the main room, it does not
    assert (await host.request("breakouts_join", breakout_id=g2))["ok"]
    assert (await students[1].request("breakouts_chat", text="помогите"))["ok"]
    assert (await host.event("breakout_chat"))["message"]["text"] == "помогите"
    assert (await host.request("breakouts_join", breakout_id=None))["ok"]
    no_group = await host.request("breakouts_chat", text="?")
    assert no_group["error"]["code"] == "invalid_state"


async def test_every_student_learns_the_new_places_after_a_move_and_a_visit(server: Server) -> None:
    _room_id, host, students, pids = await _class(server, 4)  # groups: s0 s2 | s1 s3
    r = await host.request("breakouts_start", count=2, assign="auto")
    g1, g2 = (g["breakout_id"] for g in r["breakouts"]["rooms"])
    started = await students[1].event("breakouts_started")
    assert started["breakouts"]["places"] == {pids[0]: g1, pids[2]: g1, pids[1]: g2, pids[3]: g2}
    assert (await host.request("breakouts_move", participant_id=pids[0], breakout_id=g2))["ok"]
    for s in students[1:]:
        e = await s.event("breakouts_state")
        assert e["breakouts"]["places"][pids[0]] == g2
    host_pid = host.events[0]["participant_id"]
    assert (await host.request("breakouts_join", breakout_id=g1, listen_only=True))["ok"]
    e = await students[2].wait_for(lambda: next((x for x in reversed(students[2].events)
                                                 if x["event"] == "breakouts_state"
                                                 and x["breakouts"]["visits"]), None))
    assert e["breakouts"]["visits"] == {host_pid: {"breakout_id": g1, "listen_only": True}}

"""The whiteboard over the signalling socket, through a real server: late joiners get the state,
accepted updates reach the others, refused ones change nothing, limits have their codes."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.board_peer import BoardPeer, b64


async def _setup(server: Server, **room: Any) -> tuple[str, Any, Any]:
    room_id = await server.create_room(**room)
    host = await server.join(room_id, "teacher", role=Role.HOST)
    student = await server.join(room_id, "student")
    return room_id, host, student


async def test_a_stroke_reaches_the_others_and_a_late_joiner_gets_the_whole_board(server: Server) -> None:
    room_id, host, student = await _setup(server)
    state = await host.event("board_state")
    assert [p["page_id"] for p in state["pages"]] == ["p1"] and state["may_draw"] is True
    peer = BoardPeer("teacher")
    eid, upd = peer.stroke("p1", [10, 10, 20, 20])
    r = await host.request("board_update", update=b64(upd), cursor={"x": 20, "y": 20, "page_id": "p1"})
    assert r["ok"], r
    more = peer.extend(eid, [30, 35])
    assert (await host.request("board_update", update=b64(more)))["ok"]
    seen = BoardPeer("student")
    seen.apply((await student.event("board_state"))["update"])
    ev = await student.event("board_update")
    assert ev["cursor"] == {"x": 20.0, "y": 20.0, "page_id": "p1", "laser": False}
    await student.wait_for(lambda: len([e for e in student.events if e["event"] == "board_update"]) == 2)
    for e in student.events:
        if e["event"] == "board_update":
            seen.apply(e["update"])
    assert seen.points(eid) == [10, 10, 20, 20, 30, 35]
    late = await server.join(room_id, "late")
    got = BoardPeer("late")
    got.apply((await late.event("board_state"))["update"])
    assert got.points(eid) == [10, 10, 20, 20, 30, 35]


async def test_a_student_without_the_pen_is_refused_and_the_board_does_not_change(server: Server) -> None:
    room_id, host, student = await _setup(server)
    await student.event("board_state")
    r = await host.request("board_rights", mode="nobody")
    assert r["ok"] and r["mode"] == "nobody"
    rights = await student.event("board_rights")
    assert rights["mode"] == "nobody"
    _, upd = BoardPeer("student").stroke("p1", [1, 1, 2, 2])
    r = await student.request("board_update", update=b64(upd))
    assert r["error"]["code"] == "board_forbidden"
    # the pen given: now it draws
    pid = (await student.event("welcome"))["participant_id"]
    assert (await host.request("board_rights", participant_id=pid))["pens"] == [pid]
    assert (await student.request("board_update", update=b64(upd)))["ok"]
    # a student's clear is refused
    r = await student.request("board_clear")
    assert r["error"]["code"] == "forbidden"
    late = await server.join(room_id, "late")
    got = BoardPeer("late")
    got.apply((await late.event("board_state"))["update"])
    assert len(got.ids()) == 1
    # the lock forbids drawing whatever the pen
    assert (await host.request("set_lock", whiteboard=True))["ok"]
    _, upd2 = BoardPeer("student").stroke("p1", [5, 5])
    r = await student.request("board_update", update=b64(upd2))
    assert r["error"]["code"] == "forbidden", r
    late2 = await server.join(room_id, "late2")
    got2 = BoardPeer("late2")
    got2.apply((await late2.event("board_state"))["update"])
    assert len(got2.ids()) == 1


async def test_the_host_clears_a_page_for_everyone(server: Server) -> None:
    _room_id, host, student = await _setup(server)
    peer = BoardPeer("s")
    await student.event("board_state")
    for i in range(3):
        _, upd = peer.stroke("p1", [i, i])
        assert (await student.request("board_update", update=b64(upd)))["ok"]
    assert (await host.request("board_clear", page_id="p1"))["ok"]
    ev = await student.event("board_update", cleared="p1")
    peer.apply(ev["update"])
    assert peer.ids() == set()


async def test_limits_have_their_codes_and_change_nothing(server_factory: Any) -> None:
    server: Server = await server_factory(board_max_update_bytes=2000, board_max_bytes=6000)
    _room_id, _host, student = await _setup(server)
    await student.event("board_state")
    peer = BoardPeer("s")
    _, big = peer.stroke("p1", [float(i) for i in range(400)])
    assert len(big) > 2000
    r = await student.request("board_update", update=b64(big))
    assert r["error"]["code"] == "board_update_too_large"
    r = await student.request("board_update", update=base64.b64encode(b"\x01\x02garbage").decode())
    assert r["error"]["code"] == "board_invalid_update"
    r = await student.request("board_update", update="%%%")
    assert r["error"]["code"] == "invalid_message"
    codes = []
    for _ in range(12):
        _, upd = BoardPeer("x").stroke("p1", [i + 0.25 for i in range(100)])
        assert 500 < len(upd) < 2000
        codes.append((await student.request("board_update", update=b64(upd)))
                     .get("error", {}).get("code", "ok"))
    assert "board_full" in codes and codes.index("board_full") > 0
    assert set(codes[codes.index("board_full"):]) == {"board_full"}


async def test_a_reconnect_sends_what_was_drawn_offline_by_state_vector(server: Server) -> None:
    _room_id, host, student = await _setup(server)
    st = await student.event("board_state")
    peer = BoardPeer("s")
    peer.apply(st["update"])
    _, upd = peer.stroke("p1", [1, 2])
    assert (await student.request("board_update", update=b64(upd)))["ok"]
    # meanwhile the host draws; the student asks for what it lacks
    hp = BoardPeer("h")
    _, hu = hp.stroke("p1", [7, 7])
    assert (await host.request("board_update", update=b64(hu)))["ok"]
    r = await student.request("board_sync", state_vector=b64(peer.doc.get_state()))
    peer.apply(r["update"])
    assert len(peer.ids()) == 2
    await asyncio.sleep(0)


async def test_a_webinar_viewer_sees_the_board_but_cannot_draw_and_a_waiting_guest_sees_nothing(
        server: Server) -> None:
    room_id = await server.create_room(mode="webinar")
    host = await server.join(room_id, "teacher", role=Role.HOST)
    await host.event("board_state")
    peer = BoardPeer("teacher")
    eid, upd = peer.stroke("p1", [1, 1, 2, 2])
    assert (await host.request("board_update", update=b64(upd)))["ok"]
    viewer = await server.join(room_id, "v", role=Role.VIEWER)
    st = await viewer.event("board_state")
    assert st["may_draw"] is False
    seen = BoardPeer("v")
    seen.apply(st["update"])
    assert seen.ids() == {eid}
    _, mine = BoardPeer("v").stroke("p1", [5, 5])
    r = await viewer.request("board_update", update=b64(mine))
    assert r["error"]["code"] == "forbidden", r
    assert (await viewer.request("board_cursor", cursor={"x": 1, "y": 1, "page_id": "p1"}))["ok"]
    assert not [e for e in host.events if e["event"] == "board_cursor"]  # a non-drawer's cursor is dropped
    # a guest in the waiting room: no board_state, and asking is refused
    room2 = await server.create_room()
    await server.join(room2, "teacher", role=Role.HOST)
    guest = await server.connect(server.token(room2, "g", registered=False))
    welcome = await guest.event("welcome")
    assert welcome["state"] == "waiting"
    r = await guest.request("board_sync")
    assert r["ok"] is False, r
    await asyncio.sleep(0.2)
    assert not [e for e in guest.events if e["event"].startswith("board_")]

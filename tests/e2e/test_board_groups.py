"""Breakout groups each have their own board: a student syncs to its group's board, draws there,
the other group does not see it; the host sees any group's board by naming it; a student's update
made on the old board after the groups moved it is refused (board_moved) and lands nowhere; after
the groups close everyone is back on the room's board, and the group's board is kept."""

from __future__ import annotations

from typing import Any

from tests.e2e.board_peer import BoardPeer, b64
from tests.e2e.test_breakout_requests import open_groups


async def test_each_group_draws_on_its_own_board_and_the_host_sees_them(server_factory: Any) -> None:
    server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    _room_id, host, students, _pids, state = await open_groups(server, n_students=2)
    g1, g2 = (g["breakout_id"] for g in state["rooms"])
    s1, s2 = students
    await s1.event("breakouts_started")
    # an update made on the room's board after the groups opened: refused, no board gets it
    _, stale = BoardPeer("s1").stroke("p1", [9, 9])
    r = await s1.request("board_update", update=b64(stale))
    assert r["error"]["code"] == "board_moved", r
    peers = {}
    for s, g in ((s1, g1), (s2, g2)):
        st = await s.request("board_sync")
        assert st["group_id"] == g and st["may_draw"] is True
        p = peers[g] = BoardPeer(g)
        p.apply(st["update"])
        _, u = p.stroke("p1", [1, 1, 2, 2])
        assert (await s.request("board_update", update=b64(u)))["ok"]
    # s2 got no update from group 1 (only its own board's news)
    assert not [e for e in s2.events if e["event"] == "board_update" and e.get("group_id") == g1]
    room = BoardPeer("room")
    room.apply((await host.request("board_sync"))["update"])
    assert room.ids() == set()  # the stale update went nowhere
    for g in (g1, g2):
        seen = BoardPeer("h")
        st = await host.request("board_sync", group_id=g)
        assert st["group_id"] == g
        seen.apply(st["update"])
        assert seen.ids() == peers[g].ids()
    # the groups close: everyone is back on the room's board; the group's board stays
    assert (await host.request("breakouts_end", countdown_s=0))["ok"]
    await s1.event("breakouts_ended", timeout=5)
    st = await s1.request("board_sync")
    assert st["group_id"] is None
    kept = BoardPeer("k")
    kept.apply((await host.request("board_sync", group_id=g1))["update"])
    assert kept.ids() == peers[g1].ids()


async def test_a_groups_board_is_shown_to_the_class_after_the_groups_close(server_factory: Any) -> None:
    server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    _room_id, host, students, _pids, state = await open_groups(server, n_students=2)
    g1 = state["rooms"][0]["breakout_id"]
    s1, s2 = students
    await s1.event("breakouts_started")
    st = await s1.request("board_sync")
    mine = BoardPeer("s1")
    mine.apply(st["update"])
    eid, u = mine.stroke("p1", [10, 20, 30, 40], color="#2e7d32")
    assert (await s1.request("board_update", update=b64(u)))["ok"]
    assert (await host.request("breakouts_end", countdown_s=0))["ok"]
    await s2.event("breakouts_ended", timeout=5)
    room = BoardPeer("room")
    room.apply((await s2.request("board_sync"))["update"])
    assert (await s2.request("board_show_group", group_id=g1))["error"]["code"] == "forbidden"
    r = await host.request("board_show_group", group_id=g1)
    assert r["ok"], r
    (page,) = r["pages"]
    pages = await s2.event("board_pages")
    assert pages["pages"][-1]["page_id"] == page["page_id"]
    assert (await s2.event("board_follow"))["page_id"] == page["page_id"]
    room.apply((await s2.event("board_update", by=host.events[0]["participant_id"]))["update"])
    (copied,) = room.ids(page["page_id"])
    assert copied != eid and room.points(copied) == [10, 20, 30, 40]
    assert room.elements[copied]["color"] == "#2e7d32"
    # the group's own board is unchanged
    left = BoardPeer("g")
    left.apply((await host.request("board_sync", group_id=g1))["update"])
    assert left.ids() == {eid}

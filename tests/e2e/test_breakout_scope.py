"""Activity news inside breakout groups, through the real server: while groups are open a hand, a
reaction or an attention check reaches the place it happens in (a group, or the main room) and
the hosts and co-hosts wherever they are, never another group; the hand queue stays one queue;
after the close everything is room-wide again.  GET /v1/rooms/{id} lists the open groups."""

from __future__ import annotations

from typing import Any

from signaling.rooms import Role
from tests.conftest import Server, WsClient


async def settled(*clients: WsClient) -> None:
    """Whatever the server queued for these sockets before now has arrived (a reply follows it)."""
    for c in clients:
        assert (await c.request("ping"))["ok"]


def got(c: WsClient, name: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in c.events if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


async def test_hands_reactions_and_attention_stay_in_their_group_until_the_close(server: Server) -> None:
    room_id = await server.create_room()
    host = await server.join(room_id, "teacher", role=Role.HOST)
    cohost = await server.join(room_id, "assistant", role=Role.COHOST)
    s = [await server.join(room_id, f"s{i}") for i in range(5)]
    pid = [c.events[0]["participant_id"] for c in s]
    # group 1: s0, s2; group 2: s1, s3; s4 stays in the main room (with the co-host)
    r = await host.request("breakouts_start", rooms=[{"name": "Группа 1", "participant_ids": [pid[0], pid[2]]},
                                                     {"name": "Группа 2", "participant_ids": [pid[1], pid[3]]}])
    assert r["ok"], r
    g1, g2 = (g["breakout_id"] for g in r["breakouts"]["rooms"])
    for c in s[:4]:
        await c.event("breakouts_started")

    status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert status == 200
    assert [(g["breakout_id"], g["name"], g["participant_ids"]) for g in room["breakouts"]] == [
        (g1, "Группа 1", [pid[0], pid[2]]), (g2, "Группа 2", [pid[1], pid[3]])]

    # a hand and a reaction in group 1: group 1 and the moderators, not group 2 or the main room
    assert (await s[0].request("raise_hand"))["position"] == 1
    assert (await s[0].request("react", emoji="👍"))["ok"]
    for c in (s[2], host, cohost):
        await c.event("hand_raised", participant_id=pid[0])
        await c.event("reaction", participant_id=pid[0])
    await settled(s[1], s[3], s[4])
    for c in (s[1], s[3], s[4]):
        assert not got(c, "hand_raised") and not got(c, "reaction"), c.events

    # a hand in the main room: the main room and the moderators; the queue stays one, in order
    assert (await s[4].request("raise_hand"))["position"] == 2
    await host.event("hand_raised", participant_id=pid[4])
    await cohost.event("hand_raised", participant_id=pid[4])
    await settled(*s[:4])
    assert all(not got(c, "hand_raised", participant_id=pid[4]) for c in s[:4])
    hands = (await host.request("list_hands"))["hands"]
    assert [(h["participant_id"], h["position"]) for h in hands] == [(pid[0], 1), (pid[4], 2)]

    # the host lowers group 1's hand: group 1 hears it, group 2 does not
    assert (await host.request("lower_hand", participant_id=pid[0]))["lowered"] == [pid[0]]
    await s[0].event("hand_lowered", participant_id=pid[0])
    await s[2].event("hand_lowered", participant_id=pid[0])
    await settled(s[1], s[3], s[4])
    assert all(not got(c, "hand_lowered") for c in (s[1], s[3], s[4]))

    # attention from the host visiting group 2 asks group 2 only (and the record says so)
    assert (await host.request("breakouts_join", breakout_id=g2))["ok"]
    r = await host.request("attention", all=True, text="Вы здесь?")
    assert r["ok"] and r["targets"] == 2, r
    for c in (s[1], s[3]):
        await c.event("attention", attention_id=r["attention_id"])
    await settled(s[0], s[2], s[4])
    assert all(not got(c, "attention") for c in (s[0], s[2], s[4]))
    st = await host.request("attention_status", attention_id=r["attention_id"])
    assert sorted(p["participant_id"] for p in st["pending"]) == sorted([pid[1], pid[3]])

    # after the close everything is room-wide again
    assert (await host.request("breakouts_end", countdown_s=0))["ok"]
    for c in s:
        await c.event("breakouts_ended", timeout=5)
    status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert status == 200 and room["breakouts"] == []
    assert (await s[1].request("raise_hand"))["ok"]
    assert (await s[3].request("react", emoji="👍"))["ok"]
    for c in (host, cohost, *s):
        await c.event("hand_raised", participant_id=pid[1])
    for c in (host, cohost, *s):
        if c is not s[3]:
            await c.event("reaction", participant_id=pid[3])
    r = await host.request("attention", all=True, text="Все вернулись?")
    assert r["ok"] and r["targets"] == 5, r
    for c in s:
        await c.event("attention", attention_id=r["attention_id"])

"""Host controls through the real server: mute, roles, removal, locks, lockdown, ending the lesson."""

import asyncio
from typing import Any

from signaling.app_keys import ROOMS
from signaling.rooms import Participant, Role
from signaling.ws.live_room import LiveRoom
from signaling.ws.session import Session
from tests.conftest import Server, WsClient


class MuteRecorder:
    """A room feature recording `on_mute_changed` (what the media plane enforces)."""

    def __init__(self, live: LiveRoom) -> None:
        self.changes: list[tuple[str, str, bool]] = []

    async def on_joined(self, session: Session) -> None:
        pass

    async def on_left(self, session: Session) -> None:
        pass

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        self.changes.append((participant.identity, source, muted))

    async def close(self) -> None:
        pass


async def pid(c: WsClient) -> str:
    return str((await c.event("welcome"))["participant_id"])


async def classroom(server: Server, **settings: Any) -> tuple[str, WsClient, WsClient, WsClient]:
    room_id = await server.create_room(**settings)
    host = await server.join(room_id, "host", role=Role.HOST, name="Учитель")
    a = await server.join(room_id, "a", family_name="Андреев", given_name="Олег")
    b = await server.join(room_id, "b", family_name="Борисова", given_name="Анна")
    return room_id, host, a, b


async def test_mute_one_and_all(server: Server) -> None:
    recorders: list[MuteRecorder] = []
    server.app[ROOMS].feature_factories.append(lambda live: recorders.append(MuteRecorder(live)) or recorders[-1])
    _, host, a, b = await classroom(server)
    co = await server.join(_, "co", role=Role.COHOST)
    pa, pb = await pid(a), await pid(b)
    r = await host.request("mute", participant_id=pa, source="microphone")
    assert r["ok"] and r["muted"] == [pa]
    ev = await a.event("muted_by_host")
    assert ev["source"] == "microphone" and ev["muted"] is True and ev["by"] == await pid(host)
    upd = await b.event("participant_updated", participant_id=pa)
    assert upd["participant"]["muted"] == {"microphone": True}
    assert ("a", "microphone", True) in recorders[0].changes

    r = await host.request("mute", all=True, source="camera")
    assert sorted(r["muted"]) == sorted([pa, pb])  # not the co-host
    bulk = await co.event("participants_muted", source="camera")
    assert sorted(bulk["participant_ids"]) == sorted([pa, pb])
    await b.event("muted_by_host", source="camera")
    assert not [e for e in co.events if e["event"] == "muted_by_host"]
    assert {("a", "camera", True), ("b", "camera", True)} <= set(recorders[0].changes)

    for fields in ({"source": "camera"}, {"source": "camera", "all": True, "participant_id": pa},
                   {"participant_id": pa, "source": "hologram"}):
        assert (await host.request("mute", **fields))["error"]["code"] == "invalid_message"
    assert (await host.request("mute", participant_id="PA_gone", source="camera"))["error"]["code"] == "not_found"
    # a co-host may not mute a host
    assert (await co.request("mute", participant_id=await pid(host), source="microphone"))["error"]["code"] == \
        "forbidden"


async def test_mute_during_leave_is_not_found_or_harmless(server: Server) -> None:
    _, host, a, _b = await classroom(server)
    pa = await pid(a)
    await a.ws.close()
    r = await host.request("mute", participant_id=pa, source="microphone")
    assert r["ok"] or r["error"]["code"] == "not_found"
    await host.event("participant_left", participant_id=pa)
    assert (await host.request("mute", participant_id=pa, source="microphone"))["error"]["code"] == "not_found"
    assert (await host.request("ping"))["ok"]


async def test_host_makes_and_unmakes_a_cohost_who_then_sees_the_waiting_room(server: Server) -> None:
    room_id, host, a, b = await classroom(server)
    pa, pb, ph = await pid(a), await pid(b), await pid(host)
    r = await host.request("set_role", participant_id=pa, role="cohost")
    assert r["ok"] and r["participant"]["role"] == "cohost"
    await b.event("participant_updated", participant_id=pa)
    await a.event("waiting_room")
    await a.event("hand_queue")
    # the co-host may now moderate, but not demote the host nor appoint hosts
    assert (await a.request("set_role", participant_id=ph, role="participant"))["error"]["code"] == "forbidden"
    assert (await a.request("set_role", participant_id=pb, role="host"))["error"]["code"] == "forbidden"
    assert (await a.request("set_role", participant_id=pb, role="viewer"))["ok"]
    assert (await a.request("mute", participant_id=pb, source="microphone"))["ok"]
    # the role sticks across a reconnect with the original token
    a2 = await server.connect(server.token(room_id, "a", family_name="Андреев", given_name="Олег"))
    assert (await a2.event("welcome"))["you"]["role"] == "cohost"
    assert (await host.request("set_role", participant_id=pa, role="participant"))["ok"]
    assert (await a2.request("mute", participant_id=pb, source="camera"))["error"]["code"] == "forbidden"
    assert (await host.request("set_role", participant_id=ph, role="participant"))["error"]["code"] == \
        "invalid_state"  # the only host


async def test_remove_with_ban_and_the_api_removal_share_one_path(server: Server) -> None:
    room_id, host, a, b = await classroom(server)
    pa, pb = await pid(a), await pid(b)
    r = await host.request("remove", participant_id=pa, ban=True)
    assert r["ok"] and r["banned"] is True
    removed = await a.event("removed")
    assert removed["banned"] is True and "Учитель" in removed["reason"]
    await a.closed.wait()
    assert a.ws.close_code == 4411
    left = await b.event("participant_left", participant_id=pa)
    assert left["reason"] == "removed"
    again = await server.connect(server.token(room_id, "a"))
    await again.closed.wait()
    assert again.ws.close_code == 4403
    # the API: same events, same close code
    status, body = await server.rest("DELETE", f"/v1/rooms/{room_id}/participants/b")
    assert status == 200 and body == {"removed": True, "banned": False}
    await b.event("removed")
    await b.closed.wait()
    assert b.ws.close_code == 4411
    assert (await host.event("participant_left", participant_id=pb))["reason"] == "removed"
    status, body = await server.rest("DELETE", f"/v1/rooms/{room_id}/participants/b")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await server.rest("DELETE", f"/v1/rooms/{room_id}/participants/someone?ban=true")
    assert status == 200 and body == {"removed": False, "banned": True}
    assert (await host.request("remove", participant_id=pa))["error"]["code"] == "not_found"


async def test_locks_apply_at_once_and_lockdown_is_undone(server: Server) -> None:
    _, host, a, b = await classroom(server)
    pa = await pid(a)
    r = await host.request("set_lock", chat=True, reactions=True)
    assert r["ok"] and r["lock"]["chat"] and r["lock"]["reactions"] and not r["lock"]["camera"]
    ev = await a.event("locks_changed")
    assert ev["changed"] == {"chat": True, "reactions": True} and ev["lockdown"] is False
    assert (await a.request("chat_send", text="hi"))["error"]["code"] == "forbidden"
    assert (await a.request("react", emoji="👍"))["error"]["code"] == "forbidden"
    assert (await host.request("chat_send", text="hosts are not locked"))["ok"]

    r = await host.request("lockdown", enabled=True)
    assert r["lockdown"] is True and all(r["lock"].values())
    await a.event("locks_changed", lockdown=True)
    muted = await b.event("participants_muted", source="microphone")
    assert pa in muted["participant_ids"]
    await a.event("muted_by_host", source="camera")
    r = await host.request("set_lock", all=False)
    # back to the locks from before the lockdown: chat and reactions, and private chat between
    # students, which a school's room starts with locked (SCHOOL_LOCK)
    assert r["lockdown"] is False and r["lock"] == {**{k: False for k in r["lock"]}, "chat": True,
                                                     "reactions": True, "private_chat": True}
    assert (await a.request("chat_send", text="still locked"))["error"]["code"] == "forbidden"
    assert (await host.request("set_lock", chat=False, reactions=False))["ok"]
    assert (await a.request("chat_send", text="now"))["ok"]
    for fields in ({}, {"all": True, "chat": True}, {"chat": "yes"}):
        assert (await host.request("set_lock", **fields))["error"]["code"] == "invalid_message"
    status, room = await server.rest("GET", f"/v1/rooms/{_room(a)}")
    assert status == 200 and room["settings"]["lock"]["chat"] is False


def _room(c: WsClient) -> str:
    return str(next(e for e in c.events if e["event"] == "welcome")["room"]["room_id"])


async def test_ask_to_unmute_and_allowances_reach_the_student(server: Server) -> None:
    _, host, a, _b = await classroom(server, lock={"self_unmute": True})
    pa = await pid(a)
    assert (await host.request("request_unmute", participant_id=pa, source="microphone"))["ok"]
    ev = await a.event("unmute_requested")
    assert ev["source"] == "microphone" and ev["name"] == "Учитель"
    live = server.app[ROOMS].live[_room(a)]
    p = live.room.get(pa)
    live.room.check_self_unmute(p, "microphone")  # the media plane's check: allowed once
    assert (await host.request("allow_unmute", participant_id=pa))["ok"]
    assert (await a.event("unmute_allowed"))["allowed"] is True
    assert (await host.request("allow_unmute", participant_id="PA_x"))["error"]["code"] == "not_found"


async def test_end_room_ends_for_everyone(server: Server) -> None:
    room_id, host, a, b = await classroom(server)
    r = await host.request("end_room")
    assert r["ok"]
    for c in (host, a, b):
        await c.event("room_ended")
        await c.closed.wait()
        assert c.ws.close_code == 4410
    assert room_id not in server.app[ROOMS].live
    status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert status == 200 and room["active"] is False


async def test_rest_mute_mutes_and_lifts(server: Server) -> None:
    room_id, host, a, _b = await classroom(server)
    pa = await pid(a)
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/participants/a/mute",
                                     {"source": "microphone", "muted": True})
    assert status == 200 and body["muted"] == {"microphone": True} and body["participant_id"] == pa
    ev = await a.event("muted_by_host")
    assert ev["by"] is None and ev["muted"] is True
    await host.event("participant_updated", participant_id=pa)
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/participants/a/mute",
                                     {"source": "microphone", "muted": False})
    assert status == 200 and body["muted"] == {"microphone": False}
    for bad in ({"source": "x", "muted": True}, {"muted": True}, {"source": "camera", "extra": 1}):
        status, body = await server.rest("POST", f"/v1/rooms/{room_id}/participants/a/mute", bad)
        assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/participants/nobody/mute",
                                     {"source": "camera", "muted": True})
    assert status == 404
    status, _ = await server.rest("POST", "/v1/rooms/RM_nope/participants/a/mute", {"source": "camera"})
    assert status == 404
    status, _ = await server.rest("POST", f"/v1/rooms/{room_id}/participants/a/mute", {"source": "camera"},
                                  auth=False)
    assert status == 401
    await asyncio.sleep(0)

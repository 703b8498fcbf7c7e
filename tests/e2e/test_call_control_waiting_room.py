"""Waiting room through the real server: hosts see the queue, admit one/several/all, deny."""

import asyncio
import json
from typing import Any

from signaling.app_keys import ROOMS
from signaling.rooms import Role
from signaling.ws.live_room import LiveRoom
from signaling.ws.session import Session
from tests.conftest import Server, WsClient


async def waiting(server: Server, room_id: str, identity: str, **kw: Any) -> tuple[WsClient, str]:
    c = await server.connect(server.token(room_id, identity, **kw))
    w = await c.event("welcome")
    assert w["state"] == "waiting"
    return c, str(w["participant_id"])


class JoinRecorder:
    """A room feature that records the hooks it gets (as the media plane would use them)."""

    def __init__(self, live: LiveRoom) -> None:
        self.joined: list[str] = []

    async def on_joined(self, session: Session) -> None:
        self.joined.append(session.participant.identity)

    async def on_left(self, session: Session) -> None:
        pass

    async def on_mute_changed(self, participant: Any, source: str, muted: bool) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_moderator_gets_the_queue_on_join_and_admits_one_then_all(server: Server) -> None:
    recorders: list[JoinRecorder] = []
    server.app[ROOMS].feature_factories.append(lambda live: recorders.append(JoinRecorder(live)) or recorders[-1])
    room_id = await server.create_room(guest_policy="ASK_HOST")
    a, pa = await waiting(server, room_id, "a", name="Анна")
    b, pb = await waiting(server, room_id, "b", registered=False)
    c, pc = await waiting(server, room_id, "c")
    host = await server.join(room_id, "host", role=Role.HOST)
    queue = await host.event("waiting_room")
    assert queue["count"] == 3 and [p["participant_id"] for p in queue["participants"]] == [pa, pb, pc]
    assert queue["participants"][0]["name"] == "Анна" and queue["participants"][1]["registered"] is False
    assert all(p["waiting_since"] for p in queue["participants"])

    r = await host.request("admit", participant_ids=[pa])
    assert r == {"id": 1, "ok": True, "admitted": [pa]}
    assert (await a.event("admitted"))["by"]
    await a.wait_for(lambda: len([e for e in a.events if e["event"] == "welcome"]) == 2)
    welcomes = [e for e in a.events if e["event"] == "welcome"]
    assert welcomes[-1]["state"] == "joined" and welcomes[-1]["participant_id"] == pa
    assert a.events.index(await a.event("admitted")) < a.events.index(welcomes[-1])
    await a.event("chat_history")
    await host.event("participant_joined", participant_id=pa)
    await host.event("participant_left_waiting_room", participant_id=pa, reason="admitted")
    assert (await a.request("list_participants"))["ok"] is True

    r = await host.request("admit", all=True)
    assert sorted(r["admitted"]) == sorted([pb, pc])
    for cl in (b, c):
        await cl.event("admitted")
    bulk = await a.event("participants_joined")  # admitting several: one event, not one per person
    assert sorted(bulk["participant_ids"]) == sorted([pb, pc]) and bulk["num_participants"] == 4
    assert {p["participant_id"] for p in bulk["participants"]} == {pb, pc}
    assert not [e for e in a.events if e["event"] == "participant_joined" and e["participant_id"] in (pb, pc)]
    assert (await host.event("waiting_room", count=0))["participants"] == []  # the queue left, in one frame
    assert recorders and recorders[0].joined.count("a") == 1 and {"b", "c"} <= set(recorders[0].joined)
    assert (await host.request("list_waiting"))["count"] == 0


async def test_deny_closes_with_4403_and_the_same_token_cannot_come_back(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    host = await server.join(room_id, "host", role=Role.HOST)
    tok = server.token(room_id, "d")
    d = await server.connect(tok)
    pd = (await d.event("welcome"))["participant_id"]
    await host.event("participant_waiting", participant_id=pd)
    r = await host.request("deny", participant_ids=[pd])
    assert r["ok"] and r["denied"] == [pd]
    assert (await d.event("denied"))["reason"]
    await d.closed.wait()
    assert d.ws.close_code == 4403
    await host.event("participant_left_waiting_room", participant_id=pd, reason="denied")
    again = await server.connect(tok)
    await again.closed.wait()
    assert again.ws.close_code == 4403 and (await again.event("error"))["error"]["code"] == "entry_refused"


async def test_without_a_host_people_keep_waiting_and_a_cohost_can_admit(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    a, pa = await waiting(server, room_id, "a")
    await asyncio.sleep(0.3)
    assert [e["event"] for e in a.events] == ["welcome"]
    co = await server.join(room_id, "co", role=Role.COHOST)
    assert (await co.event("waiting_room"))["count"] == 1
    assert (await co.request("admit", participant_ids=[pa]))["admitted"] == [pa]
    await a.event("admitted")


async def test_two_hosts_admitting_the_same_person_admit_once(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    h1 = await server.join(room_id, "h1", role=Role.HOST)
    h2 = await server.join(room_id, "h2", role=Role.HOST)
    a, pa = await waiting(server, room_id, "a")
    r1, r2 = await asyncio.gather(h1.request("admit", participant_ids=[pa]), h2.request("admit", participant_ids=[pa]))
    assert sorted([r1["admitted"], r2["admitted"]]) == [[], [pa]]
    await asyncio.sleep(0.2)
    assert len([e for e in a.events if e["event"] == "admitted"]) == 1
    assert len([e for e in h1.events if e["event"] == "participant_joined" and e["participant_id"] == pa]) == 1
    r = await h2.request("deny", participant_ids=[pa])  # already in: nothing to deny
    assert r["ok"] and r["denied"] == [] and not a.closed.is_set()


async def test_admit_and_deny_validate_their_fields_and_targets(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    host = await server.join(room_id, "host", role=Role.HOST)
    for fields in ({}, {"participant_ids": []}, {"participant_ids": ["x"], "all": True}, {"participant_ids": "x"}):
        r = await host.request("admit", **fields)
        assert r["error"]["code"] == "invalid_message", fields
    assert (await host.request("admit", participant_ids=["PA_nobody"]))["error"]["code"] == "not_found"
    assert (await host.request("deny", participant_ids=["PA_nobody"]))["error"]["code"] == "not_found"


async def test_a_waiting_participant_who_leaves_drops_out_of_the_queue(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    host = await server.join(room_id, "host", role=Role.HOST)
    a, pa = await waiting(server, room_id, "a")
    await host.event("participant_waiting", participant_id=pa)
    await a.request("leave")
    await host.event("participant_left_waiting_room", participant_id=pa)
    assert (await host.request("admit", participant_ids=[pa]))["error"]["code"] == "not_found"


async def test_a_waiting_participant_who_comes_back_as_host_enters_and_is_announced(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    student = await server.join(room_id, "s", role=Role.COHOST)
    t, pt = await waiting(server, room_id, "teacher")
    host = await server.connect(server.token(room_id, "teacher", role=Role.HOST))
    w = await host.event("welcome")
    assert w["state"] == "joined" and w["participant_id"] == pt
    await student.event("participant_joined", participant_id=pt)
    await t.closed.wait()
    assert t.ws.close_code == 4409


ROOM_EVENTS = ("participant_joined", "participants_joined", "participant_left", "participant_updated",
               "participants_muted", "chat_message", "chat_history", "hand_raised", "hand_lowered", "hand_queue",
               "reaction", "locks_changed", "attention", "room_update", "waiting_room", "participant_waiting",
               "track_published", "active_speaker")


async def test_a_waiting_guest_sees_nobody_and_no_room_event_until_admitted(server: Server) -> None:
    """Finding 5: an unadmitted guest's welcome listed every participant's name and identity."""
    room_id = await server.create_room(name="9Б физика")
    host = await server.join(room_id, "teacher-ivanova", role=Role.HOST, name="Мария Ивановна")
    pupil = await server.join(room_id, "pupil-petrov", name="Пётр Петров")
    guest, pg = await waiting(server, room_id, "guest-x", registered=False, name="Незнакомец")
    welcome = guest.events[0]
    assert welcome["participants"] == [] and "num_participants" not in welcome
    assert welcome["room"] == {"room_id": room_id, "name": "9Б физика"}
    assert welcome["you"]["identity"] == "guest-x" and welcome["you"]["state"] == "waiting"
    text = json.dumps(welcome, ensure_ascii=False)
    for secret in ("teacher-ivanova", "pupil-petrov", "Мария", "Пётр"):
        assert secret not in text
    await host.event("participant_waiting", participant_id=pg)

    # the lesson goes on: joins, leaves, chat, hands, reactions, locks, mutes, attention
    late = await server.join(room_id, "pupil-late")
    pid_late = late.events[0]["participant_id"]
    pid_pupil = pupil.events[0]["participant_id"]
    assert (await pupil.request("chat_send", text="привет"))["ok"]
    assert (await pupil.request("raise_hand"))["ok"]
    assert (await pupil.request("react", emoji="👍"))["ok"]
    assert (await host.request("set_lock", chat=True))["ok"]
    assert (await host.request("mute", participant_id=pid_pupil, source="microphone"))["ok"]
    assert (await host.request("attention", participant_id=pid_pupil, text="вы здесь?"))["ok"]
    await late.ws.close()
    await host.event("participant_left", participant_id=pid_late)
    await pupil.event("attention")
    r = await guest.request("list_participants")
    assert r["ok"] is False and r["error"]["code"] == "forbidden"
    await asyncio.sleep(0.2)
    assert [e["event"] for e in guest.events] == ["welcome"]

    assert (await host.request("admit", participant_ids=[pg]))["ok"]
    await guest.event("admitted")
    full = await guest.event("welcome", state="joined")
    assert {p["identity"] for p in full["participants"]} == {"teacher-ivanova", "pupil-petrov", "guest-x"}
    assert full["num_participants"] == 3 and full["room"]["settings"]["lock"]["chat"] is True
    history = await guest.event("chat_history")
    assert [m["text"] for m in history["messages"]] == ["привет"]
    assert (await guest.request("list_participants"))["total"] == 3
    await pupil.request("lower_hand")
    await guest.event("hand_lowered", participant_id=pid_pupil)  # now room events reach the guest


async def test_a_waiting_webinar_viewer_gets_no_room_update(server: Server) -> None:
    room_id = await server.create_room(mode="webinar")
    live = await server.app[ROOMS].open(room_id, create=False)
    live.audience_update_s = 0.05
    host = await server.join(room_id, "host", role=Role.HOST)
    viewer = await server.join(room_id, "v1", role=Role.VIEWER)
    guest, pg = await waiting(server, room_id, "g1", role=Role.VIEWER, registered=False)
    assert guest.events[0]["participants"] == []
    await host.event("participant_waiting", participant_id=pg)
    for i in range(3):
        await server.join(room_id, f"v{i + 2}", role=Role.VIEWER)
    await viewer.wait_for(lambda: any(e["event"] == "room_update" and e["num_participants"] == 5
                                      for e in viewer.events))
    await asyncio.sleep(0.2)
    assert [e["event"] for e in guest.events] == ["welcome"]
    assert (await host.request("admit", participant_ids=[pg]))["ok"]
    await guest.event("welcome", state="joined")
    update = await guest.event("room_update")  # the audience's view of the room, on admission
    assert update["num_viewers"] == 5


async def test_a_denied_guest_leaves_without_having_seen_the_class(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ASK_HOST")
    host = await server.join(room_id, "host", role=Role.HOST)
    guest, pg = await waiting(server, room_id, "g")
    assert (await host.request("deny", participant_ids=[pg]))["ok"]
    await guest.closed.wait()
    assert guest.ws.close_code == 4403
    assert not [e for e in guest.events if e["event"] in ROOM_EVENTS]
    assert all(e.get("participants", []) == [] for e in guest.events)

"""Every host action sent by a participant, a viewer or a guest is refused with `forbidden` and
changes nothing; the permission is checked before the parameters.  Each room lock refuses its
requests over the WebSocket (not only in the domain, tests/unit/rooms/test_permissions.py) and never
binds a host."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from signaling.app_keys import DISPATCH, ROOMS
from signaling.dispatcher import Route
from signaling.rooms import Action, Role, Room
from signaling.rooms.permissions import ROLE_ACTIONS
from tests.conftest import Server, WsClient


def snapshot(room: Room) -> str:
    """Everything a host action could change, as one comparable text."""
    return json.dumps({
        "room": room.to_json(participants=2000),
        "waiting": [p.to_json() for p in room.waiting()],
        "banned": sorted(room.banned), "denied": sorted(room.denied),
        "roles": {k: v.value for k, v in room.role_overrides.items()},
        "unmute_allowed": sorted(room.unmute_allowed), "unmute_once": sorted(room.unmute_once),
        "lockdown": room.lockdown, "hands": [(h.participant_id, h.position) for h in room.hands.queue()],
        "chat": [m.to_json() for m in room.chat.messages()],
        "attention": [(r.attention_id, sorted(r.targets), sorted(r.acks)) for r in room.attention.requests()],
        "ended": room.ended_at,
    }, sort_keys=True, default=str)


def host_requests(ids: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Each host-only request type with valid fields, and with nonsense fields (still `forbidden`)."""
    other, waiting = ids["other"], ids["waiting"]
    valid: list[tuple[str, dict[str, Any]]] = [
        ("admit", {"participant_ids": [waiting]}), ("admit", {"all": True}),
        ("deny", {"participant_ids": [waiting]}), ("list_waiting", {}),
        ("mute", {"participant_id": other, "source": "microphone"}), ("mute", {"all": True, "source": "camera"}),
        ("allow_unmute", {"participant_id": ids["self"]}),
        ("request_unmute", {"participant_id": ids["self"], "source": "microphone"}),
        ("set_role", {"participant_id": ids["self"], "role": "host"}),
        ("set_role", {"participant_id": other, "role": "viewer"}),
        ("remove", {"participant_id": other, "ban": True}),
        ("set_lock", {"chat": True}), ("set_lock", {"all": True}), ("set_lock", {"self_unmute": False}),
        ("lockdown", {"enabled": True}), ("end_room", {}),
        ("lower_hand", {"participant_id": other}), ("lower_hand", {"all": True}), ("list_hands", {}),
        ("chat_delete", {"message_id": ids["message"]}),
        ("attention", {"all": True}), ("attention", {"participant_id": other, "text": "?"}),
        ("attention_status", {"attention_id": ids["attention"]}),
    ]
    nonsense = [(t, {"participant_id": 5, "all": "x", "source": [], "enabled": None, "message_id": {}})
                for t in {t for t, _ in valid} if t != "lower_hand"]
    return valid + nonsense


def test_every_host_route_declares_its_action_and_no_participant_has_it(server_app_routes: dict[str, Route[Any]]
                                                                         ) -> None:
    host_types = {t for t, _ in host_requests({k: "x" for k in ("other", "waiting", "self", "message",
                                                               "attention")})} - {"lower_hand"}
    for t in host_types:
        action = server_app_routes[t].action
        assert action is not None, t
        for role in (Role.PARTICIPANT, Role.VIEWER):
            assert action not in ROLE_ACTIONS[role], (t, role)


@pytest.fixture
async def server_app_routes(server: Server) -> dict[str, Route[Any]]:
    table = server.app[DISPATCH]
    return {t: table.route(t) for t in table.types}


@pytest.mark.parametrize("actor", ["participant", "viewer", "guest"])
async def test_host_actions_by_non_hosts_are_forbidden_and_change_nothing(server_factory: Any, actor: str) -> None:
    server: Server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000)
    room_id = await server.create_room(guest_policy="ASK_HOST")
    host = await server.join(room_id, "host", role=Role.HOST)
    kw: dict[str, Any] = {"participant": {}, "viewer": {"role": Role.VIEWER}, "guest": {"registered": False}}[actor]
    me = await server.join(room_id, "me", **kw)
    other = await server.join(room_id, "other")
    ids = {"self": (await me.event("welcome"))["participant_id"],
           "other": (await other.event("welcome"))["participant_id"]}
    assert (await host.request("admit", all=True))["ok"]
    await me.event("admitted")
    waiting = await server.join(room_id, "waiting")
    ids["waiting"] = (await waiting.event("welcome"))["participant_id"]
    ids["message"] = (await host.request("chat_send", text="hello"))["message_id"]
    ids["attention"] = (await host.request("attention", all=True))["attention_id"]
    assert (await other.request("raise_hand"))["ok"]
    live = server.app[ROOMS].live[room_id]
    events_before = len(other.events)

    before = snapshot(live.room)
    for type_, fields in host_requests(ids):
        r = await me.request(type_, **fields)
        assert r["ok"] is False and r["error"]["code"] == "forbidden", (actor, type_, fields, r)
        assert snapshot(live.room) == before, (actor, type_, fields)
    assert not me.closed.is_set() and not waiting.closed.is_set() and not other.closed.is_set()
    assert [e["event"] for e in other.events[events_before:]] == []  # nobody was told anything
    assert (await host.request("ping"))["ok"]


async def sending_offer(kind: str) -> tuple[str, str]:
    """A real (aiortc) offer with one sending m-line of ``kind``: (sdp, mid).  No ICE servers: it
    gathers loopback host candidates and sends nothing."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert transceiver.mid is not None
        return pc.localDescription.sdp, transceiver.mid
    finally:
        await pc.close()


Fields = Callable[[str], Awaitable[dict[str, Any]]]  # the request's fields, given the sender's peer's id


def publish(kind: str, source: str) -> tuple[str, Fields]:
    async def fields(_peer: str) -> dict[str, Any]:
        sdp, mid = await sending_offer(kind)
        return {"sdp": sdp, "sources": {mid: source}}
    return "publish", fields


def plain(type_: str, **fixed: Any) -> tuple[str, Fields]:
    async def fields(_peer: str) -> dict[str, Any]:
        return dict(fixed)
    return type_, fields


def board_stroke() -> tuple[str, Fields]:
    """A whiteboard stroke: a real Yjs update (a new one each time)."""
    from tests.e2e.board_peer import BoardPeer, b64

    async def fields(_peer: str) -> dict[str, Any]:
        return {"update": b64(BoardPeer("lock").stroke("p1", [1.0, 2.0])[1])}
    return "board_update", fields


def private_message() -> tuple[str, Fields]:
    async def fields(peer: str) -> dict[str, Any]:
        return {"text": "psst", "to": peer}
    return "chat_send", fields


# lock -> the requests it forbids to participants (docs/protocol.md: Media; Call control: Requests;
# Chat message; Mute and locks), written out rather than read from the permission table
LOCKED_REQUESTS: dict[str, list[tuple[str, Fields]]] = {
    "camera": [publish("video", "camera")],
    "microphone": [publish("audio", "microphone")],
    "screen_share": [publish("video", "screen")],
    "chat": [plain("chat_send", text="hi"), private_message()],  # also private chat (to a participant)
    "private_chat": [private_message()],
    "reactions": [plain("react", emoji="👍")],
    "self_unmute": [plain("set_muted", source="microphone", muted=False)],  # after a host's mute
    "whiteboard": [board_stroke(), plain("board_add_page")],  # whiteboard/board_handlers.py
}


def test_every_lock_has_its_websocket_case_or_no_request_yet(server_app_routes: dict[str, Route[Any]]) -> None:
    from signaling.rooms import LockSettings

    assert set(LOCKED_REQUESTS) == set(LockSettings.__struct_fields__)
    # every drawing request has its case under the whiteboard lock
    drawing = {t for t, r in server_app_routes.items() if r.action is Action.DRAW}
    assert drawing == {t for t, _ in LOCKED_REQUESTS["whiteboard"]}


@pytest.mark.parametrize("lock", sorted(LOCKED_REQUESTS))
async def test_each_lock_refuses_its_requests_over_the_websocket_but_not_to_a_host(server_factory: Any,
                                                                                  lock: str) -> None:
    server: Server = await server_factory()
    # private messages between students start locked in a school room (issue 15): unlock them here
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT", lock={"private_chat": False})
    host = await server.join(room_id, "host", role=Role.HOST)
    a, b = await server.join(room_id, "a"), await server.join(room_id, "b")
    pid = {c: str(c.events[0]["participant_id"]) for c in (host, a, b)}
    peer = {host: pid[a], a: pid[b], b: pid[a]}

    async def send(c: WsClient, type_: str, fields: Fields) -> dict[str, Any]:
        return await c.request(type_, timeout=15, **await fields(peer[c]))

    if lock == "self_unmute":  # unmuting oneself is checked only for someone a host muted
        for c in (a, b):
            assert (await host.request("mute", participant_id=pid[c], source="microphone"))["ok"]
        assert (await host.request("set_muted", source="microphone", muted=True))["ok"]
    for type_, fields in LOCKED_REQUESTS[lock]:  # unlocked, the request is fine
        r = await send(a, type_, fields)
        assert r["ok"], (lock, type_, r)

    assert (await host.request("set_lock", **{lock: True}))["ok"]
    for type_, fields in LOCKED_REQUESTS[lock]:
        r = await send(b, type_, fields)
        assert r["ok"] is False and r["error"]["code"] == "forbidden", (lock, type_, r)
        assert "locked" in r["error"]["message"], r
        r = await send(host, type_, fields)
        assert r["ok"], (lock, type_, r)  # locks never bind hosts
    if lock == "private_chat":  # to a host is still allowed: only `chat` locks that
        assert (await b.request("chat_send", text="to the teacher", to=pid[host]))["ok"]

    assert (await host.request("set_lock", **{lock: False}))["ok"]
    for type_, fields in LOCKED_REQUESTS[lock]:
        r = await send(b, type_, fields)
        assert r["ok"], (lock, type_, r)

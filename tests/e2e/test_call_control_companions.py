"""Hands, reactions, chat and attention through the real server."""

import asyncio
from typing import Any

from signaling.rooms import Role
from tests.conftest import Server, WsClient


async def pid(c: WsClient) -> str:
    return str((await c.event("welcome"))["participant_id"])


async def classroom(server: Server, **settings: Any) -> tuple[str, WsClient, WsClient, WsClient]:
    room_id = await server.create_room(**settings)
    host = await server.join(room_id, "host", role=Role.HOST, name="Учитель")
    a = await server.join(room_id, "a", name="Оля")
    b = await server.join(room_id, "b", name="Петя")
    return room_id, host, a, b


async def test_hands_form_a_queue_hosts_see_it_and_lower_them(server: Server) -> None:
    room_id, host, a, b = await classroom(server)
    pa, pb = await pid(a), await pid(b)
    ra = await a.request("raise_hand")
    assert ra["ok"] and ra["position"] == 1
    rb = await b.request("raise_hand")
    assert rb["position"] == 2
    ev = await host.event("hand_raised", participant_id=pb)
    assert ev["position"] == 2 and ev["raised_at"] >= ra["raised_at"]
    assert (await a.request("raise_hand"))["position"] == 1  # idempotent: keeps its place
    assert len([e for e in b.events if e["event"] == "hand_raised" and e["participant_id"] == pa]) == 1
    hands = (await host.request("list_hands"))["hands"]
    assert [(h["participant_id"], h["position"], h["name"]) for h in hands] == [(pa, 1, "Оля"), (pb, 2, "Петя")]
    assert all(h["waiting_s"] >= 0 for h in hands)
    # a late host gets the queue right away; the participant list shows the hand
    late = await server.join(room_id, "co", role=Role.COHOST)
    assert [h["participant_id"] for h in (await late.event("hand_queue"))["hands"]] == [pa, pb]
    plist = (await a.request("list_participants"))["participants"]
    assert {p["participant_id"]: p["hand_raised_at"] is not None for p in plist}[pa] is True

    assert (await b.request("lower_hand", participant_id=pa))["error"]["code"] == "forbidden"
    assert (await a.request("lower_hand"))["lowered"] == [pa]
    lowered = await b.event("hand_lowered", participant_id=pa)
    assert lowered["by"] is None
    assert (await host.request("lower_hand", participant_id=pb))["lowered"] == [pb]
    assert (await b.event("hand_lowered", participant_id=pb))["by"] == await pid(host)
    await a.request("raise_hand")
    await b.request("raise_hand")
    assert sorted((await host.request("lower_hand", all=True))["lowered"]) == sorted([pa, pb])
    assert (await host.request("list_hands"))["hands"] == []
    assert (await a.request("list_hands"))["error"]["code"] == "forbidden"


async def test_leaving_lowers_the_hand(server: Server) -> None:
    _, host, a, _b = await classroom(server)
    await a.request("raise_hand")
    await a.request("leave")
    await host.event("participant_left")
    assert (await host.request("list_hands"))["hands"] == []


async def test_reactions_broadcast_rate_limited_and_lockable(server: Server) -> None:
    _, host, a, b = await classroom(server)
    pa = await pid(a)
    assert (await a.request("react", emoji="👏"))["ok"]
    ev = await b.event("reaction", participant_id=pa)
    assert ev["emoji"] == "👏"
    codes = [(await a.request("react", emoji="👍")).get("error", {}).get("code") for _ in range(4)]
    assert "rate_limited" in codes
    assert (await a.request("react", emoji="💩"))["error"]["code"] in ("invalid_message", "rate_limited")
    await host.request("set_lock", reactions=True)
    assert (await b.request("react", emoji="👍"))["error"]["code"] == "forbidden"


async def test_public_and_private_chat_guests_and_private_lock(server: Server) -> None:
    room_id, host, a, b = await classroom(server, guest_policy="ALWAYS_ACCEPT", lock={"private_chat": False})
    guest = await server.join(room_id, "g", registered=False)
    pa, pb, ph = await pid(a), await pid(b), await pid(host)
    r = await a.request("chat_send", text="<b>Всем привет</b>")
    assert r["ok"] and r["message_id"]
    for c in (host, b, guest):
        m = (await c.event("chat_message"))["message"]
        assert m["text"] == "<b>Всем привет</b>" and m["from"] == {"participant_id": pa, "name": "Оля"}
        assert m["to"] is None and m["deleted"] is False and m["message_id"] == r["message_id"]
    assert (await guest.request("chat_send", text="hi"))["error"]["code"] == "forbidden"
    assert (await guest.request("chat_send", text="hi", to=ph))["error"]["code"] == "forbidden"

    r = await a.request("chat_send", text="тихо", to=pb)
    assert r["ok"]
    await b.wait_for(lambda: any(e["event"] == "chat_message" and e["message"]["to"] for e in b.events))
    pm = next(e for e in b.events if e["event"] == "chat_message" and e["message"]["to"])
    assert pm["message"]["to"] == {"participant_id": pb, "name": "Петя"}
    await asyncio.sleep(0.1)
    assert not any(e["event"] == "chat_message" and e["message"]["to"] for e in host.events + guest.events)

    await host.request("set_lock", private_chat=True)
    assert (await a.request("chat_send", text="x", to=pb))["error"]["code"] == "forbidden"
    assert (await a.request("chat_send", text="to the teacher", to=ph))["ok"]
    await host.request("set_lock", chat=True)
    assert (await a.request("chat_send", text="x"))["error"]["code"] == "forbidden"
    assert (await a.request("chat_send", text="x", to=ph))["error"]["code"] == "forbidden"


async def test_chat_limits(server: Server) -> None:
    _, _host, a, _b = await classroom(server)
    assert (await a.request("chat_send", text="я" * 2001))["error"]["code"] == "invalid_message"
    assert (await a.request("chat_send", text="   "))["error"]["code"] == "invalid_message"
    assert (await a.request("chat_send", text="x", to="PA_nobody"))["error"]["code"] == "not_found"
    assert (await a.request("chat_send"))["error"]["code"] == "invalid_message"
    assert (await a.request("chat_send", text="я" * 2000))["ok"]
    codes = [(await a.request("chat_send", text=f"m{i}")).get("error", {}).get("code") for i in range(8)]
    assert "rate_limited" in codes


async def test_deleted_message_is_a_tombstone_also_for_late_joiners(server: Server) -> None:
    room_id, host, a, b = await classroom(server, lock={"private_chat": False})
    keep = (await a.request("chat_send", text="keep me"))["message_id"]
    gone = (await a.request("chat_send", text="my phone is ..."))["message_id"]
    private = (await b.request("chat_send", text="for a only", to=await pid(a)))["message_id"]
    assert (await a.request("chat_delete", message_id=gone))["error"]["code"] == "forbidden"
    assert (await host.request("chat_delete", message_id=gone))["ok"]
    for c in (a, b):
        await c.event("chat_deleted", message_id=gone)
    assert (await host.request("chat_delete", message_id="MS_nope"))["error"]["code"] == "not_found"
    late = await server.join(room_id, "late")
    hist = (await late.event("chat_history"))["messages"]
    assert [(m["message_id"], m["text"], m["deleted"]) for m in hist] == [(keep, "keep me", False), (gone, "", True)]
    # a reconnect of a gets its own private message back
    a2 = await server.connect(server.token(room_id, "a", name="Оля"))
    hist = (await a2.event("chat_history"))["messages"]
    assert [m["message_id"] for m in hist] == [keep, gone, private]


async def test_attention_acks_and_status(server: Server) -> None:
    _, host, a, b = await classroom(server)
    pa, pb, ph = await pid(a), await pid(b), await pid(host)
    r = await host.request("attention", all=True, text="Вы с нами?")
    assert r["ok"] and r["targets"] == 2
    aid = r["attention_id"]
    ev = await a.event("attention")
    assert ev == {"event": "attention", "attention_id": aid, "text": "Вы с нами?",
                  "from": {"participant_id": ph, "name": "Учитель"}, "sent_at": ev["sent_at"]}
    await b.event("attention")
    assert not [e for e in host.events if e["event"] == "attention"]
    ack = await a.request("attention_ack")
    assert ack["attention_id"] == aid and ack["after_ms"] >= 0
    acked = await host.event("attention_acked", participant_id=pa)
    assert acked["attention_id"] == aid and acked["after_ms"] == ack["after_ms"]
    st = await host.request("attention_status", attention_id=aid)
    assert [x["participant_id"] for x in st["acked"]] == [pa]
    assert [x["participant_id"] for x in st["pending"]] == [pb]
    assert (await a.request("attention_status", attention_id=aid))["error"]["code"] == "forbidden"
    assert (await a.request("attention_ack", attention_id="AT_nope"))["error"]["code"] == "not_found"
    one = await host.request("attention", participant_id=pb)
    assert one["targets"] == 1 and (await b.request("attention_ack", attention_id=one["attention_id"]))["ok"]
    assert (await host.request("attention"))["error"]["code"] == "invalid_message"

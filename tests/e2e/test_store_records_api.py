"""REST: the lesson's record of raised hands and attention checks (GET /v1/rooms/{id}/hands and
/attention), built through a real server by real clients; the bodies match their documented models."""

from __future__ import annotations

import msgspec

from signaling.rest.records_api import AttentionPage, HandsOut
from signaling.rooms import Role
from tests.conftest import Server


async def test_hands_and_attention_answers_are_listed_with_who_did_what_and_when(server: Server) -> None:
    room_id = await server.create_room(name="Химия")
    host = await server.join(room_id, "teacher", role=Role.HOST, name="Мария Ивановна")
    anna = await server.join(room_id, "anna", name="Анна")
    boris = await server.join(room_id, "boris", name="Борис")
    ids = {c: (await c.event("welcome"))["participant_id"] for c in (host, anna, boris)}
    assert (await anna.request("raise_hand"))["ok"]
    assert (await boris.request("raise_hand"))["ok"]
    assert (await host.request("lower_hand", participant_id=ids[anna]))["ok"]
    assert (await boris.request("lower_hand"))["ok"]
    assert (await boris.request("raise_hand"))["ok"]
    asked = await host.request("attention", all=True, text="Все видят доску?")
    assert (await boris.request("attention_ack"))["ok"]

    status, body = await server.rest("GET", f"/v1/rooms/{room_id}/hands")
    assert status == 200, body
    msgspec.convert(body, HandsOut)
    teacher = {"participant_id": ids[host], "identity": "teacher", "name": "Мария Ивановна"}
    assert (body["room_id"], body["name"], body["count"]) == (room_id, "Химия", 3)
    assert [(h["identity"], h["name"], h["reason"], h["answered"], h["raised"], h["lowered_by"])
            for h in body["hands"]] == [
        ("anna", "Анна", "answered", True, False, teacher),
        ("boris", "Борис", "lowered", False, False,
         {"participant_id": ids[boris], "identity": "boris", "name": "Борис"}),
        ("boris", "Борис", None, False, True, None)]
    first = body["hands"][0]
    assert first["raised_at"] <= first["lowered_at"]

    status, body = await server.rest("GET", f"/v1/rooms/{room_id}/attention")
    assert status == 200, body
    msgspec.convert(body, AttentionPage)
    (check,) = body["requests"]
    assert check["attention_id"] == asked["attention_id"] and check["text"] == "Все видят доску?"
    assert check["from"] == teacher and check["targets"] == 2
    assert [(a["identity"], a["name"]) for a in check["acked"]] == [("boris", "Борис")]
    assert check["acked"][0]["acked_at"] >= check["sent_at"]
    assert check["not_acked"] == [{"participant_id": ids[anna], "identity": "anna", "name": "Анна"}]


async def test_the_record_needs_an_admin_token_and_an_existing_room(server: Server) -> None:
    room_id = await server.create_room()
    for kind in ("hands", "attention"):
        status, body = await server.rest("GET", f"/v1/rooms/{room_id}/{kind}", auth=False)
        assert status == 401, body
        status, body = await server.rest("GET", f"/v1/rooms/RM_nope/{kind}")
        assert status == 404 and body["error"]["code"] == "room_not_found", body
        status, body = await server.rest("GET", f"/v1/rooms/{room_id}/{kind}")
        assert status == 200 and body["count"] == 0, body

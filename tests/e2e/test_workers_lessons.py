"""`urok serve --workers 2` with a real Redis: the calls that change a running room but name a lesson
or a BigBlueButton meeting, not the room, sent to the worker that does NOT serve the room (its
private port), reach the room all the same.

The lesson API's roster and cancel, and BigBlueButton's end, isMeetingRunning and getMeetingInfo,
are forwarded to the worker serving the room (lessons_api.py, bbb_api.py; the answer says which:
X-Urok-Served-By).  A student taken off the roster during the lesson and entering then waits
(`not_on_roster`), put back on it is admitted at once; a roster changed while nobody is in the room
is written to its row under its lease and holds when the room opens; a cancel and `end` end the
room for everyone in it.  Deleting a recording still being made is refused by the worker making it
(recordings_api.py), not done under its feet by the other."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import WsClient
from tests.e2e.test_bbb_api import SECRET, signed
from tests.e2e.test_lessons_api import lesson_body, link_token, start_in
from tests.e2e.test_workers import ADMIN, Cluster, connect
from tests.redis_server import SKIP_REASON, RedisServer

SERVED_BY = "X-Urok-Served-By"


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer | None,
                  http: aiohttp.ClientSession) -> AsyncIterator[Cluster]:
    """test_workers' cluster with the BigBlueButton API on."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    c = Cluster(tmp_path / "data", redis_server.url, UROK_BBB_SECRET=SECRET)
    try:
        await c.start(http)
        yield c
    finally:
        await c.stop()


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None, *,
               headers: dict[str, str] | None = None) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, url, json=body, headers=headers if headers is not None else ADMIN) as r:
        return r.status, await r.json(), r.headers


async def enter(http: aiohttp.ClientSession, base: str, lesson: dict[str, Any], identity: str) -> dict[str, Any]:
    status, body, _ = await call(http, "POST", f"{base}/v1/lessons/{lesson['lesson_id']}/enter",
                                 headers={"Authorization": "Bearer " + link_token(lesson, identity)})
    assert status == 200, body
    return dict(body)


async def test_the_roster_and_the_cancel_sent_to_the_other_worker_reach_the_running_lesson(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    clients: list[WsClient] = []
    try:
        start = start_in(0.1)  # the entry window (15 min before the start) is open
        teachers = [{"id": "t-1", "family_name": "Иванова", "given_name": "Мария"}]
        everyone = [{"id": "s-1", "family_name": "Петров"}, {"id": "s-3", "family_name": "Новиков"},
                    {"id": "s-4", "family_name": "Сидорова"}]
        status, lesson, _ = await call(http, "POST", cluster.base + "/v1/lessons",
                                       lesson_body(start, teachers=teachers, students=everyone))
        assert status == 201, lesson
        lid = lesson["lesson_id"]
        teacher_entry = await enter(http, cluster.base, lesson, "t-1")
        # the occurrence's room exists, nobody is in it: Сидорова taken off the roster, written to
        # its row under its lease by the worker asked (nothing to forward)
        status, changed, headers = await call(http, "PUT", f"{cluster.private(0)}/v1/lessons/{lid}/roster",
                                              {"teachers": teachers, "students": everyone[:2]})
        assert status == 200 and [p["id"] for p in changed["students"]] == ["s-1", "s-3"], changed
        assert SERVED_BY not in headers
        teacher = await connect(http, cluster.base, teacher_entry["token"])
        clients.append(teacher)
        await teacher.event("welcome", timeout=10)
        owner = (await cluster.rooms_by_worker(http)).index(1)
        other = cluster.private(1 - owner)
        petrov = await connect(http, cluster.base, (await enter(http, cluster.base, lesson, "s-1"))["token"])
        clients.append(petrov)
        assert (await petrov.event("welcome", timeout=10))["state"] == "joined"

        sidorova = await connect(http, cluster.base, (await enter(http, other, lesson, "s-4"))["token"])
        clients.append(sidorova)
        waiting = await sidorova.event("welcome", timeout=10)
        assert waiting["state"] == "waiting" and waiting["you"]["waiting_reason"] == "not_on_roster", waiting

        # Новиков taken off the roster through the worker that does not serve the lesson
        roster = f"{other}/v1/lessons/{lid}/roster"
        status, changed, headers = await call(http, "PUT", roster, {"teachers": teachers, "students": everyone[:1]})
        assert status == 200 and [p["id"] for p in changed["students"]] == ["s-1"], changed
        assert headers[SERVED_BY] == cluster.private(owner)  # answered by the room's worker
        novikov_entry = await enter(http, other, lesson, "s-3")
        assert novikov_entry["room_id"] == teacher_entry["room_id"] and novikov_entry["role"] == "participant"
        novikov = await connect(http, other, novikov_entry["token"])
        clients.append(novikov)
        waiting = await novikov.event("welcome", timeout=10)
        assert waiting["state"] == "waiting" and waiting["you"]["waiting_reason"] == "not_on_roster", waiting

        # ... and put back on it: admitted at once
        status, changed, headers = await call(http, "PUT", roster, {"teachers": teachers, "students": everyone[:2]})
        assert status == 200 and [p["id"] for p in changed["students"]] == ["s-1", "s-3"], changed
        assert headers[SERVED_BY] == cluster.private(owner)
        await novikov.event("admitted", timeout=10)
        await teacher.event("participant_joined", timeout=10, participant_id=waiting["participant_id"])
        status, room, _ = await call(http, "GET", f"{other}/v1/rooms/{teacher_entry['room_id']}")
        assert status == 200 and {p["identity"] for p in room["participants"]} == {"t-1", "s-1", "s-3"}, room

        # the lesson cancelled through the other worker: the running room ends for everyone
        status, cancelled, headers = await call(http, "DELETE", f"{other}/v1/lessons/{lid}")
        assert status == 200 and cancelled["state"] == "cancelled", cancelled
        assert headers[SERVED_BY] == cluster.private(owner)
        for c in (teacher, petrov, novikov, sidorova):
            assert (await c.event("room_ended", timeout=10))["reason"] == "the lesson was cancelled"
    finally:
        for c in clients:
            await c.close()


async def bbb(http: aiohttp.ClientSession, base: str, call_name: str, query: str) -> tuple[ET.Element, str | None]:
    """A signed BigBlueButton call to ``base``: its XML, and which worker answered it if forwarded."""
    async with http.get(base + signed(call_name, query), allow_redirects=False) as r:
        assert r.status == 200, await r.text()
        return ET.fromstring(await r.text()), r.headers.get(SERVED_BY)


async def test_bigbluebutton_end_and_a_recordings_delete_sent_to_the_other_worker_reach_the_room(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    clients: list[WsClient] = []
    try:
        created, _ = await bbb(http, cluster.base, "create", "meetingID=w-1&name=Geo&moderatorPW=mp&attendeePW=ap")
        assert created.findtext("returncode") == "SUCCESS", ET.tostring(created)
        query = f"meetingID=w-1&fullName={quote('Мария')}&password=mp&redirect=false"
        joined, _ = await bbb(http, cluster.base, "join", query)
        url = joined.findtext("url") or ""
        teacher = await connect(http, cluster.base, url.split("#token=", 1)[1])
        clients.append(teacher)
        await teacher.event("welcome", timeout=10)
        owner = (await cluster.rooms_by_worker(http)).index(1)
        other = cluster.private(1 - owner)
        running, served_by = await bbb(http, other, "isMeetingRunning", "meetingID=w-1")
        assert running.findtext("running") == "true" and served_by == cluster.private(owner)
        info, _ = await bbb(http, other, "getMeetingInfo", "meetingID=w-1")
        assert info.findtext("participantCount") == "1" and info.findtext("moderatorCount") == "1"

        # a recording being made there: deleting it through the other worker is refused by the owner
        room_id = url.split("/join/", 1)[1].split("#", 1)[0]
        status, rec, _ = await call(http, "POST", f"{other}/v1/rooms/{room_id}/recordings/start")
        assert status == 201 and rec["state"] == "recording", rec
        status, busy, headers = await call(http, "DELETE", f"{other}/v1/recordings/{rec['recording_id']}")
        assert status == 409 and busy["error"]["code"] == "recording_busy", busy
        assert headers[SERVED_BY] == cluster.private(owner)

        ended, served_by = await bbb(http, other, "end", "meetingID=w-1&password=mp")
        assert ended.findtext("returncode") == "SUCCESS" and served_by == cluster.private(owner), ET.tostring(ended)
        assert (await teacher.event("room_ended", timeout=10))["reason"] == "ended through the BigBlueButton API"
        running, _ = await bbb(http, other, "isMeetingRunning", "meetingID=w-1")
        assert running.findtext("running") == "false"
    finally:
        for c in clients:
            await c.close()

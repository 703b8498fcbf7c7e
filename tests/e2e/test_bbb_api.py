"""The BigBlueButton API against two real BigBlueButton client libraries from PyPI (code nobody here
wrote: bigbluebutton-api-python builds sha1-checksummed URLs and parses the XML with jxmlease;
bbb-client signs its own URLs, joins by role and parses with untangle), on the real server over
real sockets.  Users join over urok's WebSocket with the token the join redirect gives them.

The libraries block (urllib, requests): they run in a thread while the server runs in this loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from bbb_client.domain.meeting_management.model import Bbb, ChecksumError
from bigbluebutton_api_python import BigBlueButton  # type: ignore[import-untyped]
from bigbluebutton_api_python.exception import BBBException  # type: ignore[import-untyped]
from yarl import URL

from signaling.rooms import Role
from tests.conftest import Server, start_server, test_settings

SECRET = "8cd8ef52e8e101574e400365b55e11a6"
API = "/bigbluebutton/api"


async def in_thread(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


def library(server: Server, secret: str = SECRET) -> Any:
    return BigBlueButton(server.base + API + "/", secret)


def signed(call: str, query: str, secret: str = SECRET, algorithm: str = "sha1") -> str:
    digest = hashlib.new(algorithm, (call + query + secret).encode()).hexdigest()
    return f"{API}/{call}?{query}{'&' if query else ''}checksum={digest}"


async def get_xml(server: Server, path: str, **kw: Any) -> ET.Element:
    async with server.http.get(URL(server.base + path, encoded=True), **kw) as r:  # sent as signed
        assert r.status == 200 and r.content_type == "text/xml", (r.status, r.content_type)
        return ET.fromstring(await r.text())


async def failed_key(server: Server, path: str) -> str:
    root = await get_xml(server, path)
    assert root.findtext("returncode") == "FAILED", ET.tostring(root)
    assert root.findtext("message")
    return root.findtext("messageKey") or ""


async def follow_join(server: Server, url: str) -> tuple[str, str]:
    """Opens a join URL like a browser's first request; returns (room_id, token) from the redirect."""
    async with server.http.get(URL(url, encoded=True), allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        location = r.headers["Location"]
    parts = urlsplit(location)
    assert location.startswith(server.base + "/join/") and not parts.query, location  # token in the fragment only
    room_id = parts.path.rsplit("/", 1)[1]
    assert parts.fragment.startswith("token=")
    return room_id, parts.fragment[len("token="):]


async def create(server: Server, meeting_id: str, **params: Any) -> Any:
    meta = params.pop("meta", {})
    return await in_thread(library(server).create_meeting, meeting_id, dict(params), dict(meta))


@pytest.fixture
async def bbb(server_factory: Callable[..., Any]) -> Server:
    srv: Server = await server_factory(bbb_secret=SECRET)
    return srv


async def test_a_meeting_created_through_the_library_is_a_urok_room_and_create_again_warns(bbb: Server) -> None:
    r = await create(bbb, "course-7b-algebra", name="Алгебра, 7Б", attendeePW="ap", moderatorPW="mp",
                     maxParticipants=30, duration=45, guestPolicy="ASK_MODERATOR",
                     meta={"bbb-origin": "Moodle", "endCallbackUrl": "https://lms.example/end?id=7"})
    assert r.get_return_code() == "SUCCESS" and r.get_meetingid() == "course-7b-algebra"
    assert (r.get_attendee_pw(), r.get_moderator_pw()) == ("ap", "mp")
    internal = r.get_field("internalMeetingID")
    assert internal.startswith(hashlib.sha1(b"course-7b-algebra").hexdigest() + "-")
    assert internal.endswith("-" + r.get_field("createTime"))
    _, rooms = await bbb.rest("GET", "/v1/rooms")
    room = next(x for x in rooms["rooms"] if x["settings"]["external_id"] == "bbb:course-7b-algebra")
    s = room["settings"]
    assert (s["name"], s["max_participants"], s["duration_minutes"], s["guest_policy"]) == (
        "Алгебра, 7Б", 30, 45, "ALWAYS_ACCEPT_AUTH")  # ASK_MODERATOR: guests wait, signed-in users enter

    again = await create(bbb, "course-7b-algebra", name="Алгебра, 7Б", attendeePW="ap", moderatorPW="mp")
    assert again.get_return_code() == "SUCCESS" and again.get_message_key() == "duplicateWarning"
    assert again.get_field("internalMeetingID") == internal
    with pytest.raises(BBBException) as e:  # the same id with other passwords is another meeting
        await create(bbb, "course-7b-algebra", attendeePW="other", moderatorPW="mp")
    assert e.value.key == "idNotUnique"
    _, rooms = await bbb.rest("GET", "/v1/rooms")
    assert sum(x["settings"]["external_id"] == "bbb:course-7b-algebra" for x in rooms["rooms"]) == 1


async def test_join_urls_from_the_libraries_redirect_into_the_client_as_host_participant_or_guest(
        bbb: Server) -> None:
    await create(bbb, "physics-9a", attendeePW="ap", moderatorPW="mp")
    lib = library(bbb)
    teacher_url = lib.get_join_meeting_url("Иванова Мария", "physics-9a", "mp", {"userID": "t-1"})
    room_id, token = await follow_join(bbb, teacher_url)
    grant = bbb.tokens.verify_access(token, room_id=room_id)
    assert (grant.identity, grant.name, grant.role, grant.registered) == ("t-1", "Иванова Мария", Role.HOST, True)

    _, token = await follow_join(bbb, lib.get_join_meeting_url("Пётр", "physics-9a", "ap", {"userID": "s-1"}))
    grant = bbb.tokens.verify_access(token, room_id=room_id)
    assert (grant.identity, grant.role, grant.registered) == ("s-1", Role.PARTICIPANT, True)

    _, token = await follow_join(bbb, lib.get_join_meeting_url("Гость", "physics-9a", "ap", {"guest": "true"}))
    grant = bbb.tokens.verify_access(token, room_id=room_id)
    assert (grant.role, grant.registered) == (Role.PARTICIPANT, False)
    assert grant.identity.startswith("w_")

    other = Bbb(bbb.base + API, SECRET)  # bbb-client: role=MODERATOR|VIEWER, no password (BigBlueButton 2.4+)
    _, token = await follow_join(bbb, other.generate_join_url("physics-9a", "Сидоров", moderator=True))
    assert bbb.tokens.verify_access(token, room_id=room_id).role is Role.HOST
    _, token = await follow_join(bbb, other.generate_join_url("physics-9a", "Орлова"))
    assert bbb.tokens.verify_access(token, room_id=room_id).role is Role.PARTICIPANT

    # redirect=false: the URL in BigBlueButton's join XML instead of a redirect
    root = await get_xml(bbb, lib.get_join_meeting_url("Пётр", "physics-9a", "ap", {"redirect": "false"})
                         .removeprefix(bbb.base))
    assert root.findtext("returncode") == "SUCCESS" and root.findtext("messageKey") == "successfullyJoined"
    assert root.findtext("url", "").startswith(f"{bbb.base}/join/{room_id}#token=")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_meeting_info_lists_who_joined_over_websocket_and_end_ends_the_room(
        server_factory: Callable[..., Any], store: str) -> None:
    bbb: Server = await server_factory(bbb_secret=SECRET, store=store)
    lib = library(bbb)
    await create(bbb, "history-5c", name="История, 5В", attendeePW="ap", moderatorPW="mp",
                 meta={"bbb-origin": "Greenlight"})
    assert not (await in_thread(lib.is_meeting_running, "history-5c")).is_meeting_running()

    room_id, t_token = await follow_join(bbb, lib.get_join_meeting_url("Иванова Мария", "history-5c", "mp",
                                                                       {"userID": "t-1"}))
    _, s_token = await follow_join(bbb, lib.get_join_meeting_url("Петров Пётр", "history-5c", "ap",
                                                                 {"userID": "s-1"}))
    teacher = await bbb.connect(t_token)
    await teacher.event("welcome")
    student = await bbb.connect(s_token)
    await student.event("welcome")

    assert (await in_thread(lib.is_meeting_running, "history-5c")).is_meeting_running()
    info = await in_thread(lib.get_meeting_info, "history-5c")
    meeting = info.get_meetinginfo()
    assert (meeting.get_meetingname(), meeting.get_participantcount(), meeting.get_moderator_count()) == (
        "История, 5В", 2, "1")
    assert info.get_field("running") == "true" and float(meeting.get_start_time()) > 0
    people = {a.get_fullname(): (a.get_userid(), a.get_role(), a.is_presenter()) for a in info.get_attendees()}
    assert people == {"Иванова Мария": ("t-1", "MODERATOR", False), "Петров Пётр": ("s-1", "VIEWER", False)}
    assert info.get_field("metadata")["bbb-origin"] == "Greenlight"

    other = Bbb(bbb.base + API, SECRET)  # a second parser (untangle) over the same XML
    listed = await in_thread(other.get_meeting_info, "history-5c")
    assert sorted(listed.participants) == ["Иванова Мария", "Петров Пётр"] and listed.moderatorPW == "mp"

    await create(bbb, "history-5d", attendeePW="ap", moderatorPW="mp")  # the library needs two to list
    meetings = await in_thread(lambda: library(bbb).get_meetings().get_meetings())
    assert sorted(m.get_meetingid() for m in meetings) == ["history-5c", "history-5d"]
    assert sorted(m.meetingID for m in await in_thread(other.get_meetings)) == ["history-5c", "history-5d"]

    ended = await in_thread(lib.end_meeting, "history-5c", "mp")
    assert ended.get_message_key() == "sentEndMeetingRequest"
    await teacher.wait_for(lambda: teacher.closed.is_set() or any(e["event"] == "room_ended" for e in teacher.events))
    assert not (await in_thread(lib.is_meeting_running, "history-5c")).is_meeting_running()
    after = await in_thread(lib.get_meeting_info, "history-5c")
    assert after.get_field("hasBeenForciblyEnded") == "true" and after.get_field("participantCount") == "0"
    status, room = await bbb.rest("GET", f"/v1/rooms/{quote(room_id)}")
    assert status == 200 and room["ended_at"] is not None
    assert [m.meetingID for m in await in_thread(other.get_meetings)] == ["history-5d"]
    assert await failed_key(bbb, signed("join", "fullName=X&meetingID=history-5c&password=ap")) == \
        "meetingForciblyEnded"

    fresh = await create(bbb, "history-5c", attendeePW="ap", moderatorPW="mp")  # the next lesson: a new room
    assert "messageKey" not in fresh.rawXml and fresh.get_field("internalMeetingID") != info.get_field(
        "internalMeetingID")
    new_room, _ = await follow_join(bbb, lib.get_join_meeting_url("Пётр", "history-5c", "ap"))
    assert new_room != room_id


async def test_recordings_are_empty_until_urok_has_them_and_deleting_one_is_not_found(bbb: Server) -> None:
    lib = library(bbb)
    assert (await in_thread(lib.get_recordings, "course-7b")).get_recordings() == []
    root = await get_xml(bbb, signed("getRecordings", "meetingID=course-7b"))
    assert root.findtext("returncode") == "SUCCESS" and root.findtext("messageKey") == "noRecordings"
    assert root.find("recordings") is not None
    with pytest.raises(BBBException) as e:
        await in_thread(lib.delete_recordings, "ffbfc4cc24428694e8b53a4e144f414052431693-1530718721124")
    assert e.value.key == "notFound"
    assert await failed_key(bbb, signed("deleteRecordings", "")) == "missingParamRecordID"


async def test_bad_checksums_are_refused_with_bigbluebutton_error_xml(bbb: Server) -> None:
    with pytest.raises(BBBException) as e:
        await in_thread(library(bbb, "not-the-shared-secret").create_meeting, "m-1", {}, {})
    assert e.value.key == "checksumError"
    with pytest.raises(ChecksumError):
        await in_thread(Bbb(bbb.base + API, "not-the-shared-secret").get_meeting_info, "m-1")

    good = signed("create", "meetingID=m-1&name=A")
    async with bbb.http.get(bbb.base + good.replace("name=A", "name=B")) as r:  # a parameter changed
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/xml")
        body = await r.text()
    root = ET.fromstring(body)
    assert [(c.tag, c.text) for c in root] == [("returncode", "FAILED"), ("messageKey", "checksumError"),
                                               ("message", "Checksums do not match")]
    assert await failed_key(bbb, f"{API}/create?meetingID=m-1") == "checksumError"  # no checksum at all
    assert await failed_key(bbb, good.replace("checksum=", "checksum=0")) == "checksumError"  # 41 digits
    assert await failed_key(bbb, signed("join", "meetingID=m-1&name=A").replace("/join?", "/create?")) == \
        "checksumError"  # signed for another call
    _, rooms = await bbb.rest("GET", "/v1/rooms")
    assert rooms["rooms"] == []


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
async def test_every_checksum_algorithm_is_accepted_told_by_its_length(bbb: Server, algorithm: str) -> None:
    path = signed("create", "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444",
                  algorithm=algorithm)
    root = await get_xml(bbb, path)
    assert root.findtext("returncode") == "SUCCESS" and root.findtext("meetingID") == "abc123"
    digest = path.rsplit("checksum=", 1)[1]
    root = await get_xml(bbb, path.replace(digest, digest.upper()))  # hex case does not matter
    assert root.findtext("messageKey") == "duplicateWarning"


async def test_an_algorithm_left_out_of_the_setting_is_refused(server_factory: Callable[..., Any]) -> None:
    bbb: Server = await server_factory(bbb_secret=SECRET, bbb_checksum_algorithms=("sha512",))
    assert await failed_key(bbb, signed("create", "meetingID=abc123", algorithm="sha1")) == "checksumError"
    assert await failed_key(bbb, signed("create", "meetingID=abc123", algorithm="sha256")) == "checksumError"
    root = await get_xml(bbb, signed("create", "meetingID=abc123", algorithm="sha512"))
    assert root.findtext("returncode") == "SUCCESS"


async def test_missing_and_wrong_parameters_get_bigbluebutton_message_keys(bbb: Server) -> None:
    assert await failed_key(bbb, signed("create", "name=A")) == "missingParamMeetingID"
    assert await failed_key(bbb, signed("create", "meetingID=a%2Cb")) == "invalidMeetingIdentifier"
    assert await failed_key(bbb, signed("create", "meetingID=ab&guestPolicy=SOMETIMES")) == "validationError"
    assert await failed_key(bbb, signed("join", "meetingID=nope&fullName=A&password=ap")) == \
        "invalidMeetingIdentifier"
    assert await failed_key(bbb, signed("getMeetingInfo", "meetingID=nope")) == "notFound"
    assert await failed_key(bbb, signed("end", "meetingID=nope&password=mp")) == "notFound"
    assert await failed_key(bbb, signed("isMeetingRunning", "")) == "missingParamMeetingID"
    await get_xml(bbb, signed("create", "meetingID=ab&attendeePW=ap&moderatorPW=mp&guestPolicy=ALWAYS_DENY"))
    assert await failed_key(bbb, signed("join", "meetingID=ab&password=ap")) == "missingParamFullName"
    assert await failed_key(bbb, signed("join", "meetingID=ab&fullName=A&password=zz")) == "invalidPassword"
    assert await failed_key(bbb, signed("join", "meetingID=ab&fullName=A&password=ap&guest=true")) == \
        "guestDeniedAccess"
    assert await failed_key(bbb, signed("join", "meetingID=ab&fullName=A&password=ap&createTime=1")) == \
        "mismatchCreateTimeParam"
    assert await failed_key(bbb, signed("end", "meetingID=ab&password=ap")) == "invalidPassword"
    assert await failed_key(bbb, signed("sendChatMessage", "meetingID=ab")) == "unsupportedRequest"
    running = await get_xml(bbb, signed("isMeetingRunning", "meetingID=nope"))
    assert running.findtext("returncode") == "SUCCESS" and running.findtext("running") == "false"
    empty = await get_xml(bbb, signed("getMeetings", ""))  # created, nobody in: still listed
    assert [m.findtext("meetingID") for m in empty.iterfind("meetings/meeting")] == ["ab"]


async def test_post_forms_are_signed_over_the_query_string_or_as_bigbluebutton_2_sorted_the_body(
        bbb: Server) -> None:
    form = {"meetingID": "post-1", "name": "Урок по форме", "attendeePW": "ap", "moderatorPW": "mp"}
    empty_query = hashlib.sha1(("create" + SECRET).encode()).hexdigest()  # BigBlueButton 3.0: the URL's query
    async with bbb.http.post(f"{bbb.base}{API}/create", data={**form, "checksum": empty_query}) as r:
        root = ET.fromstring(await r.text())
    assert root.findtext("returncode") == "SUCCESS" and root.findtext("meetingID") == "post-1"
    # sorted by name, encoded as Java's URLEncoder does (BigBlueButton 2.x's server rebuilt this string)
    sorted_body = ("attendeePW=ap&meetingID=post-2&moderatorPW=mp&name="
                   "%D0%A3%D1%80%D0%BE%D0%BA+%D0%BF%D0%BE+%D1%84%D0%BE%D1%80%D0%BC%D0%B5")
    old_style = hashlib.sha256(("create" + sorted_body + SECRET).encode()).hexdigest()
    async with bbb.http.post(f"{bbb.base}{API}/create",
                             data={**form, "meetingID": "post-2", "checksum": old_style}) as r:
        root = ET.fromstring(await r.text())
    assert root.findtext("returncode") == "SUCCESS" and root.findtext("meetingName") is None
    info = await get_xml(bbb, signed("getMeetingInfo", "meetingID=post-2"))
    assert info.findtext("meetingName") == "Урок по форме"
    async with bbb.http.post(f"{bbb.base}{API}/end", data={"meetingID": "post-1", "checksum": "0" * 40}) as r:
        assert ET.fromstring(await r.text()).findtext("messageKey") == "checksumError"


async def test_the_api_answers_its_version_without_a_checksum(bbb: Server) -> None:
    for path in (API, API + "/"):
        root = await get_xml(bbb, path)
        assert root.findtext("returncode") == "SUCCESS" and root.findtext("version") == "2.0"


async def test_without_bbb_secret_there_is_no_bigbluebutton_api(server: Server) -> None:
    async with server.http.get(server.base + signed("create", "meetingID=ab")) as r:
        assert r.status == 404
    async with aiohttp.ClientSession() as http, http.get(server.base + API) as r:
        assert r.status == 404


async def test_meetings_survive_a_restart_of_the_server_on_sqlite(tmp_path: Path) -> None:
    """The meetings' table is in the durable store: after a restart the same meetingID is the same
    meeting (create warns, join finds its room), as an LMS that created it yesterday expects."""
    settings = test_settings(bbb_secret=SECRET, store="sqlite", data_dir=str(tmp_path / "data"))
    runner, base = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as http:
            srv = Server(app=runner.app, base=base, http=http, admin={})
            first = await create(srv, "year-course", attendeePW="ap", moderatorPW="mp", meta={"term": "autumn"})
    finally:
        await runner.cleanup()
    runner, base = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as http:
            srv = Server(app=runner.app, base=base, http=http, admin={})
            again = await create(srv, "year-course", attendeePW="ap", moderatorPW="mp")
            assert again.get_message_key() == "duplicateWarning"
            assert again.get_field("internalMeetingID") == first.get_field("internalMeetingID")
            info = await get_xml(srv, signed("getMeetingInfo", "meetingID=year-course"))
            assert info.findtext("metadata/term") == "autumn" and info.findtext("attendeePW") == "ap"
            room_id, token = await follow_join(srv, library(srv).get_join_meeting_url("Пётр", "year-course", "ap"))
            assert srv.tokens.verify_access(token, room_id=room_id).role is Role.PARTICIPANT
    finally:
        await runner.cleanup()


async def test_meeting_info_stays_well_formed_xml_whatever_the_names_and_metadata_hold(bbb: Server) -> None:
    # an LMS passes a course title through meta_*, a school's system names a pupil: markup characters
    # are escaped, and characters XML 1.0 cannot carry at all (control characters) are left out rather
    # than making getMeetingInfo and getMeetings unreadable for every meeting on the server
    create_q = "meetingID=odd-1&attendeePW=ap&moderatorPW=mp&meta_course=%3Cx%3E%26%01%0B%EF%BF%BEend"
    assert (await get_xml(bbb, signed("create", create_q))).findtext("returncode") == "SUCCESS"
    room_id, _ = await follow_join(bbb, bbb.base + signed("join", "fullName=T&meetingID=odd-1&password=mp"))
    pupil = await bbb.join(room_id, "s-odd", name="<x>&\x02Пётр")
    assert pupil is not None
    info = await get_xml(bbb, signed("getMeetingInfo", "meetingID=odd-1"))
    assert info.findtext("metadata/course") == "<x>&end"
    assert info.findtext("attendees/attendee/fullName") == "<x>&Пётр"
    listed = await get_xml(bbb, signed("getMeetings", ""))
    assert listed.findtext("meetings/meeting/meetingID") == "odd-1"

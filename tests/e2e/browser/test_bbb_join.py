"""A platform built for BigBlueButton, end to end in Chromium: the meeting is created through a
BigBlueButton client library from PyPI (bigbluebutton-api-python), a teacher and a student open the
library's join URLs, land in urok's client and enter, getMeetingInfo (through the library) lists
them, and end (through the library) ends the lesson on both screens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bigbluebutton_api_python import BigBlueButton  # type: ignore[import-untyped]

from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

SECRET = "639259d4-9dd8-4b25-bf01-95f9567eaf4b"


async def test_two_users_join_through_the_librarys_urls_are_listed_and_end_closes_the_lesson(
        server_factory: Callable[..., Any], browsers: Browsers, artifacts: Path) -> None:
    server = await server_factory(bbb_secret=SECRET)
    bbb = BigBlueButton(server.base + "/bigbluebutton/api/", SECRET)
    created = await asyncio.to_thread(bbb.create_meeting, "moodle-course-12-lesson-3",
                                      {"name": "Физика, 9А", "attendeePW": "ap", "moderatorPW": "mp"},
                                      {"bbb-origin": "Moodle"})
    assert created.get_return_code() == "SUCCESS"
    teacher_url = bbb.get_join_meeting_url("Иванова Мария", "moodle-course-12-lesson-3", "mp", {"userID": "t-7"})
    student_url = bbb.get_join_meeting_url("Петров Пётр", "moodle-course-12-lesson-3", "ap", {"userID": "s-12"})

    teacher = await browsers.page()
    await join(teacher, teacher_url, camera=False)  # the join URL redirects into /join/{room}#token=...
    assert "/join/RM_" in teacher.url and "token=" not in teacher.url  # the client took the token out of the URL
    assert await teacher.evaluate("window.urok.session.you.role") == "host"
    student = await browsers.page()
    await join(student, student_url, camera=False)
    assert await student.evaluate("window.urok.session.you.role") == "participant"
    await teacher.screenshot(path=str(artifacts / "bbb-join-teacher-1280x800.png"))

    info = await asyncio.to_thread(bbb.get_meeting_info, "moodle-course-12-lesson-3")
    listed = {a.get_fullname(): (a.get_userid(), a.get_role()) for a in info.get_attendees()}
    assert listed == {"Иванова Мария": ("t-7", "MODERATOR"), "Петров Пётр": ("s-12", "VIEWER")}
    assert info.get_field("running") == "true" and info.get_field("participantCount") == "2"

    ended = await asyncio.to_thread(bbb.end_meeting, "moodle-course-12-lesson-3", "mp")
    assert ended.get_message_key() == "sentEndMeetingRequest"
    for page in (teacher, student):
        await page.wait_for_function("() => window.urok.screen === 'ended' && window.urok.endReason === 'ended'")
    running = await asyncio.to_thread(bbb.is_meeting_running, "moodle-course-12-lesson-3")
    assert not running.is_meeting_running()

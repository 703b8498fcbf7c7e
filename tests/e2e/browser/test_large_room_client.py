"""In a large room the server sends video only on request: the browser client asks for what it shows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import eventually, join, join_url, tile, video_playing
from tests.e2e.rtc_client import RtcClient

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def test_page_in_a_large_room_asks_for_the_teachers_video(server_factory: Any, browsers: Browsers) -> None:
    server = await server_factory(large_room_threshold=2)  # three joined make it "large"
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await RtcClient.join(server, room, "teacher", name="Учитель")
    extra = await RtcClient.join(server, room, "extra")
    await teacher.publish()
    page = await browsers.page()
    await join(page, join_url(server.base, room, server.token(room, "pupil", name="Ученик")),
               camera=False, microphone=False)
    pid = teacher.participant_id
    await page.wait_for_selector(tile(pid))
    await eventually(lambda: video_playing(page, f"{tile(pid)} video"), 20.0,
                     what="the teacher's video in a large room")
    for c in (teacher, extra):
        await c.close()

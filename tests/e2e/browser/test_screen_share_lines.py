"""Screen shares in one connection reuse the stopped shares' m-lines.

Chromium keeps a stopped m-line (port 0) in every later offer and the server refuses an offer with
more than rtc_max_mlines (16) m-lines (too_many_tracks): with a new m-line per share, the 8th share
of a connection was refused. Here the server allows 6 (what one share needs: microphone, camera,
the share's video and audio, and room to spare), where a new m-line per share is refused at the 3rd
share; five shares, each one seen by the other page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Server
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import eventually, join, join_url, video_playing

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SHARES = 5
MAX_PUBLISHER_MLINES = 6  # microphone, camera, a share's video and audio: 4 (bounded, whatever the count)
PUBLISH_GAP_S = 1.0  # publishes: a burst of 8, then 1/s (docs/protocol.md): two per share

MLINES = "() => (window.urok.pcs.publisher.localDescription?.sdp.match(/^m=/gm) || []).length"
SHARED = """() => {
  const s = window.urok.session;
  return Boolean(s.local.screen && s.tx.screen && window.urok.pcs.publisher.signalingState === 'stable');
}"""


async def test_screen_shares_in_one_connection_are_all_published(server_factory: Callable[..., Any],
                                                                 browsers: Browsers) -> None:
    server: Server = await server_factory(rtc_max_mlines=MAX_PUBLISHER_MLINES)
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await browsers.page()
    pupil = await browsers.page()
    pid_t = await join(teacher, join_url(server.base, room, server.token(room, "t", name="Учитель")))
    await join(pupil, join_url(server.base, room, server.token(room, "p", name="Ученик")))
    loop = asyncio.get_running_loop()
    counts: list[int] = []
    try:
        for i in range(SHARES):
            started = loop.time()
            await teacher.click("#btn-screen")
            await teacher.wait_for_function(SHARED)
            await pupil.wait_for_selector("#stage:not([hidden])", timeout=20_000)
            await eventually(lambda: video_playing(pupil, "#stage video"), 20.0, what=f"the pupil sees share {i + 1}")
            assert await pupil.get_attribute("#stage", "data-participant-id") == pid_t
            assert await teacher.evaluate("window.urok.session.lastPublishError") is None, i
            counts.append(await teacher.evaluate(MLINES))
            await asyncio.sleep(max(0.0, PUBLISH_GAP_S - (loop.time() - started)))
            stopped = loop.time()
            await teacher.click("#btn-screen")
            await pupil.wait_for_selector("#stage", state="hidden", timeout=15_000)
            assert await teacher.evaluate("window.urok.session.lastPublishError") is None, i
            await asyncio.sleep(max(0.0, PUBLISH_GAP_S - (loop.time() - stopped)))
    except Exception as e:
        logs = f"--- teacher log:\n{browsers.log(teacher)}\n--- pupil log:\n{browsers.log(pupil)}"
        raise AssertionError(f"share {len(counts) + 1}: {e}\nm-lines so far: {counts}\n{logs}") from e
    assert max(counts) <= MAX_PUBLISHER_MLINES, counts
    assert set(counts) == {counts[0]}, counts  # every share after the first reuses its m-lines
    assert not await teacher.locator("#banner.sticky").is_visible()

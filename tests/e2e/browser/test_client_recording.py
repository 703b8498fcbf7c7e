"""Recording in Chromium (issue 13): the host clicks record, both pages show the red indicator (a
late joiner's too), the host stops it, the recording becomes ready in the host's Recordings tab, and
the host's page plays the composed MP4 to its end at 1280x720.  A student has no record button."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join, join_url

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]


async def test_host_records_everyone_sees_it_and_the_host_plays_the_video(
        server_factory: Callable[..., Any], browsers: Browsers, tmp_path: Path, artifacts: Path) -> None:
    # the composer at the lesson's priority: on this shared test machine a niced one waits for every other job
    server = await server_factory(recordings_dir=str(tmp_path / "rec"), compose_nice=0)
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)))
    student = await browsers.page()
    await join(student, join_url(server.base, room, server.token(room, "s", name="Ваня")), camera=False)
    assert await student.locator("#btn-record").is_hidden()
    assert await host.locator("#rec-indicator").is_hidden()
    await host.click("#btn-record")
    for page in (host, student):
        await page.wait_for_selector("#rec-indicator", state="visible", timeout=10_000)
    assert "Идёт запись" in (await student.text_content("#rec-indicator") or "")
    late = await browsers.page()
    await join(late, join_url(server.base, room, server.token(room, "l", name="Опоздавший")), camera=False,
               microphone=False)
    await late.wait_for_selector("#rec-indicator", state="visible", timeout=10_000)
    await host.screenshot(path=str(artifacts / "recording-host-recording.png"))
    await host.wait_for_timeout(4000)
    await host.click("#btn-record")
    for page in (host, student, late):
        await page.wait_for_selector("#rec-indicator", state="hidden", timeout=10_000)
    if not await host.locator("#tab-recordings").is_visible():
        await host.click("#btn-panel")
    await host.click("#tab-recordings")
    await host.wait_for_selector('.rec-item[data-state="ready"] video', timeout=90_000)
    ended = await host.evaluate("""async () => {
      const v = document.querySelector('.rec-item[data-state="ready"] video');
      v.muted = true;
      await new Promise((resolve, reject) => {
        v.addEventListener('ended', resolve, {once: true});
        v.addEventListener('error', () => reject(new Error('video error ' + (v.error && v.error.code))), {once: true});
        v.playbackRate = 4;
        v.play().catch(reject);
      });
      return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, ended: v.ended};
    }""")
    assert ended["ended"] and ended["width"] == 1280 and ended["height"] == 720, ended
    assert ended["duration"] > 3.0, ended
    await host.screenshot(path=str(artifacts / "recording-host-list.png"))
    assert await student.locator("#tab-recordings").count() == 0

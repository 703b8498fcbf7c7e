"""Real media through the SFU between real Chromium pages: video, audio, late join, leave, screen share.

The media plane is part of the server: a server without it (`publish` -> `unknown_type`) fails these
tests like any other regression (there is no expected-failure path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server
from tests.e2e.browser.conftest import DESKTOP, PHONE, Browsers
from tests.e2e.browser.util import audio_flowing, eventually, join, join_url, tile, video_playing

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def _sees_video(page: Any, pid: str, what: str) -> None:
    await page.wait_for_selector(tile(pid))
    await eventually(lambda: video_playing(page, f"{tile(pid)} video"), 20.0, what=what)


async def test_two_pages_see_and_hear_each_other(server: Server, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", name="7Б · Физика")
    a = await browsers.page(viewport=DESKTOP)
    b = await browsers.page(viewport=PHONE)
    pid_a = await join(a, join_url(server.base, room, server.token(room, "teacher", name="Анна Сергеевна")))
    pid_b = await join(b, join_url(server.base, room, server.token(room, "pupil", name="Борис Иванов")))
    try:
        await _sees_video(a, pid_b, "A sees B's video")
        await _sees_video(b, pid_a, "B sees A's video")
        await audio_flowing(a)
        await audio_flowing(b)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- page A log:\n{browsers.log(a)}\n--- page B log:\n{browsers.log(b)}") from e
    # the tile shows the remote microphone as live (not muted); the beeping speaker gets highlighted
    assert await a.locator(f"{tile(pid_b)} .mic-off").is_hidden()
    await eventually(lambda: a.evaluate("(s) => document.querySelector(s).classList.contains('speaking')", tile(pid_b)),
                     25.0, interval=0.1, what="B's tile highlighted as speaking on A")
    await a.wait_for_timeout(500)
    await a.screenshot(path=str(artifacts / "lesson-desktop-1280x800.png"))
    await b.screenshot(path=str(artifacts / "lesson-phone-390x844.png"))
    # muting the microphone shows on the other side when the server relays track_muted
    await b.click("#btn-mic")
    assert await b.evaluate("window.urok.session.local.audio.enabled") is False
    await a.wait_for_selector(f"{tile(pid_b)} .mic-off", state="visible", timeout=10_000)


async def test_late_joiner_sees_both_and_leave_removes_tile(server: Server, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    a = await browsers.page()
    b = await browsers.page()
    pid_a = await join(a, join_url(server.base, room, server.token(room, "a", name="Анна")))
    pid_b = await join(b, join_url(server.base, room, server.token(room, "b", name="Борис")))
    await _sees_video(a, pid_b, "A sees B")
    c = await browsers.page()
    pid_c = await join(c, join_url(server.base, room, server.token(room, "c", name="Вера")))
    try:
        await _sees_video(c, pid_a, "late C sees A")
        await _sees_video(c, pid_b, "late C sees B")
        await _sees_video(a, pid_c, "A sees late C")
        await audio_flowing(c)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- page C log:\n{browsers.log(c)}") from e
    await b.click("#btn-leave")
    await a.wait_for_selector(tile(pid_b), state="detached", timeout=10_000)
    await c.wait_for_selector(tile(pid_b), state="detached", timeout=10_000)
    # the others keep playing after the renegotiation
    await _sees_video(c, pid_a, "C still sees A after B left")


async def test_screen_share_is_shown_large(server: Server, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await browsers.page()
    pupil = await browsers.page()
    pid_t = await join(teacher, join_url(server.base, room, server.token(room, "t", name="Учитель")))
    await join(pupil, join_url(server.base, room, server.token(room, "p", name="Ученик")))
    await teacher.click("#btn-screen")
    await teacher.wait_for_selector("#stage:not([hidden])")
    try:
        await pupil.wait_for_selector("#stage:not([hidden])", timeout=20_000)
        await eventually(lambda: video_playing(pupil, "#stage video"), 20.0, what="the pupil sees the screen")
    except Exception as e:
        logs = f"--- teacher log:\n{browsers.log(teacher)}\n--- pupil log:\n{browsers.log(pupil)}"
        raise AssertionError(f"{e}\n{logs}") from e
    assert await pupil.get_attribute("#stage", "data-participant-id") == pid_t
    box = await pupil.locator("#stage").bounding_box()
    assert box and box["width"] > 600, box  # large on a 1280x800 page
    await pupil.screenshot(path=str(artifacts / "lesson-screen-share-desktop.png"))
    await pupil.set_viewport_size(PHONE)
    await pupil.wait_for_timeout(300)
    await pupil.screenshot(path=str(artifacts / "lesson-screen-share-phone.png"))
    await pupil.set_viewport_size(DESKTOP)
    # the teacher stops sharing from the browser's own control (track ended) -> the stage goes away
    await teacher.evaluate(
        "() => { const t = window.urok.session.local.screen; t.stop(); t.dispatchEvent(new Event('ended')); }")
    await teacher.wait_for_selector("#stage", state="hidden")
    await pupil.wait_for_selector("#stage", state="hidden", timeout=15_000)
    m_lines = "() => (window.urok.pcs.subscriber.remoteDescription?.sdp.match(/^m=/gm) || []).length"
    inactive = "() => (window.urok.pcs.subscriber.remoteDescription?.sdp.match(/^a=inactive/gm) || []).length"

    async def freed() -> bool:  # the pupil has answered the offer that stopped the share's m-line
        return bool(await pupil.evaluate(inactive)) and await pupil.evaluate(
            "() => window.urok.pcs.subscriber.signalingState") == "stable"

    await eventually(freed, 10.0, what="the share's m-line negotiated inactive")
    after_first = await pupil.evaluate(m_lines)
    # a second share works too (on the publisher the first share's m-lines again, on the pupil its freed one)
    await teacher.click("#btn-screen")
    await pupil.wait_for_selector("#stage:not([hidden])", timeout=20_000)
    await eventually(lambda: video_playing(pupil, "#stage video"), 20.0, what="the pupil sees the second share")
    assert await pupil.evaluate(m_lines) == after_first  # the subscriber's SDP did not grow
    await teacher.click("#btn-screen")
    await pupil.wait_for_selector("#stage", state="hidden", timeout=15_000)
    # the camera tiles survived both renegotiations
    await eventually(lambda: video_playing(pupil, f"{tile(pid_t)} video"), 10.0, what="teacher's camera")


async def _has_video(page: Any, pid: str) -> bool:
    return bool(await page.evaluate("(sel) => document.querySelector(sel)?.classList.contains('has-video')", tile(pid)))


async def test_camera_toggle_and_reconnect(server: Server, browsers: Browsers) -> None:
    """Join with the camera off, turn it on and off; drop the socket: the page rejoins by itself."""
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    a = await browsers.page()
    b = await browsers.page()
    pid_a = await join(a, join_url(server.base, room, server.token(room, "a", name="Анна")), camera=False)
    pid_b = await join(b, join_url(server.base, room, server.token(room, "b", name="Борис")))
    try:
        await _sees_video(a, pid_b, "A sees B")
        await b.wait_for_selector(tile(pid_a))
        assert not await _has_video(b, pid_a)
        await audio_flowing(b)
        # camera on: a new m-line, published again
        await a.click("#btn-camera")
        await _sees_video(b, pid_a, "B sees A's camera after A turned it on")
        # camera off: the others show the avatar (track_muted) and the camera is released
        await a.click("#btn-camera")
        await eventually(lambda: _not(_has_video(b, pid_a)), 10.0, what="A's tile without video on B")
        assert await a.evaluate("window.urok.session.local.video") is None
        await a.click("#btn-camera")
        await _sees_video(b, pid_a, "B sees A's camera again")
        # the WebSocket drops: "reconnecting", then joined again with the same participant id
        await a.evaluate("() => { window.urok.session.statusLog.length = 0; window.urok.session.sig.ws.close(); }")
        await a.wait_for_function("() => window.urok.session.statusLog.includes('reconnecting')", timeout=5_000)
        await a.wait_for_function("() => window.urok.session.status === 'joined'", timeout=10_000)
        assert await a.evaluate("window.urok.session.me") == pid_a
        assert await b.locator(tile(pid_a)).count() == 1
        await _sees_video(a, pid_b, "A sees B after reconnecting")
        await _sees_video(b, pid_a, "B sees A after A reconnected")
        await audio_flowing(a)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- page A log:\n{browsers.log(a)}\n--- page B log:\n{browsers.log(b)}") from e


async def _not(x: Any) -> bool:
    return not await x


async def test_locked_camera_publishes_the_microphone_only(server: Server, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", lock={"camera": True})
    a = await browsers.page()
    b = await browsers.page()
    pid_a = await join(a, join_url(server.base, room, server.token(room, "a", name="Анна")))
    await join(b, join_url(server.base, room, server.token(room, "b", name="Борис")))
    await b.wait_for_selector(tile(pid_a))
    await audio_flowing(b)
    assert not await _has_video(b, pid_a)
    assert await a.locator("#btn-camera").is_disabled()
    assert await a.evaluate("window.urok.session.lastPublishError") is None

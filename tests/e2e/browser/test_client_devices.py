"""Devices during the lesson (issue 15), in Chromium with two fake cameras (device-count=2) and its
fake microphones and speakers: the settings dialog switches the camera, the microphone and the
speakers without leaving (the new track goes out on the same sender and the others keep receiving);
a device plugged in mid-lesson is announced, and the one in use that is unplugged falls back.

Chromium cannot plug a fake device in or out, so the page's device list is filtered by a small init
script (the second camera hidden until "plugged in") and `devicechange` is fired as the browser
would; the capture behind it is real."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import audio_flowing, audio_packets, eventually, join, join_url, tile, video_playing

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

HIDE_SECOND_CAMERA = """
window.__plugged = false;
const realEnumerate = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
navigator.mediaDevices.enumerateDevices = async () =>
  (await realEnumerate()).filter((d) => window.__plugged || d.label !== 'fake_device_1');
window.__plug = (on) => { window.__plugged = on; navigator.mediaDevices.dispatchEvent(new Event('devicechange')); };
"""

SENT = """() => { const s = window.urok.session; const v = s.local.video; const a = s.local.audio;
  const senders = window.urok.pcs.publisher.getSenders();
  return {camera: v && v.label, cameraLive: v && v.readyState === 'live', mic: a && a.label,
          sentVideo: senders.some((x) => x.track && x.track === v),
          sentAudio: senders.some((x) => x.track && x.track === a),
          self: document.querySelector('.tile.self video')?.srcObject?.getVideoTracks()[0]?.label}; }"""


async def sent(page: Page) -> dict[str, Any]:
    r: dict[str, Any] = await page.evaluate(SENT)
    return r


async def banner_has(page: Page, part: str) -> bool:
    return part in (await page.text_content("#banner") or "")


async def test_switch_devices_mid_lesson_and_plug_unplug(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    student = await browsers.page(cameras=2)
    await student.add_init_script(HIDE_SECOND_CAMERA)
    pid = await join(student, join_url(server.base, room, server.token(room, "s", name="Ученик")))
    first = await sent(student)
    assert first["camera"] == "fake_device_0" and first["sentVideo"], first
    await eventually(lambda: video_playing(host, f"{tile(pid)} video"), 20, what="the first camera at the host")
    await audio_flowing(host)

    # a second camera is plugged in: announced, and in the settings list
    await student.evaluate("window.__plug(true)")
    await eventually(lambda: banner_has(student, "Подключено новое устройство: fake_device_1"), what="plug notice")
    await student.click("#btn-settings")
    cams = student.locator("#settings-camera option")
    await eventually(lambda: _count_is(cams, 2), what="two cameras listed")
    # switch the camera: the same sender carries the new track, the host keeps seeing video
    second = await student.eval_on_selector("#settings-camera", "(s) => [...s.options].find((o) => "
                                            "o.textContent === 'fake_device_1').value")
    await student.select_option("#settings-camera", second)
    await student.wait_for_function("() => window.urok.session.local.video.label === 'fake_device_1'")
    now = await sent(student)
    assert now["sentVideo"] and now["self"] == "fake_device_1", now
    await eventually(lambda: video_playing(host, f"{tile(pid)} video"), 20, what="video after the camera switch")
    # switch the microphone: the host keeps receiving sound
    mic = await student.eval_on_selector("#settings-mic", "(s) => [...s.options].find((o) => "
                                         "o.textContent === 'Fake Audio Input 2').value")
    await student.select_option("#settings-mic", mic)
    await student.wait_for_function("() => window.urok.session.local.audio.label === 'Fake Audio Input 2'")
    assert (await sent(student))["sentAudio"]
    before = await audio_packets(host)
    await eventually(lambda: _grew(host, before), what="audio after the microphone switch")
    # the speakers: every audio element plays to the chosen output
    out = await student.eval_on_selector("#settings-speaker", "(s) => [...s.options].find((o) => "
                                         "o.textContent === 'Fake Audio Output 1').value")
    await student.select_option("#settings-speaker", out)
    await student.wait_for_function("(id) => [...document.querySelectorAll('audio')].length > 0 && "
                                    "[...document.querySelectorAll('audio')].every((a) => a.sinkId === id)", arg=out)
    await student.click("#settings-close")

    # the camera in use is unplugged: back to the first one, said, and still sent
    await student.evaluate("window.__plug(false)")
    await eventually(lambda: banner_has(student, "Устройство отключено: fake_device_1"), what="unplug notice")
    assert "fake_device_0" in (await student.text_content("#banner") or "")
    await student.wait_for_function("() => window.urok.session.local.video.label === 'fake_device_0'")
    assert (await sent(student))["sentVideo"]
    await eventually(lambda: video_playing(host, f"{tile(pid)} video"), 20, what="video after the fallback")
    assert await student.evaluate("window.urok.session.status") == "joined"


async def _count_is(loc: Any, n: int) -> bool:
    return bool(await loc.count() == n)


async def _grew(page: Page, before: int) -> bool:
    return await audio_packets(page) > before + 20

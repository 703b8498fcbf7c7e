"""Captions in Chromium (issue 14): the host switches captions on, a speaker (an aiortc client saying
espeak-ng Korean, tests/speech_audio.py) is captioned under its tile with its name on a student's
page, the final goes to the Transcript tab, the host downloads the transcript as WebVTT, and a
student can hide captions but not switch them for the room."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signaling.rooms import Role
from tests.clips import publish_tracks
from tests.e2e.browser.conftest import Browsers, artifacts, browsers  # noqa: F401 (fixtures)
from tests.e2e.browser.util import join, join_url, tile
from tests.e2e.rtc_client import RtcClient
from tests.e2e.test_captions import SpeechTrack
from tests.speech_audio import speech48k

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_captions_show_under_the_speaker_and_the_host_downloads_webvtt(
        server_factory: Callable[..., Any], browsers: Browsers, artifacts: Path) -> None:  # noqa: F811
    server = await server_factory(transcription_workers=1)
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    student = await browsers.page()
    await join(student, join_url(server.base, room, server.token(room, "s", name="Ваня")), camera=False,
               microphone=False)
    assert await student.locator("#btn-transcription").is_hidden()
    assert await student.locator("#btn-captions").is_hidden()  # captions are off for the room

    await host.click("#btn-transcription")
    for page in (host, student):
        await page.wait_for_selector("#btn-captions", state="visible", timeout=90_000)  # the model loads
    speaker = await RtcClient.join(server, room, "a", name="Анна Петровна")
    track = SpeechTrack(speech48k(), delay_s=1.0)
    await publish_tracks(speaker, [(track, "microphone")])
    line = f"{tile(speaker.participant_id)} .cap-line"
    await student.wait_for_selector(line, timeout=60_000)
    assert "Анна Петровна" in (await student.text_content(f"{line} .cap-name") or "")
    await student.wait_for_selector("#cap-list .cap-item", state="attached", timeout=60_000)
    said = await student.text_content("#cap-list .cap-item .cap-said") or ""
    assert said.strip(), "an empty final"
    await student.screenshot(path=str(artifacts / "captions-student.png"))

    # the host's transcript tab links the WebVTT (its own token); the page downloads it
    if not await host.locator("#tab-transcript").is_visible():
        await host.click("#btn-panel")
    await host.click("#tab-transcript")
    await host.wait_for_selector("#cap-download", state="visible")
    vtt = await host.evaluate("async () => (await fetch(document.querySelector('#cap-download').href)).text()")
    assert vtt.startswith("WEBVTT") and f"<v Анна Петровна>{said.strip()}" in vtt, vtt
    assert await student.locator("#cap-download").is_hidden()

    # a student hides captions for itself: nothing more is shown or sent to it
    await student.click("#btn-captions")
    await student.wait_for_function("() => document.body.classList.contains('captions-hidden')")
    assert await student.locator(line).count() == 0
    await speaker.close()

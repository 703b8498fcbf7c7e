"""Noise suppression from the browser client: a student's page in real Chromium, its microphone a
WAV of speech in pink noise at 0 dB SNR (Chromium's fake capture plays the file in a loop; the
page's own echo cancellation, noise suppression and gain control on, as for a real student),
clicks its "noise suppression" button (web/noise.js); the teacher, an aiortc client, hears the
difference.  While the server cleans the microphone the page turns the browser's own noise
suppression and gain control off (web/media.js: after Chromium's suppression RNNoise took the
remaining speech for noise and removed it too), and back on when it stops.  Then the teacher turns
it on for the room: the student's button shows it on and locked."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.browser.conftest import ALLOW, CHROMIUM, COMMON_FLAGS, chromium_session
from tests.e2e.browser.util import join, join_url
from tests.e2e.rtc_client import wait_until
from tests.e2e.test_noise_suppression import ListeningClient, clip, measure, via_publisher_opus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

RATE = 48000


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())


async def test_the_students_button_cleans_what_the_teacher_hears_and_the_room_switch_locks_it(
        server: Server, tmp_path: Path) -> None:
    clean, noisy = clip()
    via_opus = via_publisher_opus(clean, 32000)  # Chromium's Opus: ~32 kbps VoIP
    wav = tmp_path / "noisy.wav"
    write_wav(wav, noisy)
    room_id = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await ListeningClient.join(server, room_id, "teacher", role=Role.HOST)
    assert isinstance(teacher, ListeningClient)
    async with chromium_session() as browsers:
        flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
                 *COMMON_FLAGS, "--autoplay-policy=no-user-gesture-required", ALLOW]
        browsers.browsers["allow"] = await browsers.pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=flags, timeout=30_000)
        page = await browsers.page()
        pid = await join(page, join_url(server.base, room_id, server.token(room_id, "student", name="Борис")),
                         camera=False)
        assert await wait_until(lambda: hasattr(teacher, "heard") and len(teacher.heard.frames) > 100, 20)
        button = page.locator("#btn-noise")
        assert await button.get_attribute("aria-pressed") == "false"
        assert await mic_processing(page) == (True, True)  # the browser's own, as for everyone
        before = await measure(teacher.heard, teacher.heard.frames[-1][0] + 1.0, clean, via_opus)

        await button.click()
        await page.wait_for_function("() => document.querySelector('#btn-noise').ariaPressed === 'true'")
        await teacher.ws.event("noise_suppression", participant_id=pid, enabled=True)
        # the server cleans: the browser's own suppression and gain control are off on the live track
        assert await wait_until_async(lambda: mic_processing(page), (False, False), 10)
        after = await measure(teacher.heard, time.monotonic() + 1.5, clean, via_opus,
                              lambda m: m[0] - before[0] >= 6.0 and m[1] >= before[1] - 1.0)
        print(f"\nChromium student, recorded speech in pink noise 0 dB SNR (the browser's own suppression "
              f"off while the server's is on): off {before}, on {after} (pause SNR, spectral SNR, SI-SDR "
              f"against the clean clip, SI-SDR against it through a 32 kbps VoIP Opus; dB)")
        assert after[0] - before[0] >= 6.0, (before, after)
        # the speech is kept: before the page turned its own suppression off, RNNoise after it took
        # the speech for noise (spectral SNR 7.6 -> 0.6-0.9 dB, SI-SDR -2 -> -12 dB)
        assert after[1] >= before[1] - 1.0, (before, after)
        # SI-SDR through Chromium's processing and Opus is low either way (measured ~0.7 off, ~-2.2 on
        # with recorded speech; the defect took it from -2 to -12 dB with espeak's)
        assert after[2] > before[2] - 5.0, (before, after)

        # the host's choice for the student: off, locked; the browser's own processing is back
        await teacher.ws.request("set_noise_suppression", enabled=False, participant_id=pid)
        await page.wait_for_function(
            "() => { const b = document.querySelector('#btn-noise');"
            " return b.getAttribute('aria-pressed') === 'false' && b.disabled; }")
        assert await wait_until_async(lambda: mic_processing(page), (True, True), 10)
        # the host's room switch: the student's button shows it on and locked
        r = await teacher.ws.request("set_noise_suppression", enabled=True, all=True)
        assert r["ok"], r
        await page.wait_for_function(
            "() => { const b = document.querySelector('#btn-noise');"
            " return b.getAttribute('aria-pressed') === 'true' && b.disabled; }")
        assert not await page.locator("#btn-noise-room").is_visible()  # students have no room switch
    await teacher.close()


async def mic_processing(page: Page) -> tuple[bool, bool] | None:
    """(noiseSuppression, autoGainControl) of the page's live microphone (web/media.js), or None
    while it has none or they disagree with what is asked."""
    got = await page.evaluate("async () => (await import('/web/media.js')).microphoneProcessing()")
    tracks = got["tracks"]
    if len(tracks) != 1:
        return None
    settings = (tracks[0].get("noiseSuppression"), tracks[0].get("autoGainControl"))
    asked = (got["asked"]["noiseSuppression"], got["asked"]["autoGainControl"])
    return settings if settings == asked else None


async def wait_until_async(probe: Callable[[], Awaitable[object]], want: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe() == want:
            return True
        await asyncio.sleep(0.1)
    return False

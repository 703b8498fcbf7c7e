"""Noise suppression from the browser client: a student's page in real Chromium, its microphone a
WAV of speech (espeak-ng, synthesised) in pink noise at 0 dB SNR (Chromium's fake capture plays the
file in a loop; the page's own echo cancellation, noise suppression and gain control stay on, as
for a real student), clicks its "noise suppression" button (web/noise.js); the teacher, an aiortc
client, hears the difference.  Then the teacher turns it on for the room: the student's button
shows it on and locked."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.browser.conftest import ALLOW, CHROMIUM, COMMON_FLAGS, chromium_session
from tests.e2e.browser.util import join, join_url
from tests.e2e.rtc_client import wait_until
from tests.e2e.test_noise_suppression import ListeningClient, clip, measure

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
        before = await measure(teacher.heard, teacher.heard.frames[-1][0] + 1.0, clean)

        await button.click()
        await page.wait_for_function("() => document.querySelector('#btn-noise').ariaPressed === 'true'")
        await teacher.ws.event("noise_suppression", participant_id=pid, enabled=True)
        after = await measure(teacher.heard, time.monotonic() + 1.5, clean,
                              lambda m: m[0] - before[0] >= 6.0)
        print(f"\nChromium student, pink noise 0 dB SNR (the browser's own noise suppression on): "
              f"off {before}, on {after} (pause SNR, spectral SNR, SI-SDR; dB)")
        assert after[0] - before[0] >= 6.0, (before, after)

        # the host's room switch: the student's button shows it on and locked
        await teacher.ws.request("set_noise_suppression", enabled=False, participant_id=pid)
        await page.wait_for_function(
            "() => { const b = document.querySelector('#btn-noise');"
            " return b.getAttribute('aria-pressed') === 'false' && b.disabled; }")
        r = await teacher.ws.request("set_noise_suppression", enabled=True, all=True)
        assert r["ok"], r
        await page.wait_for_function(
            "() => { const b = document.querySelector('#btn-noise');"
            " return b.getAttribute('aria-pressed') === 'true' && b.disabled; }")
        assert not await page.locator("#btn-noise-room").is_visible()  # students have no room switch
    await teacher.close()
    # Known defect, seen here only: after Chromium's own noise suppression, RNNoise takes this
    # synthesised (espeak-ng) speech for noise (voice probability ~0 on loud frames) and removes it
    # too: spectral SNR 7.6 -> 0.6-0.9 dB, SI-SDR -2 -> -12 dB, while the aiortc publisher's raw
    # speech keeps 12 dB.  Whether real speech fares better is not known (none installable here);
    # with the page's getUserMedia forced to noiseSuppression and autoGainControl false (a trial,
    # not in the client) the same run gave pause SNR 8.5 -> 24.0, spectral 7.0 -> 4.1 dB: the client
    # could ask for that while the server suppresses (web/media.js).
    if before[1] - after[1] > 3.0:
        pytest.xfail(f"speech removed after the browser's own suppression: spectral SNR {before[1]:.1f} -> "
                     f"{after[1]:.1f} dB")

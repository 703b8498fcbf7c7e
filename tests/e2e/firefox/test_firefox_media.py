"""Firefox ESR (Debian's firefox-esr over WebDriver BiDi) in a lesson with Chromium (issue 21).

Everything runs in the test's own network namespace (tests/e2e/firefox/netns.py): Firefox gathers
no loopback candidates, so the server announces the namespace's test address. The page checks are
the Chromium tests' (video frames decoded, audio packets received), on both browsers.
"""

from __future__ import annotations

from typing import Any

import pytest

from signaling.app_keys import ROOMS, WORKER
from signaling.media.media_feature import MediaFeature
from tests.conftest import Server
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import audio_flowing, eventually, join, join_url, tile, video_playing
from tests.e2e.firefox.firefox import Firefox

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# inbound video of the subscriber connection: frames decoded and the last frame's width, per track
INBOUND_VIDEO_JS = """async () => {
  const pc = window.urok && window.urok.pcs && window.urok.pcs.subscriber;
  if (!pc) return {frames: -1, width: 0};
  let frames = 0, width = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      frames += r.framesDecoded || 0;
      width = Math.max(width, r.frameWidth || 0);
    }
  });
  return {frames, width};
}"""

# headless Firefox has no screen to capture (getDisplayMedia: NotFoundError): the page's
# getDisplayMedia returns a canvas that changes every frame instead; the client publishes it as
# its screen share exactly as it would a captured screen
FAKE_SCREEN_JS = """(() => {
  if (!navigator.mediaDevices) return;  // about:blank before the page loads
  navigator.mediaDevices.getDisplayMedia = async () => {
    const c = document.createElement('canvas');
    c.width = 1280; c.height = 720;
    const g = c.getContext('2d');
    let n = 0;
    setInterval(() => {
      n += 1;
      g.fillStyle = `hsl(${(n * 7) % 360} 60% 50%)`;
      g.fillRect(0, 0, c.width, c.height);
      g.fillStyle = '#fff';
      g.font = '64px sans-serif';
      g.fillText('screen ' + n, 40, 120);
    }, 66);
    return c.captureStream(15);
  };
})();"""


async def frames_growing(page: Any, what: str, timeout: float = 25.0) -> int:
    """Waits until the page decodes remote video and its framesDecoded grows; returns the width."""
    first = await eventually(lambda: _decoded(page), timeout, what=f"{what}: frames decoded")

    async def grew() -> dict[str, Any] | None:
        now = await page.evaluate(INBOUND_VIDEO_JS)
        return now if now["frames"] > first["frames"] else None

    now = await eventually(grew, 10.0, what=f"{what}: frames decoded growing")
    return int(now["width"])


async def _decoded(page: Any) -> dict[str, Any] | None:
    r: dict[str, Any] = await page.evaluate(INBOUND_VIDEO_JS)
    return r if r["frames"] > 0 else None


async def sees_video(page: Any, pid: str, what: str) -> None:
    await page.wait_for_selector(tile(pid), timeout=20_000)
    await eventually(lambda: video_playing(page, f"{tile(pid)} video"), 25.0, what=what)


def mux_stats(server: Server) -> str:
    """The shared port's counters (checks, answers, drops by reason): why ICE did or did not work."""
    mux = server.app[WORKER].mux
    return f"\n--- shared port: {mux.stats}" if mux is not None else ""


async def test_chromium_teacher_and_firefox_student_see_and_hear_each_other(
        ff_server: Server, chromium: Browsers, firefox_browser: Firefox) -> None:
    server = ff_server
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher = await chromium.page()
    student: Any = await firefox_browser.page()  # a Playwright-like page (tests/e2e/firefox/firefox.py)
    pid_t = await join(teacher, join_url(server.base, room, server.token(room, "teacher", name="Анна Сергеевна")))
    pid_s = await join(student, join_url(server.base, room, server.token(room, "student", name="Борис")))
    try:
        await sees_video(teacher, pid_s, "the Chromium teacher sees the Firefox student")
        await sees_video(student, pid_t, "the Firefox student sees the Chromium teacher")
        await frames_growing(teacher, "Chromium")
        await frames_growing(student, "Firefox")
        await audio_flowing(teacher)
        await audio_flowing(student)
        assert await student.evaluate("window.urok.session.lastPublishError") is None
        # Firefox's default host candidates are mDNS names the server never resolves: the shared
        # port learned the student's address from its checks and verified it with its own
        sdp = await student.evaluate("window.urok.pcs.publisher.localDescription.sdp")
        assert ".local " in sdp and "a=bundle-only" in sdp, sdp
        # each browser answered the shared port's own checks on both its connections (RFC 7675)
        mux = server.app[WORKER].mux
        assert mux is not None and mux.stats.paths_verified >= 4, mux.stats
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- Chromium log:\n{chromium.log(teacher)}"
                             f"\n--- Firefox log:\n{firefox_browser.log(student)}{mux_stats(server)}") from e
    # the Firefox student published microphone and camera (its camera in simulcast layers)
    tracks = [t for t in _tracks(server, room) if t.participant_id == pid_s]
    assert sorted(t.producer.source for t in tracks) == ["camera", "microphone"]


async def test_firefox_teacher_shares_a_screen_a_chromium_student_sees(
        ff_server: Server, chromium: Browsers, firefox_browser: Firefox) -> None:
    server = ff_server
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher: Any = await firefox_browser.page()
    await teacher.preload(FAKE_SCREEN_JS)
    student = await chromium.page()
    pid_t = await join(teacher, join_url(server.base, room, server.token(room, "teacher", name="Учитель")))
    await join(student, join_url(server.base, room, server.token(room, "student", name="Ученик")))
    try:
        await sees_video(student, pid_t, "the student sees the teacher's camera")
        await teacher.click("#btn-screen")
        await teacher.wait_for_selector("#stage:not([hidden])")
        await student.wait_for_selector("#stage:not([hidden])", timeout=20_000)
        await eventually(lambda: video_playing(student, "#stage video"), 25.0, what="the student sees the screen")
        assert await student.get_attribute("#stage", "data-participant-id") == pid_t
        await frames_growing(student, "Chromium student")
        await audio_flowing(student)
        # Firefox stops sharing (its next offer stops the share's m-line): the stage goes away
        # and the camera keeps playing; a second share works on the same connection
        await teacher.click("#btn-screen")
        await student.wait_for_selector("#stage", state="hidden", timeout=15_000)
        await teacher.click("#btn-screen")
        await student.wait_for_selector("#stage:not([hidden])", timeout=20_000)
        await eventually(lambda: video_playing(student, "#stage video"), 25.0, what="the second share")
        await eventually(lambda: video_playing(student, f"{tile(pid_t)} video"), 10.0, what="the camera")
        assert await teacher.evaluate("window.urok.session.lastPublishError") is None
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- Firefox log:\n{firefox_browser.log(teacher)}"
                             f"\n--- Chromium log:\n{chromium.log(student)}") from e
    sources = sorted(t.producer.source for t in _tracks(server, room) if t.participant_id == pid_t)
    assert "screen" in sources and "camera" in sources, sources


async def test_firefox_simulcast_camera_gives_a_chromium_viewer_the_layer_it_asks_for(
        ff_server: Server, chromium: Browsers, firefox_browser: Firefox) -> None:
    server = ff_server
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    teacher: Any = await firefox_browser.page()
    viewer = await chromium.page()
    pid_t = await join(teacher, join_url(server.base, room, server.token(room, "teacher", name="Учитель")))
    await join(viewer, join_url(server.base, room, server.token(room, "viewer", name="Ученик")), camera=False)
    try:
        await sees_video(viewer, pid_t, "the viewer sees the Firefox camera")
        (camera,) = [t for t in _tracks(server, room) if t.participant_id == pid_t and t.producer.source == "camera"]
        producer = camera.producer
        assert producer.simulcast and producer.rids == ("q", "h", "f"), producer
        # Firefox sends every layer it was given (the rid header extension names each SSRC)
        await eventually(lambda: _async(sum(s["packets"] > 0 for s in producer.layer_stats()) >= 2), 20.0,
                         what=f"two simulcast layers arriving: {producer.layer_stats()}")
        (consumer,) = producer.consumers
        top = max(i for i, s in enumerate(producer.layer_stats()) if s["packets"])
        # one camera in the room: the client asks for "high" by itself
        await eventually(lambda: _async(consumer.current_layer == top), 20.0,
                         what=f"the viewer on the top layer {top} (at {consumer.current_layer})")
        high_width = await frames_growing(viewer, "Chromium viewer, high")
        # the viewer asks for the lowest layer: it gets it, and its frames get smaller
        await viewer.evaluate(
            "(id) => window.urok.session.sig.request('subscribe', {tracks: [{track_id: id, quality: 'low'}]})"
            ".then(() => true)", camera.producer.id)
        await eventually(lambda: _async(consumer.current_layer == 0), 20.0,
                         what=f"the viewer on layer 0 (at {consumer.current_layer})")

        async def smaller() -> int:
            w = await frames_growing(viewer, "Chromium viewer, low")
            return w if 0 < w < high_width else 0

        await eventually(smaller, 20.0, what=f"frames narrower than {high_width}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- Firefox log:\n{firefox_browser.log(teacher)}"
                             f"\n--- Chromium log:\n{chromium.log(viewer)}") from e


async def _async(value: Any) -> Any:
    return value


def _tracks(server: Server, room: str) -> list[Any]:
    live = server.app[ROOMS].live.get(room)
    assert live is not None
    feature = next(f for f in live.features if isinstance(f, MediaFeature))
    return list(feature.tracks.values())

"""The virtual background (issue 15) in Chromium: MediaPipe's selfie segmentation, served by urok
from web/vendor (no CDN; the page's strict CSP allows only WebAssembly on top of 'self'), replaces
what is behind the person and keeps the person.

Measured on a synthetic person (a head and shoulders drawn on a plain green wall, fed as a camera
track): the processed frames differ from the camera's in the background region (they show the
chosen picture there) and match it in the person region. Then through a lesson: chosen on the
pre-join page, the processed track is what is published (the host receives the picture's colours
where the fake camera has none), remembered by the next page, and switched to blur mid-lesson."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join, join_url, prejoin_ready, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

WALL = (0x33, 0xAA, 0x66)  # the synthetic camera's wall
SKIN = (0xFF, 0xCC, 0x99)  # its person
BOARD_WALL = (0xD8, 0xCB, 0xB3)  # web/backgrounds/board.svg: the wall at the top corners
BOARD_FLOOR = (0xB5, 0x9A, 0x74)  # and the floor at the bottom ones

SYNTHETIC = """async () => {
  const bg = await import('/web/background.js');
  const src = document.createElement('canvas');
  src.width = 640; src.height = 480;
  const g = src.getContext('2d');
  let tick = 0;
  const paint = () => {  // a still person, repainted so that the track keeps sending frames
    g.fillStyle = '#33aa66'; g.fillRect(0, 0, 640, 480);
    g.fillStyle = '#ffcc99'; g.beginPath(); g.arc(320, 200, 100, 0, 7); g.fill();
    g.fillRect(180, 300, 280, 180);
    g.fillStyle = (tick++ % 2) ? '#33aa65' : '#33aa66'; g.fillRect(0, 0, 1, 1);
  };
  paint();
  const timer = setInterval(paint, 66);
  const raw = src.captureStream(15).getVideoTracks()[0];
  const t0 = performance.now();
  const out = await bg.processTrack(raw, 'board');
  const ready = performance.now() - t0;
  const v = document.createElement('video');
  v.muted = true; v.srcObject = new MediaStream([out]); await v.play();
  while (out.background.frames < 4) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => requestAnimationFrame(r));
  const c = document.createElement('canvas'); c.width = 640; c.height = 480;
  const cg = c.getContext('2d', {willReadFrequently: true});
  cg.drawImage(v, 0, 0, 640, 480);
  const at = (x, y) => [...cg.getImageData(x, y, 1, 1).data.slice(0, 3)];
  const s = out.background;
  const fps = s.frames / ((performance.now() - s.started) / 1000);
  const result = {ready, fps, label: out.label, person: [at(320, 200), at(320, 420), at(250, 400)],
                  background: [at(40, 40), at(600, 60), at(40, 440), at(600, 440)]};
  out.stop(); clearInterval(timer);
  result.rawStopped = raw.readyState === 'ended';
  return result;
}"""


def near(a: list[int], b: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


async def test_segmentation_replaces_the_background_and_keeps_the_person(server: Any, browsers: Browsers) -> None:
    room = await server.create_room()
    page = await browsers.page()
    await page.goto(join_url(server.base, room, server.token(room, "a")))
    await prejoin_ready(page)
    r = await page.evaluate(SYNTHETIC)
    assert all(near(p, SKIN) for p in r["person"]), r  # the person: the camera's own pixels
    # behind the person: the picture (its wall at the top corners, its floor at the bottom ones)
    expected = [BOARD_WALL, BOARD_WALL, BOARD_FLOOR, BOARD_FLOOR]
    assert all(near(p, e) and not near(p, WALL) for p, e in zip(r["background"], expected, strict=True)), r
    assert r["rawStopped"], r  # stopping the processed track stops the camera
    print(f"virtual background: model ready in {r['ready']:.0f} ms, {r['fps']:.1f} processed frames/s here "
          "(headless Chromium, software WebGL)")


HOST_CORNER = """(sel) => { const v = document.querySelector(sel);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d', {willReadFrequently: true}); g.drawImage(v, 0, 0);
  return [...g.getImageData(8, 8, 1, 1).data.slice(0, 3)]; }"""


async def test_background_chosen_before_joining_is_published_remembered_and_switched(server: Any,
                                                                                    browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    student = await browsers.page()
    url = join_url(server.base, room, server.token(room, "s", name="Ученик"))
    await student.goto(url)
    await prejoin_ready(student)
    await student.select_option("#background-select", "board")
    await student.wait_for_function("() => window.urok.prejoin.video && window.urok.prejoin.video.background",
                                    timeout=60_000)
    await student.click("#join")
    await student.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    pid = await student.evaluate("window.urok.session.me")
    sent = await student.evaluate("""() => { const v = window.urok.session.local.video;
      return {processed: Boolean(v && v.background), mode: v && v.background.mode,
              sending: window.urok.pcs.publisher.getSenders().some((s) => s.track === v)}; }""")
    assert sent == {"processed": True, "mode": "board", "sending": True}, sent
    # the host receives the picture where the fake camera's frame has its own pattern
    await host.wait_for_function(f"() => ({HOST_CORNER})('{tile(pid)} video') !== null", timeout=30_000)
    await host.wait_for_function(
        f"() => {{ const p = ({HOST_CORNER})('{tile(pid)} video');"
        f" return p && p.every((x, i) => Math.abs(x - {list(BOARD_WALL)}[i]) <= 40); }}", timeout=30_000)
    # remembered: the next page of this browser starts with the same choice
    again = await student.context.new_page()
    await again.goto(join_url(server.base, room, server.token(room, "s2", name="Ещё")))
    await prejoin_ready(again)
    assert await again.eval_on_selector("#background-select", "(s) => s.value") == "board"
    await again.close()
    # switched to blur in the lesson's settings: the sender carries the new processed track
    await student.click("#btn-settings")
    await student.select_option("#settings-background", "blur")
    await student.wait_for_function("() => { const v = window.urok.session.local.video;"
                                    " return v && v.background && v.background.mode === 'blur' &&"
                                    " window.urok.pcs.publisher.getSenders().some((s) => s.track === v); }",
                                    timeout=60_000)

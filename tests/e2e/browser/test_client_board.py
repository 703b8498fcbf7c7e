"""The whiteboard in Chromium (web/board.js) against the real server: the host draws with the
mouse and a student's page shows the stroke within a bound (in its document and in its canvas
pixels); a late joiner and a reloaded page see the board; a student without the pen cannot draw,
neither through the UI nor by writing to the Yjs document directly (the server refuses it and the
page goes back to the server's board); with the pen given, the student draws and the host sees it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import eventually, join, join_url

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

STROKE_BOUND_S = 3.0  # mouse-up on one page -> the stroke in another page's document (loaded machine)

ELEMENTS = "() => window.urok.board ? window.urok.board.elements() : []"
# the canvas pixel under a page point (page coordinates, as the board maps them to the screen)
PIXEL_AT = """([x, y]) => {
  const c = document.querySelector('#board-canvas');
  const r = c.getBoundingClientRect();
  const b = window.urok.board;
  const pg = b.pages.find((p) => p.page_id === b.page);
  const s = Math.min(r.width / pg.width, r.height / pg.height) * 0.98;
  const ox = (r.width - pg.width * s) / 2, oy = (r.height - pg.height * s) / 2;
  const dpr = window.devicePixelRatio || 1;
  const d = c.getContext('2d').getImageData(Math.round((ox + x * s) * dpr), Math.round((oy + y * s) * dpr), 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


async def open_board(page: Page) -> None:
    await page.wait_for_function("() => window.urok.board && window.urok.board.ready", timeout=15_000)
    if not await page.evaluate("window.urok.board.open"):
        await page.click("#btn-board")
    await page.wait_for_selector("#board-canvas", state="visible")


async def screen_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Where the page point (x, y) of the current board page is on the screen (no zoom, no pan)."""
    r: list[float] = await page.evaluate("""([x, y]) => {
      const r = document.querySelector('#board-canvas').getBoundingClientRect();
      const b = window.urok.board;
      const pg = b.pages.find((p) => p.page_id === b.page);
      const s = Math.min(r.width / pg.width, r.height / pg.height) * 0.98;
      return [r.left + (r.width - pg.width * s) / 2 + x * s, r.top + (r.height - pg.height * s) / 2 + y * s];
    }""", [x, y])
    return r[0], r[1]


async def drag(page: Page, points: list[tuple[float, float]]) -> None:
    x, y = await screen_point(page, *points[0])
    await page.mouse.move(x, y)
    await page.mouse.down()
    for px, py in points[1:]:
        x, y = await screen_point(page, px, py)
        await page.mouse.move(x, y, steps=4)
    await page.mouse.up()


def red(px: list[int]) -> bool:
    return px[0] > 150 and px[1] < 110 and px[2] < 110


async def strokes(page: Page) -> list[dict[str, Any]]:
    els: list[dict[str, Any]] = await page.evaluate(ELEMENTS)
    return [e for e in els if e.get("type") == "pen"]


async def test_a_host_stroke_reaches_a_student_a_late_joiner_and_survives_a_reload(
        server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    student = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    await join(student, join_url(server.base, room, server.token(room, "s1", name="Ученик")),
               camera=False, microphone=False)
    await open_board(host)
    await open_board(student)
    assert await host.evaluate("window.urok.board.mayDraw") is True
    await host.click("#board-tool-pen")
    await host.click('.board-swatch[data-color="#d32f2f"]')
    await drag(host, [(300, 300), (500, 320), (700, 300), (900, 340)])
    sent_at = time.monotonic()
    got = await eventually(lambda: _whole(student), timeout=15, interval=0.02, what="the whole stroke at the student")
    delay = time.monotonic() - sent_at
    assert delay < STROKE_BOUND_S, delay
    pts = got[0]["pts"]
    assert len(pts) >= 8 and pts[0] == pytest.approx(300, abs=3) and pts[1] == pytest.approx(300, abs=3)
    # the student's canvas shows it (red pixels on the line between the first points)
    await eventually(lambda: _red_at(student, 300, 300),
                     timeout=5, what="the stroke drawn on the student's canvas")
    # the student's own cursor is seen by the host? the host's cursor reached the student's layer
    await eventually(lambda: student.locator(".board-cursor").count(), timeout=5, what="the host's cursor")
    await student.screenshot(path=str(artifacts / "board-student-1280x800.png"))
    # a late joiner sees the board at once
    late = await browsers.page()
    await join(late, join_url(server.base, room, server.token(room, "s2", name="Опоздавший")),
               camera=False, microphone=False)
    await open_board(late)
    assert len(await strokes(late)) == 1
    # the host reloads: the board is still there (and the host may go on drawing on it)
    await host.reload()
    await host.wait_for_function("() => window.urok && window.urok.prejoin", timeout=15_000)
    await host.click("#join")
    await host.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    await open_board(host)
    assert len(await strokes(host)) == 1
    await _red_at(host, 300, 300)


async def _whole(page: Page) -> list[dict[str, Any]] | None:
    """The stroke once its last point (the mouse-up at x = 900) is there."""
    got = await strokes(page)
    return got if got and got[0]["pts"][-2] == pytest.approx(900, abs=3) else None


async def _red_at(page: Page, x: float, y: float) -> bool:
    for dx in (0, 3, -3):
        for dy in (0, 3, -3):
            if red(await page.evaluate(PIXEL_AT, [x + dx, y + dy])):
                return True
    return False


async def test_a_student_without_the_pen_cannot_draw_until_given_it(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    student = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    spid = await join(student, join_url(server.base, room, server.token(room, "s1", name="Ученик")),
                      camera=False, microphone=False)
    await open_board(host)
    await open_board(student)
    await host.select_option("#board-rights", "nobody")
    await student.wait_for_function("() => window.urok.board.mayDraw === false")
    assert await student.is_disabled("#board-tool-pen")
    assert "учитель" in (await student.text_content("#board-status") or "")
    # through the UI: the drag pans, nothing is drawn
    await drag(student, [(300, 300), (600, 600)])
    await student.wait_for_timeout(300)
    assert await strokes(student) == []
    # around the UI: written into the document directly, sent, refused by the server, undone
    await student.evaluate("""() => {
      const b = window.urok.board;
      const Y = b.doc.getMap('elements');
      b.doc.transact(() => {
        const m = new (Y.constructor)();
        Y.set('forged', m);
        m.set('type', 'pen'); m.set('page', b.page); m.set('pts', [1, 1, 500, 500]);
      }, 'local');
    }""")
    await eventually(lambda: _no_forged(student), timeout=10, what="the refused element gone from the student's page")
    assert await host.evaluate(ELEMENTS) == []
    # the pen given: the student draws, the host sees it
    await host.select_option("#board-rights", "chosen")
    await host.click("#board-pens summary")
    await host.check(f'#board-pens-list input[data-participant-id="{spid}"]')
    await student.wait_for_function("() => window.urok.board.mayDraw === true")
    await student.click("#board-tool-pen")
    await drag(student, [(200, 200), (400, 260), (600, 200)])
    await eventually(lambda: strokes(host), timeout=10, what="the student's stroke at the host")
    # the lock: drawing forbidden whatever the pen
    assert await host.evaluate("() => window.urok.session.request('set_lock', {whiteboard: true}).then((r) => r.ok)")
    await student.wait_for_function("() => window.urok.board.mayDraw === false")
    assert "закрыта" in (await student.text_content("#board-status") or "")


async def _no_forged(page: Page) -> bool:
    ids = [e["id"] for e in await page.evaluate(ELEMENTS)]
    ready = await page.evaluate("window.urok.board.ready")
    return bool(ready) and "forged" not in ids

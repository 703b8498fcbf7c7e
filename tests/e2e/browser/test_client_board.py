"""The whiteboard in Chromium (web/board.js) against the real server: the host draws with the
mouse and a student's page shows the stroke within a bound (in its document and in its canvas
pixels); a late joiner and a reloaded page see the board; a student without the pen cannot draw,
neither through the UI nor by writing to the Yjs document directly (the server refuses it and the
page goes back to the server's board); with the pen given, the student draws and the host sees it;
the lock makes it read-only again.  Slow: two pages draw at once and see each other's strokes and
cursor, undo takes back only one's own stroke (redo brings it), a text, the host uploads a 3-page
PDF and with "follow me" both pages show its page 2 (the background's pixels), and the export
button's PDF renders (pdftoppm) with the strokes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import eventually, join, join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SLOW = pytest.mark.skipif(os.environ.get("UROK_SLOW") != "1", reason="long browser test: set UROK_SLOW=1")
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


async def _page_index(page: Page) -> int:
    i: int = await page.evaluate("window.urok.board.pages.findIndex((p) => p.page_id === window.urok.board.page)")
    return i


async def _colour_at(page: Page, x: float, y: float, rgb: tuple[int, int, int]) -> bool:
    px = await page.evaluate(PIXEL_AT, [x, y])
    return all(abs(a - b) <= 20 for a, b in zip(px, rgb, strict=True))


@SLOW
@pytest.mark.slow  # ~30-70 s on the loaded 2-core machine; the two tests above are the default run's
async def test_drawing_together_own_undo_text_material_follow_and_export(
        server: Any, browsers: Browsers, tmp_path: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    student = await browsers.page()
    host_token = server.token(room, "teacher", name="Учитель", role=Role.HOST)
    await join(host, join_url(server.base, room, host_token), camera=False, microphone=False)
    await join(student, join_url(server.base, room, server.token(room, "s1", name="Ученик")),
               camera=False, microphone=False)
    for p in (host, student):
        await open_board(p)
        await p.click("#board-tool-pen")
    # both draw at the same time; each sees both strokes and the other's cursor
    await asyncio.gather(drag(host, [(200, 200), (400, 220), (600, 200)]),
                         drag(student, [(200, 700), (400, 720), (600, 700)]))
    for p in (host, student):
        await eventually(lambda p=p: _count(p, "pen", 2), timeout=10, what="both strokes on both pages")
    await eventually(lambda: host.locator(".board-cursor:not([hidden])").count(), timeout=5,
                     what="the student's cursor at the host")
    # the student's undo takes back the student's stroke only, for everyone; redo brings it back
    await student.click("#board-undo")
    for p in (host, student):
        await eventually(lambda p=p: _count(p, "pen", 1), timeout=10, what="one stroke after the undo")
    left = await host.evaluate(ELEMENTS)
    assert left[0]["by"] == await host.evaluate("window.urok.session.me")
    await student.click("#board-redo")
    await eventually(lambda: _count(host, "pen", 2), timeout=10, what="the stroke back after redo")
    # a text and a sticky note
    await host.click("#board-tool-text")
    x, y = await screen_point(host, 800, 400)
    await host.mouse.click(x, y)
    await host.wait_for_selector("#board-text-input")
    await host.keyboard.type("x² = 4")
    await host.keyboard.press("Enter")
    await eventually(lambda: _count(student, "text", 1), timeout=10, what="the text at the student")
    # the host uploads a 3-page PDF, moves to its second page with "follow me": the student is there too
    from tests.unit.whiteboard.pdfs import COLORS, colour_pdf

    pdf = tmp_path / "worksheet.pdf"
    pdf.write_bytes(colour_pdf(3))
    await host.set_input_files("#board-file", str(pdf))
    await host.wait_for_function("() => window.urok.board.pages.length === 4", timeout=30_000)
    assert await _page_index(host) == 1  # the material's first page
    await host.click("#board-follow")
    await host.click("#board-next")
    assert await _page_index(host) == 2
    await eventually(lambda: _at_index(student, 2), timeout=10, what="the student following to page 3")
    pg = await student.evaluate("window.urok.board.pages[2]")
    await eventually(lambda: _colour_at(student, 800, pg["height"] / 2, COLORS[1]), timeout=10,
                     what="the PDF's page 2 as the student's background")
    await eventually(lambda: _colour_at(host, 800, pg["height"] / 2, COLORS[1]), timeout=10,
                     what="the PDF's page 2 as the host's background")
    # the export button: a PDF of all 4 pages, rendered by pdftoppm, with the first page's strokes
    href = await host.get_attribute("#board-export-pdf", "href")
    assert href
    r = await host.request.get(server.base + href)
    assert r.status == 200 and r.headers["content-type"] == "application/pdf"
    (tmp_path / "board.pdf").write_bytes(await r.body())
    renders = await asyncio.to_thread(_pdftoppm, tmp_path / "board.pdf", tmp_path)
    assert len(renders) == 4
    first = Image.open(renders[0]).convert("RGB")
    k = first.width / 1600
    box = first.crop((round(250 * k), round(190 * k), round(550 * k), round(235 * k)))  # the host's stroke
    assert min(sum(px) for px in box.getdata()) < 600, "no stroke in the exported PDF's first page"
    below = first.crop((round(250 * k), round(400 * k), round(550 * k), round(450 * k)))
    assert min(sum(px) for px in below.getdata()) > 700  # and the page is white elsewhere


def _pdftoppm(pdf: Path, where: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-r", "36", "-png", str(pdf), str(where / "r")], check=True, timeout=60)
    return sorted(where.glob("r-*.png"))


async def _count(page: Page, kind: str, n: int) -> bool:
    return len([e for e in await page.evaluate(ELEMENTS) if e.get("type") == kind]) == n


async def _at_index(page: Page, i: int) -> bool:
    return await _page_index(page) == i


@SLOW
@pytest.mark.slow  # writes a 10,000-stroke board first (~4 MB of Yjs state)
async def test_a_late_joiner_gets_and_draws_a_10k_stroke_board(server_factory: Any, browsers: Browsers) -> None:
    """The issue's goal: a late joiner receives and renders a 10,000-stroke board in < 1 s (Chromium).
    The bound here is looser (the loaded test machine); the figures are printed for docs/benchmarks.md."""
    from tests.e2e.board_peer import BoardPeer, b64

    server = await server_factory(ws_rate_per_s=1000.0, ws_rate_burst=1000, board_max_update_bytes=60_000)
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    writer = await server.join(room, "teacher", role=Role.HOST)
    await writer.event("board_state")
    peer = BoardPeer("w")
    sv = peer.doc.get_state()
    for i in range(10_000):
        peer.stroke("p1", [float(i % 1500 + k * 4) for k in range(38)], width=2.0)
        if i % 100 == 99:
            upd = peer.doc.get_update(sv)
            sv = peer.doc.get_state()
            for _ in range(100):
                r = await writer.request("board_update", update=b64(upd))
                if r["ok"]:
                    break
                assert r["error"]["code"] == "board_rate_limited", r
                await asyncio.sleep(0.3)
    late = await browsers.page()
    await late.goto(join_url(server.base, room, server.token(room, "late", name="Поздний")))
    await prejoin_ready(late)
    t0 = await late.evaluate("performance.now()")
    await late.click("#join")
    await late.wait_for_function("() => window.urok.board && window.urok.board.ready", timeout=30_000)
    await late.click("#btn-board")
    await late.wait_for_function("() => window.urok.board.lastDrawMs > 0", timeout=30_000)
    got = await late.evaluate("({state: window.urok.board.stateAt, draw: window.urok.board.lastDrawMs, "
                              "n: window.urok.board.elements().length, now: performance.now()})")
    assert got["n"] == 10_000
    received_ms = got["state"] - t0
    # drawing on it: each frame blits the settled strokes and draws the changing one only
    await late.click("#board-tool-pen")
    await drag(late, [(100, 900), (300, 950), (500, 900)])
    frame = await late.evaluate("window.urok.board.lastDrawMs")
    print(f"\n10k strokes: join click -> board_state applied {received_ms:.0f} ms, one full draw "
          f"{got['draw']:.0f} ms, a frame while drawing {frame:.1f} ms")
    assert got["draw"] < 5000 and received_ms < 20_000 and frame < got["draw"]


async def test_strokes_drawn_while_the_socket_is_down_arrive_after_the_reconnect(
        server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    student = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    await join(student, join_url(server.base, room, server.token(room, "s1", name="Ученик")),
               camera=False, microphone=False)
    await open_board(host)
    await open_board(student)
    await student.click("#board-tool-pen")
    attempts = await student.evaluate("window.urok.session.connectAttempts")
    await student.evaluate("window.urok.session.sig.ws.close()")  # the network drops the socket
    await drag(student, [(300, 500), (500, 520), (700, 500)])  # drawn meanwhile
    await student.wait_for_function(f"() => window.urok.session.connectAttempts > {attempts} && "
                                    "window.urok.session.status === 'joined' && window.urok.board.ready",
                                    timeout=30_000)
    got = await eventually(lambda: _whole_at(host, 700), timeout=15, what="the offline stroke at the host")
    assert got[0]["pts"][0] == pytest.approx(300, abs=3)
    assert await student.evaluate("window.urok.board.pendingUpdates") == 0


async def _whole_at(page: Page, x_end: float) -> list[dict[str, Any]] | None:
    got = await strokes(page)
    return got if got and got[0]["pts"][-2] == pytest.approx(x_end, abs=3) else None

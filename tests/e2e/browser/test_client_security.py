"""The browser client under its security headers: the token leaves the URL, the strict CSP breaks nothing
(no violation during a whole join with media), and no other origin can frame the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page

from signaling.rooms import Role
from tests.conftest import Server
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import audio_flowing, eventually, join, join_url, prejoin_ready, tile, video_playing

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

# Installed before any page script (Playwright's init scripts are not subject to the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def _watched_page(browsers: Browsers) -> Page:
    page = await browsers.page()
    await page.add_init_script(WATCH_CSP)
    return page


async def _violations(browsers: Browsers, page: Page) -> list[str]:
    found: list[str] = await page.evaluate("window.__cspViolations")
    found += [line for line in browsers.console.get(id(page), []) if "Content Security Policy" in line]
    return found


async def _joined(page: Page) -> str:
    await page.click("#join")
    await page.wait_for_selector("#lesson")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    pid: str = await page.evaluate("() => window.urok.session.me")
    return pid


@pytest.mark.parametrize("form", ["query", "fragment"])
async def test_the_token_leaves_the_url_and_history_and_a_reload_rejoins(
        server: Server, browsers: Browsers, form: str) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    token = server.token(room, "anna", name="Анна")
    url = (join_url(server.base, room, token, lang="en") if form == "query"
           else f"{server.base}/join/{room}?lang=en#token={token}")
    page = await browsers.page()
    await page.goto(url)
    await prejoin_ready(page)
    assert token not in page.url and "token" not in page.url
    assert page.url == f"{server.base}/join/{room}?lang=en"  # other parameters stay
    assert await page.evaluate("document.documentElement.lang") == "en"
    # the tab's history: the entry before (about:blank) and this one, rewritten; none holds the token
    assert await page.evaluate("history.length") == 2
    await page.go_back()
    assert token not in page.url
    await page.go_forward()
    await prejoin_ready(page)
    assert token not in page.url
    first = await _joined(page)
    assert token not in page.url
    # a reload of the same tab finds the token in this tab's sessionStorage and joins again
    await page.reload()
    await prejoin_ready(page)
    assert await page.text_content("#display-name") == "Анна"
    again = await _joined(page)
    assert again == first  # the same seat: the server knows it is the same person
    assert token not in page.url
    # another tab (its own sessionStorage) on the bare URL has no token
    other = await browsers.page(f"{server.base}/join/{room}?lang=en")
    await other.wait_for_selector("#message")
    assert "link is incomplete" in (await other.text_content("#message") or "")


async def test_no_csp_violation_during_a_whole_join_with_media(server: Server, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await _watched_page(browsers)
    pupil = await _watched_page(browsers)
    response = await host.goto(join_url(server.base, room, server.token(room, "t", role=Role.HOST, name="Учитель")))
    assert response is not None and "script-src 'self'" in (await response.all_headers())["content-security-policy"]
    await prejoin_ready(host)
    # the pre-join screen: camera preview and the level meter (CSSOM styles) run under the policy
    await eventually(lambda: host.evaluate("document.querySelector('#preview').videoWidth"), what="camera preview")
    pid_host = await _joined(host)
    pid_pupil = await join(pupil, join_url(server.base, room, server.token(room, "p", name="Ученик")))
    await eventually(lambda: video_playing(host, f"{tile(pid_pupil)} video"), 20.0, what="host sees the pupil")
    await eventually(lambda: video_playing(pupil, f"{tile(pid_host)} video"), 20.0, what="pupil sees the host")
    await audio_flowing(pupil)
    # the host menu (a positioned popover) and the side panel with the chat
    await host.click("#btn-host")
    await host.keyboard.press("Escape")
    await pupil.click("#btn-panel")
    await pupil.click("#tab-chat")
    await pupil.fill("#chat-input", "привет")
    await pupil.click("#chat-send")
    await host.wait_for_selector(".msg-text >> text=привет", state="attached")
    await pupil.click("#btn-camera")
    await pupil.click("#btn-leave")
    await pupil.wait_for_selector("#rejoin")
    for page in (host, pupil):
        assert not await _violations(browsers, page), browsers.log(page)


@pytest.fixture
async def other_origin(server: Server) -> AsyncIterator[str]:
    """A page on another origin (another port of 127.0.0.1) that frames the lesson page."""
    framed: dict[str, str] = {}

    async def frame_page(request: web.Request) -> web.Response:
        return web.Response(text=f'<!doctype html><iframe id="lesson" src="{framed["url"]}"></iframe>',
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/", frame_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    framed["url"] = join_url(server.base, room, server.token(room, "victim", role=Role.HOST))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_another_origin_cannot_frame_the_page(other_origin: str, browsers: Browsers) -> None:
    browsers.expect_csp_refusals = True  # the frame-ancestors refusal below is the point
    page = await browsers.page()
    await page.goto(other_origin)
    await page.wait_for_selector("#lesson")
    frame: Any = None

    async def settled() -> bool:
        nonlocal frame
        frame = next((f for f in page.frames if f is not page.main_frame), None)
        return frame is not None and frame.url != "about:blank"

    await eventually(settled, what="the iframe to settle")
    await page.wait_for_timeout(1000)  # time for the client to boot, were it allowed to
    # Chromium replaces a refused frame by its error page: no client, no token read, no host controls
    assert frame.url.startswith("chrome-error://"), frame.url
    assert not any("/web/main.js" in f.url for f in page.frames)
    log = "\n".join(browsers.console.get(id(page), []))
    assert "frame-ancestors" in log, log

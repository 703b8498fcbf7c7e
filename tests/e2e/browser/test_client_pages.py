"""The browser client without the media plane: token check, pre-join, listener mode, presence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import eventually, join, join_url, prejoin_ready, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


async def test_static_files_are_served_with_the_right_types(server: Any) -> None:
    async with server.http.get(server.base + "/web/main.js") as r:
        assert r.status == 200
        assert r.content_type in ("text/javascript", "application/javascript")
        assert r.headers["Cache-Control"] == "no-cache"
    async with server.http.get(server.base + "/web/app.css") as r:
        assert r.status == 200 and r.content_type == "text/css"
    for path in ("/", "/join/anything"):
        async with server.http.get(server.base + path) as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert "/web/main.js" in await r.text()
    async with server.http.get(server.base + "/web/../pyproject.toml") as r:
        assert r.status in (403, 404)


async def test_page_without_token_shows_a_message(server: Any, browsers: Browsers) -> None:
    page = await browsers.page(server.base + "/join/some-room")
    await page.wait_for_selector("#message")
    text = await page.text_content("#message")
    assert text and "Ссылка неполная" in text, browsers.log(page)  # plain words, no "токен"
    page_en = await browsers.page(server.base + "/", locale="en-US")
    await page_en.wait_for_selector("#message")
    assert "link is incomplete" in (await page_en.text_content("#message") or "")
    bad = await browsers.page(server.base + "/join/r?token=not-a-jwt&lang=en")
    await bad.wait_for_selector("#message")
    assert "damaged" in (await bad.text_content("#message") or "")


async def test_prejoin_shows_name_preview_and_level(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    token = server.token(room, "anna", name="Анна Петрова <b>x</b>")
    page = await browsers.page(join_url(server.base, room, token))
    await prejoin_ready(page)
    # the UTF-8 name from the JWT payload, as text (the markup is not interpreted)
    assert await page.text_content("#display-name") == "Анна Петрова <b>x</b>"
    assert await page.locator("#display-name b").count() == 0
    assert await page.evaluate("document.documentElement.lang") == "ru"
    assert "Войти на урок" in (await page.text_content("#join") or "")
    width = await eventually(lambda: page.evaluate("document.querySelector('#preview').videoWidth"),
                             what="camera preview")
    assert width > 0
    # the level meter moves (the fake microphone beeps)
    levels: list[float] = []
    for _ in range(30):
        levels.append(float(await page.evaluate("document.querySelector('#meter-bar').dataset.level || 0")))
        await page.wait_for_timeout(100)
    assert max(levels) > 0.2 and max(levels) - min(levels) > 0.1, levels
    # device lists are filled (the fake devices)
    assert await page.locator("#camera-select option").count() >= 1
    assert await page.locator("#mic-select option").count() >= 1
    await page.click("#test-speaker")  # plays a chime through the chosen output; must not throw
    await page.screenshot(path=str(artifacts / "prejoin-desktop-1280x800.png"))
    await page.set_viewport_size(PHONE)
    await page.wait_for_timeout(200)
    await page.screenshot(path=str(artifacts / "prejoin-phone-390x844.png"))
    # camera off in the pre-join screen: the camera is released, the avatar shows
    await page.click("#prejoin-camera")
    await page.wait_for_function("() => document.querySelector('#preview').hidden")
    assert await page.evaluate("window.urok.prejoin.video") is None


async def test_denied_devices_join_as_listener(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    token = server.token(room, "boris", name="Борис")
    page = await browsers.page(join_url(server.base, room, token), deny=True)
    await prejoin_ready(page)
    notice = page.locator("#prejoin-notice")
    assert await notice.is_visible()
    assert "слушатель" in (await notice.text_content() or "")
    await page.click("#join")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    assert await page.locator("#listener-notice").is_visible()
    assert "слушатель" in (await page.text_content("#listener-notice") or "")
    assert await page.locator("#btn-mic").is_hidden() or await page.locator("#btn-mic").is_disabled()


async def test_presence_tiles_and_leave(server: Any, browsers: Browsers) -> None:
    """Two pages in one room see each other's tiles (names as text); one leaves, its tile goes."""
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    a = await browsers.page()
    b = await browsers.page(viewport=PHONE)
    pid_a = await join(a, join_url(server.base, room, server.token(room, "a", name="Анна")), camera=False)
    pid_b = await join(b, join_url(server.base, room, server.token(room, "b", name="<img src=x onerror=alert(1)>")),
                       camera=False)
    await a.wait_for_selector(tile(pid_b))
    await b.wait_for_selector(tile(pid_a))
    assert "<img src=x onerror=alert(1)>" in (await a.text_content(tile(pid_b)) or "")
    assert await a.locator(f"{tile(pid_b)} img").count() == 0
    assert "Анна" in (await b.text_content(tile(pid_a)) or "")
    await b.click("#btn-leave")
    await b.wait_for_selector("#rejoin")
    await a.wait_for_selector(tile(pid_b), state="detached", timeout=10_000)
    # rejoin from the "you left" screen goes through the pre-join screen again
    await b.click("#rejoin")
    await prejoin_ready(b)


async def test_waiting_room_then_admitted(server: Any, browsers: Browsers) -> None:
    """A guest waits (default guest policy) with a clear message until a host admits them."""
    room = await server.create_room()
    host = await server.join(room, "teacher", role=Role.HOST, name="Учитель")
    page = await browsers.page()
    await page.goto(join_url(server.base, room, server.token(room, "guest", name="Гость", registered=False)))
    await prejoin_ready(page)
    await page.click("#join")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'waiting'")
    assert "впустит" in (await page.text_content("#banner") or "")
    waiting = await host.event("participant_waiting")
    r = await host.request("admit", participant_ids=[waiting["participant_id"]])
    assert r["ok"], r
    await page.wait_for_function("() => window.urok.session.status === 'joined'")
    assert await page.locator("#banner").is_hidden()
    host_pid = (await host.event("welcome"))["participant_id"]
    await page.wait_for_selector(tile(host_pid))


NO_CAMERA_JS = """(() => {
  const md = navigator.mediaDevices;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => (c && c.video)
    ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError')) : orig(c);
})();"""


async def test_no_camera_joins_with_microphone_only(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page(locale="en-US")
    await page.add_init_script(NO_CAMERA_JS)
    await page.goto(join_url(server.base, room, server.token(room, "c", name="Clara")))
    await prejoin_ready(page)
    assert "No camera" in (await page.text_content("#prejoin-notice") or "")
    assert await page.evaluate("window.urok.prejoin.audio !== null")
    await page.click("#join")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    assert await page.locator("#listener-notice").is_hidden()
    assert await page.locator("#btn-mic").is_enabled()


async def test_viewer_is_not_asked_for_devices(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page(locale="en-US")
    await page.goto(join_url(server.base, room, server.token(room, "v", name="Viewer", role=Role.VIEWER)))
    await prejoin_ready(page)
    assert "viewer" in (await page.text_content("#prejoin-notice") or "")
    assert await page.evaluate("window.urok.prejoin.audio === null && window.urok.prejoin.video === null")
    await page.click("#join")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    for button in ("#btn-mic", "#btn-camera", "#btn-screen"):
        assert await page.locator(button).is_hidden()
    assert await page.evaluate("window.urok.pcs.publisher") is None


async def test_final_closes_show_why(server: Any, browsers: Browsers) -> None:
    """Another tab takes the seat; the API removes a participant; the lesson ends: no reconnect loops."""
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    url = join_url(server.base, room, server.token(room, "dima", name="Дима"))
    first = await browsers.page()
    await join(first, url, camera=False)
    second = await browsers.page()
    await join(second, url, camera=False)
    await first.wait_for_selector("#rejoin")
    assert "другой вкладке" in (await first.text_content("#message") or "")
    status, _ = await server.rest("DELETE", f"/v1/rooms/{room}/participants/dima")
    assert status == 200
    await second.wait_for_selector("#message")
    assert "удалили" in (await second.text_content("#message") or "")
    other = await browsers.page()
    await join(other, join_url(server.base, room, server.token(room, "eva", name="Ева")), camera=False)
    status, _ = await server.rest("DELETE", f"/v1/rooms/{room}")
    assert status == 200
    await other.wait_for_selector("#message")
    assert "закончился" in (await other.text_content("#message") or "")
    await other.wait_for_timeout(1000)
    assert await other.evaluate("window.urok.session.statusLog.includes('reconnecting')") is False


async def test_host_mute_is_followed(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await server.join(room, "teacher", role=Role.HOST, name="Учитель")
    page = await browsers.page()
    pid = await join(page, join_url(server.base, room, server.token(room, "pupil", name="Ученик")), camera=False)
    await page.wait_for_function("() => window.urok.session.local.micOn === true")
    r = await host.request("mute", participant_id=pid, source="microphone")
    assert r["ok"], r
    await page.wait_for_function("() => window.urok.session.local.micOn === false")
    assert await page.evaluate("window.urok.session.local.audio.enabled") is False
    assert "выключил ваш микрофон" in (await page.text_content("#banner") or "")
    assert "off" in (await page.get_attribute("#btn-mic", "class") or "")

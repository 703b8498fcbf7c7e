"""The lesson screen, round two (issue 15): lock texts as a student reads them and their lifting,
private chat between students off by default (to the teacher still possible), safe chat links, the
teacher's join/leave notices, the clock and "extend", speaker view following the active speaker, pin,
a webinar's viewers without tiles, the end screen with the attendance."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import eventually, join, join_url, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector)) or ""


async def test_lockdown_says_what_is_locked_and_when_it_is_lifted(server: Any, browsers: Browsers,
                                                                  artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)), camera=False)
    student = await browsers.page()
    await join(student, join_url(server.base, room, server.token(room, "s", name="Ученик")), camera=True)
    await student.wait_for_function("() => window.urok.session.local.micOn && window.urok.session.local.camOn")
    await host.evaluate("window.urok.session.request('lockdown', {enabled: true})")
    await student.wait_for_function("() => window.urok.session.local.micOn === false")
    lock_line = student.locator("#lock-banner")
    await lock_line.wait_for()
    said = await lock_line.text_content() or ""
    for item in ("включать камеру", "включать микрофон", "показывать экран", "писать в чат"):
        assert item in said, said
    banner = await text(student, "#banner")
    assert "экран" not in banner, banner  # never shared a screen: not told it was stopped
    assert "вашу камеру" in banner or "ваш микрофон" in banner, banner
    await student.screenshot(path=str(artifacts / "client-lockdown-1280x800.png"))
    await host.evaluate("window.urok.session.request('lockdown', {enabled: false})")
    await lock_line.wait_for(state="hidden")
    await eventually(lambda: _has(student, "#banner", "Можно снова включить микрофон"), what="the mic may come back")
    assert "снял все запреты" in await text(student, "#banner")
    assert await student.locator("#btn-mic").is_enabled()
    # a single lock: only it is said; its lifting says it is allowed again
    await host.evaluate("window.urok.session.request('set_lock', {camera: true})")
    await eventually(lambda: _has(student, "#lock-banner", "включать камеру"), what="camera lock said")
    assert "писать в чат" not in await text(student, "#lock-banner")  # ("включать" holds "чат")
    await host.evaluate("window.urok.session.request('set_lock', {camera: false})")
    await lock_line.wait_for(state="hidden")


async def _has(page: Page, selector: str, part: str) -> bool:
    loc = page.locator(selector)
    return await loc.is_visible() and part in (await loc.text_content() or "")


async def test_private_chat_between_students_is_off_by_default_and_links_are_safe(server: Any,
                                                                                 browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    host_pid = await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
                          camera=False, microphone=False)
    a = await browsers.page()
    await join(a, join_url(server.base, room, server.token(room, "a", name="Оля")), camera=False, microphone=False)
    b = await browsers.page()
    b_pid = await join(b, join_url(server.base, room, server.token(room, "b", name="Петя")), camera=False,
                       microphone=False)
    await open_chat(a)
    await eventually(lambda: _option_count(a, host_pid), what="the teacher in the recipients")
    assert await a.locator(f'#chat-to option[value="{b_pid}"]').count() == 0  # no private line to another student
    await open_chat(host)
    await a.select_option("#chat-to", host_pid)
    await a.fill("#chat-input", "Вопрос учителю")
    await a.click("#chat-send")
    await host.locator("#chat-log .msg.private", has_text="Вопрос учителю").wait_for()
    await a.select_option("#chat-to", "")
    await a.fill("#chat-input", "Смотрите https://example.org/page?a=1. и javascript:alert(1)")
    await a.click("#chat-send")
    msg = b.locator("#chat-log .msg", has_text="Смотрите")
    await open_chat(b)
    await msg.wait_for()
    links = msg.locator("a")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://example.org/page?a=1"
    assert await links.get_attribute("rel") == "noopener noreferrer"
    assert "javascript:alert(1)" in (await msg.locator(".msg-text").text_content() or "")


async def open_chat(page: Page) -> None:
    """The chat tab, whether or not the panel is already open (a host's opens by itself on a
    desktop, callui.js, so a blind click on "Panel" would close it)."""
    if not await page.locator("#tab-chat").is_visible():
        await page.click("#btn-panel")
    await page.click("#tab-chat")
    await page.locator("#chat-input").wait_for()


async def _option_count(page: Page, pid: str) -> int:
    n: int = await page.locator(f'#chat-to option[value="{pid}"]').count()
    return n


async def test_host_notices_clock_extend_and_the_end_screen(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", duration_minutes=40, name="Химия, 9 В")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)), camera=False,
               microphone=False)
    await eventually(lambda: _has(host, "#lesson-clock", "Осталось"), what="the lesson clock")
    student = await browsers.page()
    await join(student, join_url(server.base, room, server.token(room, "s", name="Ваня Петров")), camera=False,
               microphone=False)
    await eventually(lambda: _has(host, "#banner", "Ваня Петров входит на урок"), what="join notice")
    assert await student.locator("#btn-extend").is_hidden()  # students do not extend
    before = float(await host.get_attribute("#lesson-clock", "data-ends-at") or 0)
    await host.click("#btn-extend")
    await eventually(lambda: _has(host, "#banner", "продлён"), what="extended notice")
    after = float(await host.get_attribute("#lesson-clock", "data-ends-at") or 0)
    assert after - before == pytest.approx(600, abs=1)
    await student.click("#btn-leave")
    await eventually(lambda: _has(host, "#banner", "Ваня Петров выходит с урока"), what="leave notice")
    assert "Химия, 9 В" in await text(student, "#message") and await student.locator("#close-tab").is_visible()
    await host.click("#btn-host")
    await host.click("#end-lesson")
    await host.click("#end-confirm")
    await host.wait_for_selector("#attendance-count")
    assert "Химия, 9 В" in await text(host, "#message")
    assert "Ваня Петров" in await text(host, "#attendance")
    async with host.expect_download() as dl:
        await host.click("#attendance-csv")
    path = await (await dl.value).path()
    csv_text = await asyncio.to_thread(Path(str(path)).read_text, encoding="utf-8-sig")
    assert "Ваня Петров" in csv_text
    await host.screenshot(path=str(artifacts / "client-end-screen-1280x800.png"))


async def test_speaker_view_follows_the_speaker_and_pin_holds(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)), camera=False,
               microphone=False)
    quiet = await browsers.page()
    quiet_pid = await join(quiet, join_url(server.base, room, server.token(room, "q", name="Тихий")), microphone=False)
    talker = await browsers.page()
    talker_pid = await join(talker, join_url(server.base, room, server.token(room, "v", name="Говорящий")))
    await host.click("#btn-view")
    assert await host.get_attribute("#btn-view", "data-mode") == "speaker"
    # the fake microphone beeps: the talker becomes the large tile
    await host.wait_for_function("(pid) => document.querySelector('#grid').dataset.featured === pid", arg=talker_pid,
                                 timeout=20_000)
    assert await host.locator(f"{tile(talker_pid)}.featured").is_visible()
    await host.screenshot(path=str(artifacts / "client-speaker-view-1280x800.png"))
    # the teacher pins the quiet one: stays large while the other speaks
    await host.hover(tile(quiet_pid))
    await host.click(f"{tile(quiet_pid)} .pin-btn")
    await host.wait_for_function("(pid) => document.querySelector('#grid').dataset.featured === pid", arg=quiet_pid)
    await host.wait_for_timeout(1500)
    assert await host.get_attribute("#grid", "data-featured") == quiet_pid
    # back to the grid: nobody featured
    await host.click("#btn-view")
    await host.wait_for_function("() => document.querySelector('#grid').dataset.featured === ''")


async def test_webinar_viewers_have_no_tiles_and_pages_receive_only_their_video(server: Any,
                                                                               browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", mode="webinar")
    host = await browsers.page()
    host_token = server.token(room, "t", name="Лектор", role=Role.HOST)
    await join(host, f"{server.base}/join/{room}?page_size=2&token={host_token}", microphone=False)
    viewer = await browsers.page(viewport=PHONE)
    viewer_pid = await join(viewer, join_url(server.base, room, server.token(room, "v", name="Зритель",
                                                                            role=Role.VIEWER)),
                            camera=False, microphone=False)  # a viewer's pre-join offers no devices
    await eventually(lambda: _has(host, "#count", "зритель"), what="the audience counted")
    assert await host.locator(tile(viewer_pid)).count() == 0
    assert await viewer.locator(".tile.self").count() == 0
    # two speakers with cameras and a page of two tiles: the host's second page is not received
    s1 = await browsers.page()
    await join(s1, join_url(server.base, room, server.token(room, "s1", name="Спикер 1", role=Role.COHOST)),
               microphone=False)
    s2 = await browsers.page()
    p2 = await join(s2, join_url(server.base, room, server.token(room, "s2", name="Спикер 2", role=Role.COHOST)),
                    microphone=False)
    await host.locator("#pager").wait_for()
    assert await host.locator(tile(p2)).is_hidden()
    await host.wait_for_function("() => (window.urok.session.unsubscribed || new Set()).size === 1", timeout=10_000)
    await host.click("#page-next")
    await host.locator(tile(p2)).wait_for()
    await host.wait_for_function("(pid) => { const s = window.urok.session; const ids = [...(s.unsubscribed || [])];"
                                 " return ids.length >= 1 && ![...s.trackMap.published.values()].some("
                                 "(t) => ids.includes(t.track_id) && t.participant_id === pid); }", arg=p2)


FITS = "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"


async def test_phone_lesson_and_end_screens_fit_390_px(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", duration_minutes=45,
                                    name="Литература, 8 «А»: «Капитанская дочка»")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               microphone=False)
    phone = await browsers.page(viewport=PHONE)
    await join(phone, join_url(server.base, room, server.token(room, "p", name="Анна Константиновна Преображенская")),
               microphone=False)
    await phone.locator("#lesson-clock").wait_for()
    fit = await phone.evaluate(FITS)
    assert fit["scroll"] <= 390, fit
    await phone.screenshot(path=str(artifacts / "client-lesson-390x844.png"))
    await open_chat(phone)
    assert (await phone.evaluate(FITS))["scroll"] <= 390
    await phone.screenshot(path=str(artifacts / "client-chat-390x844.png"))
    await host.screenshot(path=str(artifacts / "client-lesson-1280x800.png"))
    await phone.click("#panel-close")
    await phone.click("#btn-leave")
    await phone.wait_for_selector("#close-tab")
    assert "Капитанская дочка" in await text(phone, "#message")
    assert (await phone.evaluate(FITS))["scroll"] <= 390
    await phone.screenshot(path=str(artifacts / "client-end-390x844.png"))

"""The host's tools of the round (issue 15), in Chromium: who may enter, switched from the host menu
during the lesson (everyone, registered only, ask me, nobody); the spotlight that features one
person large for everyone (late joiners too); a co-host promotion told to the person; the host's
notices of hands; one's own tile hidden and remembered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import eventually, join, join_url, prejoin_ready, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def person(pid: str) -> str:
    return f'.person[data-participant-id="{pid}"]'


async def person_action(host: Page, pid: str, action: str) -> None:
    if not await host.locator("#pane-participants").is_visible():
        if not await host.locator("#tab-participants").is_visible():
            await host.click("#btn-panel")
        await host.click("#tab-participants")
    await host.click(f"{person(pid)} .more")
    await host.click(f'{person(pid)} [data-action="{action}"]')


async def banner_has(page: Page, part: str) -> bool:
    loc = page.locator("#banner")
    return await loc.is_visible() and part in (await loc.text_content() or "")


async def set_policy(host: Page, policy: str) -> None:
    if not await host.locator("#host-menu").is_visible():
        await host.click("#btn-host")
    await host.select_option("#guest-policy", policy)
    await host.wait_for_function("(p) => window.urok.session.room.settings.guest_policy === p", arg=policy)


async def knock(browsers: Browsers, url: str) -> Page:
    page = await browsers.page()
    await page.goto(url)
    await prejoin_ready(page)
    await page.click("#join")
    return page


async def test_host_switches_who_may_enter_during_the_lesson(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    inside = await browsers.page()
    await join(inside, join_url(server.base, room, server.token(room, "in", name="Уже на уроке")), camera=False,
               microphone=False)
    # ask me: a newcomer waits
    await set_policy(host, "ASK_HOST")
    await eventually(lambda: banner_has(host, "Только с моего разрешения"), what="the host told the new rule")
    await host.screenshot(path=str(artifacts / "client-host-menu-1280x800.png"))
    a = await knock(browsers, join_url(server.base, room, server.token(room, "a", name="Аня")))
    await a.wait_for_function("() => window.urok.session.status === 'waiting'")
    await eventually(lambda: banner_has(host, "Аня ждёт в зале ожидания"), what="the waiting notice")
    await a.close()  # each page is a Chromium renderer: keep the loaded machine's count low
    # registered only: a guest is refused at once, a registered student enters
    await set_policy(host, "ALWAYS_DENY")
    guest = await knock(browsers, join_url(server.base, room, server.token(room, "g", name="Гость", registered=False)))
    await guest.wait_for_selector("#message")
    assert "запрещён" in (await guest.text_content("#message") or "")
    await guest.close()
    b = await knock(browsers, join_url(server.base, room, server.token(room, "b", name="Боря")))
    await b.wait_for_function("() => window.urok.session.status === 'joined'")
    await b.close()
    # nobody: a newcomer is refused, who is in stays (and may come back after a drop)
    await set_policy(host, "LOCKED")
    c = await knock(browsers, join_url(server.base, room, server.token(room, "c", name="Вика")))
    await c.wait_for_selector("#message")
    await c.close()
    assert await inside.evaluate("window.urok.session.status") == "joined"
    inside_pid = await inside.evaluate("window.urok.session.me")
    await inside.evaluate("window.urok.session.sig.ws.close(3000)")  # a dropped connection, not a leave
    await inside.wait_for_function("() => window.urok.session.status !== 'joined'")
    await inside.wait_for_function("() => window.urok.session.status === 'joined'", timeout=30_000)
    assert await inside.evaluate("window.urok.session.me") == inside_pid
    # the notices' sound is the host's choice, remembered by the browser
    if not await host.locator("#host-menu").is_visible():
        await host.click("#btn-host")
    await host.check("#notify-sound")
    assert await host.evaluate("localStorage.getItem('urok.notifySound')") == "1"
    await host.keyboard.press("Escape")
    # everyone again: the next one walks in; the student's page never showed the menu
    await set_policy(host, "ALWAYS_ACCEPT")
    d = await knock(browsers, join_url(server.base, room, server.token(room, "d", name="Гоша")))
    await d.wait_for_function("() => window.urok.session.status === 'joined'")
    assert await d.locator("#btn-host").is_hidden()


async def test_spotlight_for_everyone_promotion_hands_and_self_view(server: Any, browsers: Browsers,
                                                                    artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               microphone=False)
    a = await browsers.page()
    a_pid = await join(a, join_url(server.base, room, server.token(room, "a", name="Отвечает")), microphone=False)
    b = await browsers.page(viewport=PHONE)
    await join(b, join_url(server.base, room, server.token(room, "b", name="Слушает")), camera=False,
               microphone=False)
    # the host puts the one who answers in the spotlight: every page features them
    await person_action(host, a_pid, "spotlight")
    featured = "(pid) => document.querySelector('#grid').dataset.featured === pid"
    await b.wait_for_function(featured, arg=a_pid)
    await host.wait_for_function(featured, arg=a_pid)
    await eventually(lambda: banner_has(b, "Все видят крупно: Отвечает"), what="the spotlight said")
    assert await b.locator(f"{tile(a_pid)}.spotlit").is_visible()
    await a.wait_for_function("() => document.querySelector('.tile.self').classList.contains('featured')")
    await b.screenshot(path=str(artifacts / "client-spotlight-390x844.png"))
    # a late joiner sees it too
    late = await browsers.page()
    await join(late, join_url(server.base, room, server.token(room, "l", name="Опоздал")), camera=False,
               microphone=False)
    await late.wait_for_function(featured, arg=a_pid)
    # lifted: back to each page's own view
    await person_action(host, a_pid, "unspotlight")
    await b.wait_for_function("() => document.querySelector('#grid').dataset.featured === ''")
    await eventually(lambda: banner_has(b, "Выделение для всех снято"), what="the spotlight lifted")

    # a hand: the host is told; a promotion: the student is told
    await b.click("#btn-hand")
    await eventually(lambda: banner_has(host, "Слушает поднимает руку"), what="the hand notice")
    b_pid: str = await b.evaluate("window.urok.session.me")
    await person_action(host, b_pid, "make-cohost")
    await eventually(lambda: banner_has(b, "сделал вас соведущим"), what="the promotion told")
    await b.locator("#btn-host").wait_for()

    # self view hidden, and remembered by the next page of the same browser
    assert await late.locator(".tile.self").is_visible()
    await late.click("#btn-self-view")
    await late.locator(".tile.self").wait_for(state="hidden")
    assert await late.get_attribute("#btn-self-view", "aria-pressed") == "true"
    again = await late.context.new_page()
    await join(again, join_url(server.base, room, server.token(room, "l2", name="Ещё раз")), camera=False,
               microphone=False)
    assert await again.locator(".tile.self").is_hidden()

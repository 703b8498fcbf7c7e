"""What the teacher sees of the students (issue 15), in Chromium: a student who muted differs from
one who has no microphone (or blocked it), and "ask to unmute" is offered only to the first;
reactions are drawn from the SVGs urok serves (no emoji font needed); long names use the room a
tile has; a 4:3 camera fits its 16:9 tile and is not cropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import eventually, join, join_url, prejoin_ready, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

LONG_NAME = "Анна-Мария Константиновна Преображенская"


def person(pid: str) -> str:
    return f'.person[data-participant-id="{pid}"]'


async def actions_of(host: Page, pid: str) -> list[str]:
    if not await host.locator("#pane-participants").is_visible():
        await host.click("#tab-participants")
    more = host.locator(f"{person(pid)} .more")
    if await more.get_attribute("aria-expanded") != "true":
        await more.click()
    found: list[str] = await host.eval_on_selector_all(f"{person(pid)} [data-action]",
                                                      "(els) => els.map((e) => e.dataset.action)")
    await more.click()  # closed again
    return found


async def test_muted_differs_from_no_microphone_and_ask_is_offered_only_when_it_helps(
        server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    muted = await browsers.page()
    muted_pid = await join(muted, join_url(server.base, room, server.token(room, "m", name="Выключил")), camera=False)
    talking_page = await browsers.page()
    talking = await join(talking_page, join_url(server.base, room, server.token(room, "v", name="Говорит")),
                         camera=False)
    # a student whose browser blocks the microphone joins as a listener: no microphone at all
    blocked = await browsers.page(join_url(server.base, room, server.token(room, "b", name="Без микрофона")),
                                  deny=True)
    await prejoin_ready(blocked)
    await blocked.click("#join")
    await blocked.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'")
    blocked_pid: str = await blocked.evaluate("window.urok.session.me")
    await muted.click("#btn-mic")
    await muted.wait_for_function("() => window.urok.session.local.micOn === false")

    async def icons_right() -> bool:
        m = host.locator(f"{person(muted_pid)} .muted-icon.mic")
        n = host.locator(f"{person(blocked_pid)} .muted-icon.no-mic")
        v = host.locator(f"{person(talking)} .muted-icon.mic")
        return (await m.count() == 1 and "no-mic" not in (await m.get_attribute("class") or "")
                and await n.count() == 1 and await v.count() == 0)

    if not await host.locator("#pane-participants").is_visible():
        await host.click("#tab-participants")
    await eventually(icons_right, what="muted, no microphone and talking told apart")
    assert "нет микрофона" in (await host.text_content(f"{person(blocked_pid)} .no-mic") or "")
    await host.screenshot(path=str(artifacts / "client-people-1280x800.png"))
    assert "ask-unmute" in await actions_of(host, muted_pid)
    assert "ask-unmute" not in await actions_of(host, blocked_pid)  # nothing to turn on
    assert "ask-unmute" not in await actions_of(host, talking)  # already on


async def test_reactions_are_drawn_from_shipped_svgs(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    student = await browsers.page()
    pid = await join(student, join_url(server.base, room, server.token(room, "s", name="Ученик")), camera=False,
                     microphone=False)
    await student.click("#btn-react")
    menu = await student.eval_on_selector_all(
        "#reaction-menu img.emoji", "(els) => els.map((e) => ({src: e.getAttribute('src'), w: e.naturalWidth}))")
    assert menu and all(m["src"].startswith("/web/vendor/") and m["w"] > 0 for m in menu), menu
    await student.click('#reaction-menu [data-emoji="👍"]')
    img = host.locator(f'{tile(pid)} .reaction-bubble img.emoji')
    await img.wait_for()
    await host.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=await img.element_handle())
    assert await img.get_attribute("alt") == "👍"


FIT = """(sel) => {
  const t = document.querySelector(sel);
  const v = t.querySelector('video');
  const name = t.querySelector('.name');
  return {fit: getComputedStyle(v).objectFit, vw: v.videoWidth, vh: v.videoHeight,
          truncated: name.scrollWidth > name.clientWidth + 1 || name.scrollHeight > name.clientHeight + 1,
          text: name.textContent, tileW: t.clientWidth};
}"""


async def test_long_names_show_whole_and_cameras_fit(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               microphone=False)
    student = await browsers.page()
    pid = await join(student, join_url(server.base, room, server.token(room, "s", name=LONG_NAME)), microphone=False)
    await host.wait_for_function("(sel) => { const v = document.querySelector(sel + ' video');"
                                 " return v && v.videoWidth > 0; }", arg=tile(pid), timeout=20_000)
    r = await host.evaluate(FIT, tile(pid))
    assert r["text"] == LONG_NAME and not r["truncated"], r
    # Chromium's fake camera is 4:3 in a 16:9 tile: fitted (letterboxed), not cropped
    assert r["vw"] * 3 == r["vh"] * 4 and r["fit"] == "contain", r
    await host.screenshot(path=str(artifacts / "client-grid-1280x800.png"))

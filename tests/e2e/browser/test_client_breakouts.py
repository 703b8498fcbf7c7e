"""Breakout rooms in Chromium (issue 16): a host and three students; the host opens two groups from
the panel; each student sees its group, the timer and only its group's tiles; the host broadcasts,
hops into group 1 and is heard there and not in group 2; the close with a countdown brings everyone
back and the main room's grid shows all four again; students choose their group within a cap,
ask for help and chat in their group."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import audio_packets, eventually, join, join_url, tile

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def visible(page: Page, selector: str) -> bool:
    return await page.locator(selector).is_visible()


async def shown_tiles(page: Page) -> set[str]:
    pids: list[str] = await page.evaluate("""() => [...document.querySelectorAll('#grid .tile, .tile')]
        .filter((el) => el.offsetParent !== null && !el.classList.contains('self'))
        .map((el) => el.dataset.participantId)""")
    return set(pids)


# The host's microphone sends 50 packets/s: more than 10 new ones is audio arriving, and 1 s of
# silence (after what was in flight arrived) would have held ~50 (a margin of 5 either way).
GROWTH = 10


async def hears(page: Page, timeout: float = 15.0) -> None:
    """Audio arrives at this page: more than GROWTH packets after the call, within ``timeout``."""
    before = await audio_packets(page)

    async def grew() -> bool:
        return await audio_packets(page) > before + GROWTH

    await eventually(grew, timeout, what="audio arriving")


async def silent(*pages: Page) -> list[bool]:
    """Whether each page receives no audio over 1 s (after what was in flight arrived); the pages at once."""
    async def one(page: Page) -> bool:
        await page.wait_for_timeout(500)
        before = await audio_packets(page)
        await page.wait_for_timeout(1000)
        return await audio_packets(page) <= before + GROWTH

    return list(await asyncio.gather(*(one(p) for p in pages)))


async def test_a_host_opens_two_groups_broadcasts_visits_one_and_closes_them(server: Any, browsers: Browsers,
                                                                             artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    host_pid = await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
                          camera=False, microphone=True)
    pages: dict[str, Page] = {}
    for i, name in enumerate(["Оля", "Петя", "Катя"]):
        p = await browsers.page()
        pid = await join(p, join_url(server.base, room, server.token(room, f"s{i}", name=name)), camera=False,
                         microphone=False)
        pages[pid] = p
    everyone = {host_pid, *pages}
    for p in pages.values():
        await eventually(partial(_tiles_are, p, everyone), what="the whole class's tiles")

    # the host's panel: two groups, split evenly, ten minutes
    if not await visible(host, "#tab-breakouts"):
        await host.click("#btn-panel")
    await host.click("#tab-breakouts")
    await host.fill("#bo-count", "2")
    await host.select_option("#bo-assign", "auto")
    await host.fill("#bo-minutes", "10")
    await host.click("#bo-start")
    await host.locator("#bo-open-tools").wait_for()
    groups: list[str] = await host.evaluate(
        "() => [...document.querySelectorAll('#bo-groups .bo-group[data-breakout-id]')]"
        ".map((g) => g.dataset.breakoutId).filter(Boolean)")
    assert len(groups) == 2, groups
    members: dict[str, list[str]] = {}
    for g in groups:
        members[g] = await host.evaluate(
            "(g) => [...document.querySelectorAll(`.bo-group[data-breakout-id='${g}'] .bo-member`)]"
            ".map((m) => m.dataset.participantId)", g)
    assert sorted(len(m) for m in members.values()) == [1, 2] and set().union(*members.values()) == set(pages)
    g1, g2 = groups
    in_g1, in_g2 = pages[members[g1][0]], pages[members[g2][0]]

    for pid, page in pages.items():
        mine = g1 if pid in members[g1] else g2
        await page.locator("#bo-bar").wait_for()
        where = await page.text_content("#bo-where") or ""
        assert ("Группа 1" if mine == g1 else "Группа 2") in where, where
        left = int(await page.get_attribute("#bo-timer", "data-remaining") or 0)
        assert 540 < left <= 600, left
        assert re.fullmatch(r"осталось (10:00|9:[0-5]\d)", await page.text_content("#bo-timer") or ""), left
        # only the own group's tiles (the host stays in the main room)
        await eventually(partial(_tiles_are, page, set(members[mine])), what=f"{pid} sees its group only")
    await in_g1.screenshot(path=str(artifacts / "client-breakout-student-1280x800.png"))

    # a broadcast reaches every group
    await host.fill("#bo-cast-input", "Осталось две минуты")
    await host.click("#bo-cast-send")
    for page in pages.values():
        await page.locator("#bo-broadcast", has_text="Осталось две минуты").wait_for()

    # the host hops into group 1: heard there, not in group 2
    assert await silent(in_g1, in_g2) == [True, True]  # the host is in the main room
    await host.click(f".bo-group[data-breakout-id='{g1}'] .bo-join")
    await host.locator("#bo-where", has_text="Группа 1").wait_for()
    await in_g1.locator(tile(host_pid)).wait_for()
    await hears(in_g1)  # group 1 hears the host
    assert await silent(in_g2) == [True], "group 2 hears the host"
    assert host_pid not in await shown_tiles(in_g2)
    await host.screenshot(path=str(artifacts / "client-breakout-host-1280x800.png"))

    # the close, with a countdown everyone sees, brings everyone back
    # the shortest of the menu's countdowns (10 s) less: 5 s leaves the pages' checks below a clear
    # margin and the same path runs (the select's value, breakouts_end with countdown_s, the timer)
    await host.evaluate("() => document.querySelector('#bo-end-countdown').add(new Option('0:05', '5'))")
    await host.select_option("#bo-end-countdown", "5")
    await host.click("#bo-end")
    for page in pages.values():
        await page.locator("#bo-bar.closing").wait_for()
        assert "закроются через 0:" in (await page.text_content("#bo-timer") or "")
    for page in [host, *pages.values()]:
        await page.locator("#bo-bar").wait_for(state="hidden", timeout=20_000)
    for page in pages.values():
        await eventually(partial(_tiles_are, page, everyone), what="all four again")
    await eventually(lambda: _tiles_are(host, everyone), what="the host sees all four again")
    await hears(in_g2)  # the host's microphone, still on, reaching group 2's student again


async def test_students_choose_within_the_cap_ask_for_help_and_chat_in_their_group(server: Any,
                                                                                    browsers: Browsers) -> None:
    """Self-select with a cap of one, "ask for help" in the host's queue, a visit from the queue
    answering it, the group chat staying in the group, an extension shown to the student, a move
    by the host's menu, the close at once."""
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)),
               camera=False, microphone=False)
    a = await browsers.page()
    await join(a, join_url(server.base, room, server.token(room, "a", name="Оля")), camera=False, microphone=False)
    b = await browsers.page()
    await join(b, join_url(server.base, room, server.token(room, "b", name="Петя")), camera=False, microphone=False)
    if not await host.locator("#tab-breakouts").is_visible():
        await host.click("#btn-panel")
    await host.click("#tab-breakouts")
    await host.select_option("#bo-assign", "self")
    await host.fill("#bo-cap", "1")
    await host.fill("#bo-minutes", "")
    await host.click("#bo-start")
    await a.locator("#bo-choose-list").wait_for()
    await a.locator(".bo-choice").first.locator(".bo-choose").click()
    await a.locator("#bo-where", has_text="Группа 1").wait_for()
    await b.locator(".bo-choice").first.locator(".bo-choose:disabled", has_text="мест нет").wait_for()
    await b.locator(".bo-choice").nth(1).locator(".bo-choose").click()
    await b.locator("#bo-where", has_text="Группа 2").wait_for()
    assert await a.locator("#bo-timer").is_hidden()
    await a.click("#bo-help")
    await host.locator("#bo-help-list .bo-help-row", has_text="Оля").wait_for()
    await a.fill("#bo-chat-input", "вопрос группе")
    await a.click("#bo-chat-send")
    await a.locator("#bo-chat-log", has_text="вопрос группе").wait_for()
    assert await b.locator("#bo-chat-log", has_text="вопрос группе").count() == 0
    await host.click("#bo-help-list .bo-help-go")
    await host.locator("#bo-where", has_text="Группа 1").wait_for()
    await host.locator("#bo-help-list .bo-help-row").wait_for(state="detached")
    await host.fill("#bo-chat-input", "иду")
    await host.click("#bo-chat-send")
    await a.locator("#bo-chat-log", has_text="иду").wait_for()
    await host.click("#bo-extend-5")
    await a.locator("#bo-timer").wait_for()
    assert re.fullmatch(r"осталось (5:00|4:[0-5]\d)", await a.text_content("#bo-timer") or "")
    await host.click("#bo-back")
    await host.locator("#bo-where", has_text="Группы открыты").wait_for()
    # move b to group 1 with the select (cap is for choosing, not for the host)
    sel = host.locator(".bo-group .bo-move[data-participant-id]").last
    gid = await host.evaluate("() => window.urok.breakouts.state.rooms[0].breakout_id")
    await sel.select_option(gid)
    await b.locator("#bo-where", has_text="Группа 1").wait_for()
    await host.select_option("#bo-end-countdown", "0")
    await host.click("#bo-end")
    await a.locator("#bo-bar").wait_for(state="hidden")
    await b.locator("#bo-bar").wait_for(state="hidden")


async def _tiles_are(page: Page, pids: set[str]) -> bool:
    me: str = await page.evaluate("() => window.urok.session.me")
    return await shown_tiles(page) == pids - {me}

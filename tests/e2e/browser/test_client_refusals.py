"""The browser client in Chromium on the refusals of issue 10: the waiting screen shows nobody,
a page whose seat was taken says so and does not fight for it, the host is told, and an unknown room
or a held seat is explained."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join, join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def test_the_waiting_screen_shows_no_grid_no_count_and_no_names(server: Any, browsers: Browsers) -> None:
    room = await server.create_room()  # ALWAYS_ACCEPT_AUTH: an unregistered guest waits
    host = await server.join(room, "teacher", role=Role.HOST, name="Мария Ивановна")
    await server.join(room, "pupil", name="Пётр Сидоров")
    guest = await browsers.page()
    await guest.goto(join_url(server.base, room, server.token(room, "guest", name="Гость", registered=False)))
    await prejoin_ready(guest)
    await guest.click("#join")
    await guest.wait_for_function("() => window.urok.session && window.urok.session.status === 'waiting'")
    assert await guest.locator("#grid").is_hidden() and await guest.locator("#count").is_hidden()
    assert await guest.evaluate("window.urok.session.participants.size") == 1
    text = await guest.evaluate("document.body.innerText")
    assert "Мария" not in text and "Пётр" not in text
    gid = await guest.evaluate("window.urok.session.me")
    await host.event("participant_waiting", participant_id=gid)
    assert (await host.request("admit", participant_ids=[gid]))["ok"]
    await guest.wait_for_function("() => window.urok.session.status === 'joined'")
    await guest.locator("#grid").wait_for(state="visible")
    await guest.wait_for_function("() => document.querySelector('#count').textContent.includes('3')")
    await guest.locator("#grid .tile").nth(2).wait_for()


async def test_a_page_whose_seat_is_taken_says_why_and_the_host_is_told(server: Any, browsers: Browsers) -> None:
    room = await server.create_room()
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", role=Role.HOST)), camera=False)
    token = server.token(room, "pupil", name="Пётр Сидоров")
    pupil = await browsers.page()
    await join(pupil, join_url(server.base, room, token), camera=False, microphone=False)
    other = await server.connect(token)  # the same person in another tab or device
    await other.event("welcome")
    await pupil.wait_for_function("() => window.urok.endReason === 'replaced'")
    assert "другой вкладке" in (await pupil.text_content("#message") or "")
    await host.wait_for_function(
        "() => document.querySelector('#banner').textContent.includes('Пётр Сидоров')")
    await asyncio.sleep(2.0)  # no reconnect: the new connection keeps the seat
    assert not other.closed.is_set()
    assert "reconnecting" not in await pupil.evaluate("window.urok.session.statusLog")


async def test_an_unknown_room_and_a_held_seat_are_explained(server: Any, browsers: Browsers) -> None:
    page = await browsers.page()
    await page.goto(join_url(server.base, "no-such-room", server.token("no-such-room", "u")))
    # the link is checked before the device check (issue 15): no pre-join screen, no camera asked for
    await page.wait_for_selector("#message")
    assert "Урок не найден" in (await page.text_content("#message") or "")
    assert await page.locator("#prejoin").count() == 0

    room = await server.create_room(allow_seat_takeover=False)
    token = server.token(room, "u")
    first = await server.connect(token)
    await first.event("welcome")
    second = await browsers.page()
    await second.goto(join_url(server.base, room, token))
    await prejoin_ready(second)
    await second.click("#join")
    await second.wait_for_function("() => window.urok.endReason === 'alreadyConnected'")
    assert "уже на уроке" in (await second.text_content("#message") or "")
    assert (await first.request("ping"))["ok"] and not first.closed.is_set()

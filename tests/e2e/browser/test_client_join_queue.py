"""The browser client in Chromium on a busy server (signaling/ws/join_gate.py): a page whose join is
queued says "many people are joining, please wait (position N)" and gets in when its turn comes; a
page refused with `try_again` (the queue is full) comes back after the hint and gets in too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from signaling.app_keys import ROOMS
from signaling.rooms import Participant
from signaling.ws.live_room import LiveRoom
from signaling.ws.session import Session
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


class HeldJoin:
    """A room feature whose join work for the identity "holder" lasts until the test lets it go: the
    server's one join slot stays taken meanwhile."""

    def __init__(self, live: LiveRoom, go: asyncio.Event) -> None:
        self.go = go

    async def on_joined(self, session: Session) -> None:
        if session.participant.identity == "holder":
            await self.go.wait()

    async def on_left(self, session: Session) -> None:
        pass

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_a_queued_page_says_so_and_a_refused_one_comes_back(
        server_factory: Callable[..., Any], browsers: Browsers) -> None:
    srv = await server_factory(max_concurrent_joins=1, join_queue_max=1)
    go = asyncio.Event()
    srv.app[ROOMS].feature_factories.append(lambda live: HeldJoin(live, go))
    room = await srv.create_room()
    holder = await srv.connect(srv.token(room, "holder"))
    await holder.event("welcome")  # its slot is held until `go`

    queued = await browsers.page()
    # the page's clock is Playwright's: it runs at real speed, and the test moves it past the page's
    # timers below instead of waiting them out
    await queued.clock.install()
    await queued.goto(join_url(srv.base, room, srv.token(room, "pupil", name="Пётр Сидоров")))
    await prejoin_ready(queued)
    await queued.click("#join")
    await queued.wait_for_function("() => window.urok.session && window.urok.session.status === 'queued'")
    await queued.wait_for_function("() => document.body.innerText.includes('Сейчас входит много людей')"
                                   " && document.body.innerText.includes('1-й')")

    refused = await browsers.page()  # the queue (1) is full: try_again, then back after the hint
    await refused.goto(join_url(srv.base, room, srv.token(room, "late", name="Анна Белова")))
    await prejoin_ready(refused)
    await refused.click("#join")
    await refused.wait_for_function("() => window.urok.session && window.urok.session.lastError"
                                    " && window.urok.session.lastError.code === 'try_again'")
    # past the page's first ping (10 s) and its timeout (6 s): a queued page sends none, keeps its place
    # (a ping sent at the first jump would time out at the second and reconnect; the real pauses let
    # the page and the socket act between the jumps)
    await queued.clock.fast_forward(11_000)
    await asyncio.sleep(1.0)
    await queued.clock.fast_forward(7_000)
    await asyncio.sleep(1.0)
    assert await queued.evaluate("window.urok.session.status") == "queued"

    go.set()
    await queued.wait_for_function("() => window.urok.session.status === 'joined'", timeout=15_000)
    await refused.wait_for_function("() => window.urok.session.status === 'joined'", timeout=30_000)
    log = await refused.evaluate("window.urok.session.statusLog")
    assert "reconnecting" in log and log[-1] == "joined"

"""The browser client's reconnects back off, say what happens, and stop on a refusal that a retry
would get again (issue 21).

The page talks to the server through a relay (tests/e2e/browser/proxy.py) that counts its WebSocket
attempts on the wire. The bounds come from the back-off (web/backoff.js: steps of 0.5 s doubling,
each wait uniform between half the step and the step): the waits are at least 0.25, 0.5, 1, 2, 4,
8 s, so at most 4 tries start within 5 s of a drop (the fifth comes >= 7.75 s after it), however
fast the server refuses; a loaded machine only makes fewer. The bound below is 5. Where each try
gets in first, the k-th try comes at least the k-th wait after the one before: lower bounds too,
which a loaded machine only makes easier to meet.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Server
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.proxy import TcpProxy
from tests.e2e.browser.util import join, join_url

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

WINDOW_S = 5.0
MAX_TRIES_IN_WINDOW = 5  # 4 by the back-off's shortest waits (module docstring), plus one
SHORTEST_WAITS_S = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # half of each step (0.5 s doubling, 20 s cap)
LONGEST_WAIT_S = 20.0  # the back-off's cap

# test instrumentation, not a stand-in for the client: counts the `publish` requests the page sends
COUNT_PUBLISHES = """(() => {
  const send = WebSocket.prototype.send;
  window.__publishes = 0;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string" && data.includes('"type":"publish"')) window.__publishes++;
    return send.call(this, data);
  };
})();"""
# a browser whose microphone offers only PCMU, which the server cannot forward: `publish` is refused
# with invalid_sdp ("no forwardable codec"), and the same offer would be refused every time
PCMU_ONLY = """(() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (what, init) {
    const tr = add.call(this, what, init);
    if ((typeof what === "string" ? what : what.kind) === "audio") {
      tr.setCodecPreferences(RTCRtpReceiver.getCapabilities("audio").codecs.filter((c) => c.mimeType === "audio/PCMU"));
    }
    return tr;
  };
})();"""


@pytest.fixture
async def proxy(server: Server) -> AsyncIterator[TcpProxy]:
    port = urlsplit(server.base).port
    assert port
    p = await TcpProxy.start(port)
    try:
        yield p
    finally:
        await p.close()


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_while_the_server_is_away_the_page_backs_off_says_so_and_rejoins(
        server: Server, browsers: Browsers, proxy: TcpProxy) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page()
    pid = await join(page, join_url(proxy.base, room, server.token(room, "pupil", name="Пётр")), camera=False)
    assert await page.locator("#reconnect-banner").is_hidden()
    proxy.mode = "refuse"
    t0 = now()
    proxy.cut()
    await page.locator("#reconnect-banner").wait_for(state="visible", timeout=5_000)
    first = await page.text_content("#reconnect-banner") or ""
    assert "Связь с уроком прервалась" in first and "попытка 1" in first, first
    await asyncio.sleep(WINDOW_S - (now() - t0))
    tries = proxy.attempts_since(t0)
    text = await page.text_content("#reconnect-banner") or ""
    assert 2 <= tries <= MAX_TRIES_IN_WINDOW, f"{tries} WebSocket attempts in {WINDOW_S} s\n{browsers.log(page)}"
    attempt = int(await page.get_attribute("#reconnect-banner", "data-attempt") or 0)
    assert attempt >= tries - 1 and f"попытка {attempt}" in text, (attempt, text)
    assert await page.evaluate("window.urok.session.status") == "reconnecting"
    # the server is back: the next try (at most the cap away) gets in, the banner goes
    proxy.mode = "pass"
    await page.wait_for_function("() => window.urok.session.status === 'joined'", timeout=(LONGEST_WAIT_S + 15) * 1000)
    await page.locator("#reconnect-banner").wait_for(state="hidden", timeout=5_000)
    assert await page.evaluate("window.urok.session.me") == pid


async def test_a_connection_that_drops_after_every_join_backs_off(
        server: Server, browsers: Browsers, proxy: TcpProxy) -> None:
    """Each try gets in (welcome) and is cut 0.3 s later, like a peer connection that fails ICE right
    after every join: a welcome must not reset the back-off (the page used to rejoin at once, again
    and again: every try within ~0.5 s of the last one's drop, where the 4th must wait >= 2 s)."""
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page()
    await join(page, join_url(proxy.base, room, server.token(room, "pupil", name="Пётр")), camera=False)
    await page.evaluate("() => { window.urok.session.statusLog.length = 0; }")
    proxy.mode = "flap"
    t0 = now()
    proxy.cut()
    # three tries get in (each one welcomed, then dropped); the fourth (>= 2 s after) gets to stay
    await page.wait_for_function("""() => {
      const log = window.urok.session.statusLog;
      return log.filter((s) => s === "joined").length >= 3 && log[log.length - 1] !== "joined";
    }""", timeout=30_000)
    proxy.mode = "pass"
    await page.wait_for_function("() => window.urok.session.status === 'joined'", timeout=(LONGEST_WAIT_S + 15) * 1000)
    await page.locator("#reconnect-banner").wait_for(state="hidden", timeout=5_000)
    starts = [t0] + [t for t in proxy.ws_attempts if t >= t0]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    log = await page.evaluate("window.urok.session.statusLog")
    assert len(gaps) >= 4 and all(g >= w for g, w in zip(gaps, SHORTEST_WAITS_S, strict=False)), \
        f"seconds between WebSocket attempts {[round(g, 2) for g in gaps]}, each at least {SHORTEST_WAITS_S}; " \
        f"statuses {log}"


async def test_a_final_close_says_why_and_makes_no_more_attempts(
        server: Server, browsers: Browsers, proxy: TcpProxy) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page()
    await join(page, join_url(proxy.base, room, server.token(room, "pupil", name="Пётр")), camera=False)
    t0 = now()
    status, _ = await server.rest("DELETE", f"/v1/rooms/{room}")  # room_ended, then close 4410
    assert status == 200
    await page.wait_for_function("() => window.urok.endReason === 'ended'")
    assert "Урок закончился" in (await page.text_content("#message") or "")
    await asyncio.sleep(2.0)  # the back-off's first wait is at most 0.5 s
    assert proxy.attempts_since(t0) == 0
    assert "reconnecting" not in await page.evaluate("window.urok.session.statusLog")


async def test_a_publish_refused_for_good_is_explained_and_not_retried(
        server: Server, browsers: Browsers, proxy: TcpProxy) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page()
    await page.add_init_script(COUNT_PUBLISHES + PCMU_ONLY)
    await join(page, join_url(proxy.base, room, server.token(room, "pupil", name="Пётр")), camera=False)
    refused = await page.wait_for_function("() => window.urok.session.publishRefused")
    assert (await refused.json_value())["code"] == "invalid_sdp"
    banner = page.locator("#banner")
    await banner.wait_for(state="visible")
    assert "Сервер не принимает видео и звук" in (await banner.text_content() or "")
    assert await page.evaluate("window.__publishes") == 1
    # the socket drops (not final): the page rejoins, but does not offer the refused media again
    t0 = now()
    proxy.cut()
    await page.wait_for_function(
        "() => window.urok.session.status === 'joined' && window.urok.session.connectAttempts === 2", timeout=15_000)
    await asyncio.sleep(2.0)  # a publish would follow the welcome at once
    assert await page.evaluate("window.__publishes") == 1
    assert "Сервер не принимает видео и звук" in (await banner.text_content() or "")
    assert await banner.is_visible()
    assert proxy.attempts_since(t0) == 1

"""A Chromium page in a lesson on `urok serve --workers 2` (Redis, SQLite): the worker serving the
lesson is killed with kill -9; the page reconnects by itself (its back-off, the same token) to the
other worker, which takes the room over, and is back in the lesson, same seat, within 5 s.  And a
page receiving from the other worker of a room that spans both (span_after = 1) plays the
teacher's video, and plays it again after that worker's kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import Browsers, chromium_session
from tests.e2e.browser.util import eventually, join, join_url, tile, video_playing
from tests.e2e.rtc_client import RtcClient
from tests.e2e.test_workers import Cluster, connect, new_room, token
from tests.e2e.test_workers_media import free_udp_pair
from tests.redis_server import SKIP_REASON, RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
async def browsers() -> AsyncIterator[Browsers]:
    async with chromium_session() as b:
        yield b


async def test_a_page_is_back_after_kill_9_of_its_worker(tmp_path: Path, redis_server: RedisServer | None,
                                                         http: aiohttp.ClientSession, browsers: Browsers) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    cluster = Cluster(tmp_path / "data", redis_server.url)
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Биология")
        page = await browsers.page()
        pid = await join(page, join_url(cluster.base, room, token(room, "teacher", Role.HOST)), camera=False)
        owner = (await cluster.rooms_by_worker(http)).index(1)
        # mid-lesson: the seat is written (a kill -9 within the store's batch gap, 50 ms plus one
        # write, after the welcome loses it: the page would come back as a new participant)
        await asyncio.sleep(1.0)
        os.kill(cluster.worker_pids()[owner], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        await page.wait_for_function("() => window.urok.session.status !== 'joined'", timeout=10_000)
        await page.wait_for_function("() => window.urok.session.status === 'joined'", timeout=20_000)
        took = time.monotonic() - killed_at
        print(f"kill -9 -> the page joined again: {took:.2f} s")
        assert await page.evaluate("() => window.urok.session.me") == pid  # the same seat
        assert took < 5.0, f"back after {took:.2f} s\n{browsers.log(page)}"
    finally:
        await cluster.stop()


SUBSCRIBER_PORTS_JS = """async () => {
  const pc = window.urok && window.urok.pcs && window.urok.pcs.subscriber;
  if (!pc) return [];
  const ports = [];
  (await pc.getStats()).forEach((r) => { if (r.type === 'remote-candidate') ports.push(r.port); });
  return ports;
}"""


async def test_a_page_receiving_from_the_edge_plays_again_after_its_kill_9(
        tmp_path: Path, redis_server: RedisServer | None, http: aiohttp.ClientSession, browsers: Browsers) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    udp = free_udp_pair()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RTC_UDP_PORT=str(udp), UROK_SPAN_AFTER="1")
    teacher: RtcClient | None = None
    try:
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Физика")
        teacher = RtcClient(await connect(http, cluster.private(0), token(room, "teacher", Role.HOST)))
        teacher_pid = str((await teacher.ws.event("welcome"))["participant_id"])
        owner = (await cluster.rooms_by_worker(http)).index(1)
        edge = 1 - owner
        await teacher.publish(video=True, audio=True)
        page = await browsers.page()
        await join(page, join_url(cluster.base, room, token(room, "anna")), camera=False, microphone=False)
        video = tile(teacher_pid) + " video"
        await eventually(lambda: video_playing(page, video), 20.0, what="the teacher's video from the edge")
        assert set(await page.evaluate(SUBSCRIBER_PORTS_JS)) == {udp + edge}, browsers.log(page)
        os.kill(cluster.worker_pids()[edge], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        await page.wait_for_function("() => window.urok.session.status !== 'joined'", timeout=10_000)
        await page.wait_for_function("() => window.urok.session.status === 'joined'", timeout=20_000)
        await eventually(lambda: video_playing(page, video), 20.0, what="the teacher's video again")
        took = time.monotonic() - killed_at
        print(f"kill -9 of the edge -> the page plays the teacher's video again: {took:.2f} s")
        assert set(await page.evaluate(SUBSCRIBER_PORTS_JS)) == {udp + owner}
        assert took < 8.0, f"back after {took:.2f} s\n{browsers.log(page)}"
        assert not teacher.ws.closed.is_set()  # the lesson itself went on
    finally:
        if teacher is not None:
            await teacher.close()
        await cluster.stop()

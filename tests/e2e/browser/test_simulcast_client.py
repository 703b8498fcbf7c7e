"""The browser client publishes its camera in three simulcast layers; viewers get the layer they ask for."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.app_keys import WORKER
from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join, join_url
from tests.e2e.rtc_client import RtcClient, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def test_client_camera_is_simulcast_and_each_viewer_gets_its_quality(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    page = await browsers.page()
    pid = await join(page, join_url(server.base, room, server.token(room, "teacher", name="Учитель")))
    low = await RtcClient.join(server, room, "low-viewer")
    high = await RtcClient.join(server, room, "high-viewer")
    camera = await low.ws.event("track_published", timeout=15, participant_id=pid, source="camera")
    cam_id = camera["track_id"]
    producer = server.app[WORKER].get_router(room).get_producer(cam_id)
    assert producer is not None
    # three layers offered; Chromium sends as many as the capture size allows (2 for 640x480)
    assert producer.layers == 3
    assert await wait_until(lambda: sum(s["packets"] > 0 for s in producer.layer_stats()) >= 2, 20), \
        producer.layer_stats()
    for client, quality in ((low, "low"), (high, "high")):
        r = await client.ws.request("subscribe", tracks=[{"track_id": cam_id, "quality": quality}])
        assert r["ok"], r
    assert await wait_until(lambda: low.frames("video", {cam_id}) > 10 and high.frames("video", {cam_id}) > 10, 20)
    lo, hi = low.received[cam_id], high.received[cam_id]
    assert await wait_until(lambda: lo.last_size is not None and hi.last_size is not None
                            and hi.last_size[0] >= 2 * lo.last_size[0], 15), (lo.sizes, hi.sizes)
    for c in (low, high):
        await c.close()

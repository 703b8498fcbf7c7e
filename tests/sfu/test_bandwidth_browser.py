"""Chromium on transport-cc: a real Chromium publishing three simulcast layers (the page of
test_simulcast_browser.py) gets transport-cc in the server's answer and feedback for its packets;
its own send-side estimate (availableOutgoingBitrate) rises from its 300 kbit/s start on that
feedback alone (the REMB is only a 3 Mbit/s cap), and every feedback packet reports what arrived."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sfu import Worker, WorkerSettings
from sfu.transport_cc import EXT_TRANSPORT_CC

from .helpers import wait_for
from .test_simulcast_browser import chromium, page_url  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


async def test_chromium_gets_transport_cc_feedback_and_its_estimate_rises_on_it(
    page_url: str,  # noqa: F811
    chromium: Any,  # noqa: F811
) -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    try:
        page = await chromium.new_page()
        page.set_default_timeout(15_000)
        await page.goto(page_url)
        transport = worker.create_router("room").create_transport("chromium:publisher")
        offer = await page.evaluate("publish()")
        answer = await transport.accept_offer(offer)
        assert EXT_TRANSPORT_CC in answer and "transport-cc" in answer
        await page.evaluate("answer", answer)
        (section,) = transport.offered_media()
        producer = transport.produce(section.mid, "camera")
        congestion = transport._congestion
        assert congestion is not None and congestion.transport_cc
        recorder = congestion.recorder
        assert recorder is not None
        assert await wait_for(lambda: recorder.feedback_sent >= 5, 15), recorder.feedback_sent
        # Chromium's estimate leaves its 300 kbit/s start on our feedback (the REMB only caps it)
        deadline = time.monotonic() + 20
        stats = await page.evaluate("outbound()")
        while (stats["available"] or 0) < 1_000_000 and time.monotonic() < deadline:
            await wait_for(lambda: False, 0.5)
            stats = await page.evaluate("outbound()")
        assert (stats["available"] or 0) >= 1_000_000, (stats, producer.layer_stats())
        assert recorder.received >= 20 and producer.packets >= 20
        assert transport._listener.hook_errors == 0
    finally:
        await worker.close()

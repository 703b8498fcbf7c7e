"""Capture Chromium's and Firefox's answers to the core's subscriber offer with RTX into
tests/data/{chromium,firefox}_answer_rtx.sdp (for tests/sfu/test_subscriber_rtx.py).

Run: .venv/bin/python -m tests.e2e.capture_rtx_answers
The offer is the core's (offline, tests/sfu/offline.py) for a microphone and a simulcast camera
published by Firefox (tests/data/firefox_simulcast_offer.sdp); each browser opens the server's page
on 127.0.0.1 and answers it. Nothing connects.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import start_server, test_settings
from tests.e2e.browser.conftest import chromium_session
from tests.e2e.firefox.capture_sdp import ANSWER_JS, server_offer
from tests.e2e.firefox.firefox import Firefox
from tests.sfu.offline import DATA


async def main() -> None:
    offer = await server_offer((DATA / "firefox_simulcast_offer.sdp").read_text())
    (DATA / "server_offer_rtx.sdp").write_text(offer, newline="")
    runner, base = await start_server(test_settings())
    try:
        ff = await Firefox.launch()
        try:
            page: Any = await ff.page()
            await page.goto(base + "/")
            answer = await page.evaluate(ANSWER_JS, offer)
            (DATA / "firefox_answer_rtx.sdp").write_text(answer, newline="")
            print(f"firefox_answer_rtx.sdp: {answer.count(chr(10))} lines ({ff.version})")
        finally:
            await ff.close()
        async with chromium_session() as browsers:
            cpage = await browsers.page(base + "/")
            answer = await cpage.evaluate(ANSWER_JS, offer)
            (DATA / "chromium_answer_rtx.sdp").write_text(answer, newline="")
            version = (await browsers.browser()).version
            print(f"chromium_answer_rtx.sdp: {answer.count(chr(10))} lines ({version})")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())

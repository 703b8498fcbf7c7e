"""Helpers of the browser tests: polling, joining through the pre-join screen, media checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.25,
                     what: str = "condition") -> Any:
    """Polls an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        await asyncio.sleep(interval)


def join_url(base: str, room_id: str, token: str, lang: str | None = None) -> str:
    return f"{base}/join/{room_id}?token={token}" + (f"&lang={lang}" if lang else "")


async def prejoin_ready(page: Page) -> None:
    await page.wait_for_selector("#prejoin")
    await page.wait_for_function(
        "() => window.urok && window.urok.prejoin && !document.querySelector('#join').disabled", timeout=15_000)


async def join(page: Page, url: str, *, camera: bool = True, microphone: bool = True) -> str:
    """Opens the join link, goes through the pre-join screen, waits until joined; returns participant_id."""
    await page.goto(url)
    await prejoin_ready(page)
    state = await page.evaluate("() => ({cam: window.urok.prejoin.camOn, mic: window.urok.prejoin.micOn})")
    if state["cam"] != camera:
        await page.click("#prejoin-camera")
    if state["mic"] != microphone:
        await page.click("#prejoin-mic")
    await page.click("#join")
    await page.wait_for_selector("#lesson")
    await page.wait_for_function("() => window.urok.session && window.urok.session.status === 'joined'", timeout=15_000)
    pid: str = await page.evaluate("() => window.urok.session.me")
    return pid


VIDEO_PROGRESS_JS = """async (sel) => {
  const v = document.querySelector(sel);
  if (!v || !v.srcObject) return {ok: false, why: 'no video element or stream'};
  const t0 = v.currentTime;
  await new Promise((r) => setTimeout(r, 700));
  return {ok: v.videoWidth > 0 && v.currentTime > t0, width: v.videoWidth, height: v.videoHeight,
          t0, t1: v.currentTime, paused: v.paused};
}"""

INBOUND_AUDIO_JS = """async () => {
  const pc = window.urok && window.urok.pcs && window.urok.pcs.subscriber;
  if (!pc) return -1;
  let n = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.packetsReceived || 0;
  });
  return n;
}"""


async def video_playing(page: Page, selector: str) -> dict[str, Any] | None:
    r: dict[str, Any] = await page.evaluate(VIDEO_PROGRESS_JS, selector)
    return r if r.get("ok") else None


async def audio_packets(page: Page) -> int:
    n: int = await page.evaluate(INBOUND_AUDIO_JS)
    return n


async def audio_flowing(page: Page, timeout: float = 15.0) -> None:
    first = await eventually(lambda: _positive(audio_packets(page)), timeout, what="inbound audio packets")

    async def grew() -> bool:
        return bool(await audio_packets(page) > first)

    await eventually(grew, 5.0, what="inbound audio packets growing")


async def _positive(x: Awaitable[int]) -> int:
    v = await x
    return v if v > 0 else 0


def tile(pid: str) -> str:
    return f'.tile[data-participant-id="{pid}"]'

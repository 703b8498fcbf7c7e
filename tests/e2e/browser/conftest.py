"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the real server.

One browser per test (a fresh temporary profile), one context per page, bounded timeouts. The
flags give Chromium a fake camera (a moving test pattern), a fake microphone (a beep) and a fake
screen for getDisplayMedia, accept the permission prompts, and let WebRTC use 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - the test extras install it
    async_playwright = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("UROK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

FAKE_DEVICES = "--use-fake-device-for-media-stream=fps=15"  # a moving test pattern at 15 fps, a beeping mic
COMMON_FLAGS = [  # every Chromium the tests start (the simulcast test in tests/sfu too)
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--no-first-run",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
BASE_FLAGS = [FAKE_DEVICES, *COMMON_FLAGS, "--autoplay-policy=no-user-gesture-required"]
ALLOW = "--use-fake-ui-for-media-stream"  # accept prompts; getDisplayMedia gets a fake screen
DENY = "--use-fake-ui-for-media-stream=deny"  # refuse camera/microphone like a user who clicks "Block"

LOCAL_URLS = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> Any:
    """Playwright's ``async_playwright``, once Chromium and Playwright are known to be there.

    The one rule of every browser test (tests/e2e/browser and tests/sfu/test_simulcast_browser.py): a
    missing Chromium or Playwright is a failure that says how to install it, never a skip (make test
    installs both, so a skip would only hide a broken setup).
    """
    if async_playwright is None:
        pytest.fail("playwright is not installed: .venv/bin/pip install 'playwright>=1.45,<2' "
                    "(never `playwright install`)", pytrace=False)
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: run `make system-deps` (installs Debian's chromium) or set "
                    "UROK_CHROMIUM", pytrace=False)
    return async_playwright


class Browsers:
    """Launches Chromium (one per set of flags) and opens isolated pages."""

    def __init__(self, pw: Any) -> None:
        self.pw = pw
        self.browsers: dict[str, Browser] = {}
        self.contexts: list[BrowserContext] = []
        self.console: dict[int, list[str]] = {}
        self.page_errors: list[str] = []  # uncaught exceptions in any page: the test fails
        self.outside: list[str] = []  # requests that leave 127.0.0.1: the test fails (nothing from the internet)
        # the client runs under a strict Content-Security-Policy (signaling/rest/security_headers.py):
        # anything it blocks fails the test, unless the test provokes the refusal itself
        self.csp_refusals: list[str] = []
        self.expect_csp_refusals = False

    async def browser(self, deny: bool = False, cameras: int = 1) -> Browser:
        key = ("deny" if deny else "allow") + (f"-{cameras}" if cameras != 1 else "")
        if key not in self.browsers:
            # cameras > 1: Chromium's fake capture offers fake_device_0..N-1 (a camera to switch to)
            flags = [f"{FAKE_DEVICES},device-count={cameras}" if f == FAKE_DEVICES and cameras != 1 else f
                     for f in BASE_FLAGS]
            self.browsers[key] = await self.pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=[*flags, DENY if deny else ALLOW], timeout=30_000)
        return self.browsers[key]

    async def page(self, url: str | None = None, *, deny: bool = False, viewport: dict[str, int] | None = None,
                   locale: str = "ru-RU", cameras: int = 1) -> Page:
        browser = await self.browser(deny, cameras)
        ctx = await browser.new_context(viewport=viewport or DESKTOP, locale=locale)  # type: ignore[arg-type]
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        ctx.on("request", lambda r: None if r.url.startswith(LOCAL_URLS) else self.outside.append(r.url))
        page = await ctx.new_page()
        log: list[str] = []
        self.console[id(page)] = log
        page.on("console", lambda m: self._console(log, f"{m.type}: {m.text}"))

        def page_error(e: Any) -> None:
            log.append(f"pageerror: {e}")
            self.page_errors.append(str(e))

        page.on("pageerror", page_error)
        if url:
            await page.goto(url)
        return page

    def _console(self, log: list[str], line: str) -> None:
        log.append(line)
        if "Content Security Policy" in line:
            self.csp_refusals.append(line)

    def log(self, page: Page) -> str:
        return "\n".join(self.console.get(id(page), [])[-40:])

    async def close(self) -> None:
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctx.close(), 10)
        for b in self.browsers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(b.close(), 10)


@contextlib.asynccontextmanager
async def chromium_session(*, loopback_only: bool = True) -> AsyncIterator[Browsers]:
    """Chromium for one test, closed afterwards; the test then fails on what its pages did wrong:
    uncaught errors, a Content-Security-Policy refusal, and (``loopback_only``, the server on
    127.0.0.1) a request that left the machine. The Firefox tests serve from their namespace's
    test address, where nothing can leave anyway."""
    playwright = require_chromium()
    async with playwright() as pw:
        b = Browsers(pw)
        try:
            yield b
        finally:
            await b.close()
        if loopback_only and b.outside:
            pytest.fail("the client loaded something from outside the server:\n" + "\n".join(b.outside[:10]))
        if b.csp_refusals and not b.expect_csp_refusals:
            pytest.fail("the Content-Security-Policy refused something:\n" + "\n".join(b.csp_refusals[:10]))
        if b.page_errors:
            pytest.fail("uncaught errors in the page:\n" + "\n".join(b.page_errors[:10]))


@pytest.fixture
async def browsers() -> AsyncIterator[Browsers]:
    async with chromium_session() as b:
        yield b


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

"""Python side of the Firefox driver (driver/driver.mjs): one Node process per Firefox, JSON lines.

:class:`FirefoxPage` has the few methods of a Playwright ``Page`` that the browser tests' helpers
use (``goto``, ``evaluate``, ``click``, ``wait_for_selector``, ``wait_for_function``), with the same
arguments (timeouts in ms), so ``tests/e2e/browser/util.py`` drives Firefox and Chromium alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).resolve().parent / "driver"
FIREFOX = os.environ.get("UROK_FIREFOX", "/usr/bin/firefox-esr")
NODE = shutil.which("node") or "/usr/bin/node"


def missing() -> str | None:
    """What is missing to drive Firefox, with how to install it; None when all is there."""
    if not shutil.which(FIREFOX):
        return f"{FIREFOX} not found: run `make system-deps` (installs Debian's firefox-esr) or set UROK_FIREFOX"
    if not shutil.which(NODE):
        return "node not found: run `make system-deps` (installs Debian's nodejs and npm)"
    if not (DRIVER / "node_modules" / "puppeteer-core").is_dir():
        return f"puppeteer-core is not installed: run `make system-deps` (npm ci in {DRIVER})"
    return None


class DriverError(AssertionError):
    pass


class Firefox:
    """One headless Firefox with a fresh profile; pages are :class:`FirefoxPage`."""

    def __init__(self, proc: asyncio.subprocess.Process, profile: str) -> None:
        self._proc = proc
        self._profile = profile
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.console: dict[int, list[str]] = {}
        self.page_errors: list[str] = []
        self.version = ""
        self._ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def launch(cls) -> Firefox:
        profile = tempfile.mkdtemp(prefix="urok-firefox-")
        env = {**os.environ, "UROK_FIREFOX": FIREFOX, "UROK_FIREFOX_PROFILE": profile,
               "PUPPETEER_SKIP_DOWNLOAD": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
        proc = await asyncio.create_subprocess_exec(
            NODE, str(DRIVER / "driver.mjs"), cwd=str(DRIVER), env=env, limit=16 * 1024 * 1024,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: Firefox goes with it (close)
        ff = cls(proc, profile)
        try:
            ff.version = await asyncio.wait_for(asyncio.shield(ff._ready), 60)
        except BaseException:
            await ff.close()
            raise
        return ff

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            while line := await self._proc.stdout.readline():
                msg = json.loads(line)
                if "id" in msg:
                    fut = self._waiting.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        if msg["ok"]:
                            fut.set_result(msg["value"])
                        else:
                            fut.set_exception(DriverError(msg["error"]))
                elif msg.get("event") == "ready":
                    if not self._ready.done():
                        self._ready.set_result(str(msg.get("version", "")))
                elif msg.get("event") in ("console", "pageerror"):
                    self.console.setdefault(msg["page"], []).append(msg["text"])
                    if msg["event"] == "pageerror":
                        self.page_errors.append(msg["text"])
        finally:
            gone = DriverError("the Firefox driver exited")
            if not self._ready.done():
                self._ready.set_exception(gone)
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(gone)
            self._waiting.clear()

    async def call(self, op: str, wait: float = 60.0, **fields: Any) -> Any:
        assert self._proc.stdin is not None
        ident = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = fut
        self._proc.stdin.write((json.dumps({"id": ident, "op": op, **fields}) + "\n").encode())
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(fut, wait)
        finally:
            self._waiting.pop(ident, None)

    async def page(self, *, width: int = 1280, height: int = 800) -> FirefoxPage:
        index = await self.call("newPage", width=width, height=height)
        return FirefoxPage(self, int(index))

    def log(self, page: FirefoxPage) -> str:
        return "\n".join(self.console.get(page.index, [])[-40:])

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("close", wait=10), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 10)
            if self._proc.returncode is None:  # stuck: the group we started (the driver and its Firefox)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                await self._proc.wait()
        self._reader.cancel()
        shutil.rmtree(self._profile, ignore_errors=True)


class FirefoxPage:
    def __init__(self, firefox: Firefox, index: int) -> None:
        self.firefox = firefox
        self.index = index

    async def preload(self, script: str) -> None:
        """Run ``script`` in every document this page opens, before the page's own scripts."""
        await self.firefox.call("preload", page=self.index, script=script)

    async def goto(self, url: str) -> None:
        await self.firefox.call("goto", page=self.index, url=url)

    async def evaluate(self, expr: str, arg: Any = None) -> Any:
        return await self.firefox.call("evaluate", page=self.index, expr=expr, arg=arg)

    async def click(self, selector: str) -> None:
        await self.firefox.call("click", page=self.index, selector=selector)

    async def wait_for_selector(self, selector: str, *, state: str = "attached", timeout: float = 15_000) -> None:
        await self.firefox.call("waitForSelector", wait=timeout / 1000 + 5, page=self.index, selector=selector,
                                state=state, timeout=timeout)

    async def wait_for_function(self, expr: str, *, arg: Any = None, timeout: float = 15_000) -> None:
        await self.firefox.call("waitForFunction", wait=timeout / 1000 + 5, page=self.index, expr=expr, arg=arg,
                                timeout=timeout)

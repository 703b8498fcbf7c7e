"""Fixtures of the Firefox tests: the test's network namespace, the server, Chromium and Firefox in it.

A missing Firefox, driver or root is a failure that says how to fix it, never a skip (make test
installs firefox-esr and the driver; a skip would only hide a broken setup).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Server
from tests.e2e.browser.conftest import Browsers, chromium_session
from tests.e2e.firefox import firefox, netns
from tests.e2e.firefox.firefox import Firefox


@pytest.fixture
def test_netns() -> Iterator[str]:
    why = netns.missing() or firefox.missing()
    if why:
        pytest.fail(why, pytrace=False)
    with netns.test_namespace() as name:
        yield name


@pytest.fixture
async def ff_server(test_netns: str, server_factory: Callable[..., Any]) -> Server:
    """The server in the namespace; its ICE candidates carry the namespace's test address. The
    shared port listens on 0.0.0.0 as in production (rtc_listen_address unset)."""
    srv: Server = await server_factory(rtc_host_addresses=(netns.TEST_ADDRESS,))
    return srv


@pytest.fixture
async def firefox_browser(test_netns: str) -> AsyncIterator[Firefox]:
    ff = await Firefox.launch()
    try:
        yield ff
    finally:
        await ff.close()
    if ff.page_errors:
        pytest.fail("uncaught errors in a Firefox page:\n" + "\n".join(ff.page_errors[:10]))


@pytest.fixture
async def chromium(test_netns: str) -> AsyncIterator[Browsers]:
    async with chromium_session(loopback_only=False) as b:
        yield b

"""Shared by the tests of what the journal hears across a restart of a real `urok serve` process
(kill -9): a server started with the journal's webhook registered, and the teardown."""

from __future__ import annotations

import aiohttp

from tests.e2e.test_store_restart import TOKENS, Serve
from tests.e2e.test_webhooks import Receiver


def admin() -> dict[str, str]:
    """An admin's headers, minted when used: a token made at import (collection) time expired before
    these tests ran in a whole-suite run (18 minutes later)."""
    return {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}


async def start_with_journal(http: aiohttp.ClientSession, server: Serve, journal: Receiver,
                             events: list[str]) -> None:
    """Start ``server`` and register a webhook for ``events`` at ``journal``."""
    await server.start(http)
    async with http.post(server.base + "/v1/webhooks", headers=admin(),
                         json={"url": journal.url(), "events": events}) as r:
        assert r.status == 201, (r.status, await r.text())  # once seen failing in a whole-suite run


async def stop_all(journal: Receiver, *servers: Serve) -> None:
    """Kill whichever server still runs, then stop the journal."""
    for server in servers:
        if server.proc is not None and server.proc.returncode is None:
            await server.kill9()
    await journal.stop()

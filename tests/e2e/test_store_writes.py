"""What the server writes to its SQLite file (the default store) on its own, read from outside."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.app_keys import SETTINGS
from signaling.rooms import Role
from signaling.store import schema as t
from signaling.store.sql_store import driver_url, sqlite_url
from tests.conftest import Server


async def _rows(server: Server, query: sa.Select[tuple[str, bool]], want: set[tuple[str, bool]]) -> None:
    """Wait (generously: a loaded machine) until the file holds ``want``; no request flushes it."""
    engine = create_async_engine(driver_url(sqlite_url(server.app[SETTINGS].data_dir)))
    try:
        got: set[tuple[str, bool]] = set()
        for _ in range(200):
            async with engine.connect() as conn:
                got = {(row[0], row[1]) for row in await conn.execute(query)}
            if got == want:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the store wrote {got}, not {want}, within 20 s")
    finally:
        await engine.dispose()


async def test_chat_and_its_tombstone_are_written_behind_without_a_flush(server_factory: Any) -> None:
    server: Server = await server_factory(store="sqlite")
    room_id = await server.create_room()
    host = await server.join(room_id, "teacher", role=Role.HOST)
    await host.event("chat_history")
    sent = await host.request("chat_send", text="страница 12")
    assert sent["ok"], sent
    query = sa.select(t.chat_messages.c.text, t.chat_messages.c.deleted)
    await _rows(server, query, {("страница 12", False)})
    assert (await host.request("chat_delete", message_id=sent["message_id"]))["ok"]
    await _rows(server, query, {("", True)})

"""Wires breakout groups into the app: the template/attendance store and one LiveBreakouts per room."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from signaling.app_keys import ROOMS, SETTINGS, STORE
from signaling.rooms.breakout_store import BreakoutStore, MemoryBreakoutStore, SqlBreakoutStore
from signaling.rooms.live_breakouts import LiveBreakouts
from signaling.store.sql_store import SqlStore

BREAKOUT_STORE = web.AppKey("breakout_store", BreakoutStore)


def make_breakout_store(store: object) -> BreakoutStore:
    """Templates and attendance live where the rooms do: on the SQL store's engine, or in memory."""
    if isinstance(store, SqlStore):
        sql = store
        return SqlBreakoutStore(lambda: sql.engine)
    return MemoryBreakoutStore()


def setup_breakouts(app: web.Application) -> None:
    store = make_breakout_store(app[STORE])
    app[BREAKOUT_STORE] = store
    settings = app[SETTINGS]
    app[ROOMS].feature_factories.append(lambda live: LiveBreakouts(
        live, store, max_groups=settings.breakouts_max_groups, countdown_s=settings.breakouts_close_countdown_s))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    app.cleanup_ctx.append(lifecycle)

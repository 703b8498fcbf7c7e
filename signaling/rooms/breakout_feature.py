"""Wires breakout groups into the app: the template/attendance store and one LiveBreakouts per room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from signaling.app_keys import ROOMS, SETTINGS, STORE
from signaling.rooms.breakout_store import BreakoutStore, MemoryBreakoutStore, SqlBreakoutStore
from signaling.rooms.live_breakouts import LiveBreakouts
from signaling.store.sql_store import SqlStore
from signaling.ws.live_room import LiveRoom

BREAKOUT_STORE = web.AppKey("breakout_store", BreakoutStore)


class BreakoutPlaces:
    """The live room's Places (live_room.py) over its breakout groups: who is where while they are open."""

    def __init__(self, feature: LiveBreakouts) -> None:
        self._feature = feature

    def grouped(self) -> bool:
        b = self._feature.current
        return b is not None and b.running

    def group_of(self, participant_id: str) -> str | None:
        b = self._feature.current
        return b.group_of(participant_id) if b is not None else None

    def open_groups(self) -> list[dict[str, Any]]:
        b = self._feature.current
        if b is None or not b.running:
            return []
        return [g.to_json() for g in b.groups.values() if g.open]


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

    def make(live: LiveRoom) -> LiveBreakouts:
        feature = LiveBreakouts(live, store, max_groups=settings.breakouts_max_groups,
                                countdown_s=settings.breakouts_close_countdown_s)
        live.places = BreakoutPlaces(feature)  # hands, reactions and attention stay in their group
        return feature

    app[ROOMS].feature_factories.append(make)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    app.cleanup_ctx.append(lifecycle)

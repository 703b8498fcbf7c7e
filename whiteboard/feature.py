"""Wires the whiteboard into the app: app keys, room features, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from signaling.app_keys import CLOCK, ROOMS, SETTINGS, STORE
from signaling.store.sql_store import SqlStore
from whiteboard.board import BoardLimits
from whiteboard.board_feature import BoardFeature
from whiteboard.board_service import BoardService
from whiteboard.board_store import BoardStore, MemoryBoardStore
from whiteboard.sql_board_store import SqlBoardStore
from whiteboard.vendor_modules import VendorModules

BOARDS = web.AppKey("boards", BoardService)
# Yjs and lib0 as browser modules (vendor_modules.py); not under /web/, whose static route answers first
VENDOR_PATH = "/web-lib/{path:.+}"
VENDOR_ROOT = Path(__file__).resolve().parent.parent / "web" / "vendor" / "node_modules"


def make_board_store(store: object) -> BoardStore:
    """Boards live where the rooms do: on the SQL store's engine, or in memory."""
    if isinstance(store, SqlStore):
        sql = store
        return SqlBoardStore(lambda: sql.engine)
    return MemoryBoardStore()


def setup_whiteboard(app: web.Application) -> None:
    """Called by create_app (signaling/app.py FEATURE_SETUPS) after the store's lifecycle is registered."""
    s = app[SETTINGS]
    limits = BoardLimits(max_update_bytes=s.board_max_update_bytes, max_bytes=s.board_max_bytes,
                         max_pages=s.board_max_pages)
    service = BoardService(make_board_store(app[STORE]), limits, clock=app[CLOCK])
    app[BOARDS] = service
    app[ROOMS].feature_factories.append(lambda live: BoardFeature(live, service))
    modules = VendorModules(VENDOR_ROOT)
    app.router.add_get(VENDOR_PATH, modules.handle, name="board_modules")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await service.open()
        yield
        await service.close()

    app.cleanup_ctx.append(lifecycle)

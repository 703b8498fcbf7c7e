"""Boards in SQLite or PostgreSQL (whiteboard/tables.py, revision r0009), on the room store's engine
(one pool; on SQLite one writer at a time, so each transaction is short: one flush of the dirty
boards, nothing awaited inside but the database)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from whiteboard import tables as t
from whiteboard.board import BoardKey
from whiteboard.board_store import Asset, BoardSave, BoardUpdate, StoredBoard


def _where(table: sa.Table, key: BoardKey) -> Any:
    return sa.and_(table.c.room_id == key.room_id, table.c.group_id == key.group)


class SqlBoardStore:
    """``engine``: the room store's (``SqlStore.engine``), asked for on each call since it exists
    only once that store is open."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine

    async def open(self) -> None:
        self._engine()

    async def close(self) -> None:
        return None

    async def load(self, key: BoardKey) -> StoredBoard | None:
        async with self._engine().connect() as conn:
            row = (await conn.execute(sa.select(t.boards).where(_where(t.boards, key)))).first()
            if row is None:
                return None
            ups = (await conn.execute(
                sa.select(t.board_updates.c.seq, t.board_updates.c.at, t.board_updates.c.data)
                .where(_where(t.board_updates, key), t.board_updates.c.seq > row.snapshot_seq)
                .order_by(t.board_updates.c.seq))).all()
        return StoredBoard(key, dict(row.meta), row.snapshot, row.snapshot_seq,
                           [BoardUpdate(u.seq, u.at, bytes(u.data)) for u in ups])

    async def save(self, saves: list[BoardSave]) -> None:
        if not saves:
            return
        async with self._engine().begin() as conn:
            for s in saves:
                values: dict[str, Any] = {"meta": s.meta, "updated_at": s.at}
                if s.snapshot is not None:
                    values["snapshot"], values["snapshot_seq"] = s.snapshot
                done = await conn.execute(sa.update(t.boards).where(_where(t.boards, s.key)).values(**values))
                if done.rowcount == 0:
                    values.setdefault("snapshot", None)
                    values.setdefault("snapshot_seq", 0)
                    await conn.execute(sa.insert(t.boards).values(room_id=s.key.room_id, group_id=s.key.group,
                                                                  **values))
                if s.updates:
                    await conn.execute(sa.insert(t.board_updates), [
                        {"room_id": s.key.room_id, "group_id": s.key.group, "seq": u.seq, "at": u.at,
                         "data": u.data} for u in s.updates])

    async def history(self, key: BoardKey, until: float) -> list[BoardUpdate]:
        async with self._engine().connect() as conn:
            rows = (await conn.execute(
                sa.select(t.board_updates.c.seq, t.board_updates.c.at, t.board_updates.c.data)
                .where(_where(t.board_updates, key), t.board_updates.c.at <= until)
                .order_by(t.board_updates.c.seq))).all()
        return [BoardUpdate(r.seq, r.at, bytes(r.data)) for r in rows]

    async def put_asset(self, asset: Asset) -> None:
        async with self._engine().begin() as conn:
            await conn.execute(sa.insert(t.board_assets).values(
                asset_id=asset.asset_id, room_id=asset.room_id, kind=asset.kind, name=asset.name,
                content_type=asset.content_type, data=asset.data, created_at=asset.created_at))

    async def get_asset(self, asset_id: str) -> Asset | None:
        async with self._engine().connect() as conn:
            r = (await conn.execute(sa.select(t.board_assets).where(t.board_assets.c.asset_id == asset_id))).first()
        return None if r is None else Asset(r.asset_id, r.room_id, r.kind, r.name, r.content_type, bytes(r.data),
                                            r.created_at)

    async def list_assets(self, room_id: str, kind: str) -> list[Asset]:
        async with self._engine().connect() as conn:
            rows = (await conn.execute(sa.select(t.board_assets).where(
                t.board_assets.c.room_id == room_id, t.board_assets.c.kind == kind)
                .order_by(t.board_assets.c.created_at, t.board_assets.c.asset_id))).all()
        return [Asset(r.asset_id, r.room_id, r.kind, r.name, r.content_type, bytes(r.data), r.created_at)
                for r in rows]

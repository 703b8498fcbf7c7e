"""Where boards live: the BoardStore interface and its in-memory twin (the SQL one is
sql_board_store.py).  Both pass one suite (tests/unit/whiteboard/test_board_store.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from whiteboard.board import BoardKey


@dataclass(frozen=True, slots=True)
class BoardUpdate:
    seq: int
    at: float
    data: bytes


@dataclass(slots=True)
class StoredBoard:
    key: BoardKey
    meta: dict[str, Any]  # BoardMeta.to_json()
    snapshot: bytes | None
    snapshot_seq: int
    updates: list[BoardUpdate] = field(default_factory=list)  # saved after the snapshot, by seq

    @property
    def last_seq(self) -> int:
        return self.updates[-1].seq if self.updates else self.snapshot_seq


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    room_id: str
    kind: str  # background | export
    name: str
    content_type: str
    data: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class BoardSave:
    """One write-behind flush of one board: its meta, the updates since the last flush, and
    (now and then) a snapshot that makes older updates unnecessary for loading."""

    key: BoardKey
    meta: dict[str, Any]
    updates: tuple[BoardUpdate, ...]
    at: float
    snapshot: tuple[bytes, int] | None = None  # (document, seq it includes)


class BoardStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self, key: BoardKey) -> StoredBoard | None:
        """The board's meta, snapshot and the updates saved after it; None if never saved."""
        ...

    async def save(self, saves: list[BoardSave]) -> None:
        """Store several boards' flushes in one transaction (the updates' seqs are new)."""
        ...

    async def history(self, key: BoardKey, until: float) -> list[BoardUpdate]:
        """Every update saved at or before ``until`` from the board's start (not from a snapshot:
        the history is kept whole, for rendering a page at a past time)."""
        ...

    async def put_asset(self, asset: Asset) -> None: ...

    async def get_asset(self, asset_id: str) -> Asset | None: ...

    async def list_assets(self, room_id: str, kind: str) -> list[Asset]:
        """Without their data's order guarantee beyond created_at, then id."""
        ...


class MemoryBoardStore:
    """Tests and store: memory: nothing survives the process."""

    def __init__(self) -> None:
        self._boards: dict[BoardKey, tuple[dict[str, Any], bytes | None, int]] = {}
        self._updates: dict[BoardKey, list[BoardUpdate]] = {}
        self._assets: dict[str, Asset] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self, key: BoardKey) -> StoredBoard | None:
        row = self._boards.get(key)
        if row is None:
            return None
        meta, snap, snap_seq = row
        return StoredBoard(key, meta, snap, snap_seq, [u for u in self._updates.get(key, []) if u.seq > snap_seq])

    async def save(self, saves: list[BoardSave]) -> None:
        for s in saves:
            old = self._boards.get(s.key)
            snap, snap_seq = s.snapshot if s.snapshot is not None else ((old[1], old[2]) if old else (None, 0))
            self._boards[s.key] = (s.meta, snap, snap_seq)
            self._updates.setdefault(s.key, []).extend(s.updates)

    async def history(self, key: BoardKey, until: float) -> list[BoardUpdate]:
        return [u for u in self._updates.get(key, []) if u.at <= until]

    async def put_asset(self, asset: Asset) -> None:
        self._assets[asset.asset_id] = asset

    async def get_asset(self, asset_id: str) -> Asset | None:
        return self._assets.get(asset_id)

    async def list_assets(self, room_id: str, kind: str) -> list[Asset]:
        return sorted((a for a in self._assets.values() if a.room_id == room_id and a.kind == kind),
                      key=lambda a: (a.created_at, a.asset_id))

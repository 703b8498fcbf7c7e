"""The boards of the rooms this process serves: loaded from the store on first use, saved by a
write-behind (every FLUSH_S; a kill -9 loses at most that much drawing), dropped from memory when
their room stops being served.  Also renders pages (exports) and past states (the recording)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pycrdt
from PIL import Image

from whiteboard.board import Board, BoardKey, BoardLimits, BoardMeta, Page, elements_of
from whiteboard.board_render import page_image
from whiteboard.board_store import Asset, BoardSave, BoardStore, BoardUpdate, StoredBoard
from whiteboard.board_timeline import BoardTimeline

log = logging.getLogger("urok.board")

FLUSH_S = 0.5  # write-behind period: the most drawing a crash can lose
SNAPSHOT_EVERY = 120  # flushes between snapshots (loading reads the snapshot and what follows it)


@dataclass(slots=True)
class _Saving:
    """Per board: the last seq given out and updates taken but not yet stored (a failed flush
    keeps them for the next one: nothing is lost while the database is down)."""

    seq: int
    snapshot_seq: int
    unsaved: list[BoardUpdate]


class BoardService:
    def __init__(self, store: BoardStore, limits: BoardLimits, *, clock: Callable[[], float]) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock
        self._boards: dict[BoardKey, Board] = {}
        self._saving: dict[BoardKey, _Saving] = {}
        self._loading: dict[BoardKey, asyncio.Task[Board]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        await self.store.open()
        self._flusher = asyncio.create_task(self._flush_loop(), name="board-write-behind")

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        await self.store.close()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except Exception:  # the database is down: the updates stay queued, retried next time
                log.exception("saving boards failed; retrying in %.1f s", FLUSH_S)

    # --- boards in memory -----------------------------------------------------------------------
    async def board(self, key: BoardKey) -> Board:
        b = self._boards.get(key)
        if b is not None:
            return b
        task = self._loading.get(key)
        if task is None:  # one load per board, however many join at once
            task = self._loading[key] = asyncio.create_task(self._load(key))
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(task)

    def loaded(self, key: BoardKey) -> Board | None:
        return self._boards.get(key)

    async def _load(self, key: BoardKey) -> Board:
        stored = await self.store.load(key)
        b = self._from_stored(key, stored)
        self._boards[key] = b
        self._saving[key] = _Saving(stored.last_seq if stored else 0, stored.snapshot_seq if stored else 0, [])
        if stored is None:
            b.meta_dirty = True  # the board exists from now on (its first page)
        return b

    def _from_stored(self, key: BoardKey, stored: StoredBoard | None) -> Board:
        if stored is None:
            return Board(key, self.limits, clock=self.clock)
        b = Board(key, self.limits, clock=self.clock, meta=BoardMeta.from_json(stored.meta))
        b.load(([stored.snapshot] if stored.snapshot else []) + [u.data for u in stored.updates])
        return b

    async def unload_room(self, room_id: str) -> None:
        """The room is no longer served: save its boards, then forget them (those not saved, the
        database being down, stay until a later flush succeeds: closing a room never raises)."""
        try:
            await self.flush()
        except Exception:
            log.exception("saving the boards of room %s failed; they stay in memory for the next try", room_id)
        for key in [k for k in self._boards if k.room_id == room_id]:
            if key in self._saving and self._saving[key].unsaved:
                continue  # not stored yet (the database is down): kept until a flush succeeds
            del self._boards[key]
            self._saving.pop(key, None)

    # --- write-behind ---------------------------------------------------------------------------
    async def flush(self) -> None:
        async with self._flush_lock:
            now = self.clock()
            saves: list[BoardSave] = []
            for key, b in self._boards.items():
                sv = self._saving[key]
                pending = b.take_pending()
                if pending is not None:
                    sv.seq += 1
                    sv.unsaved.append(BoardUpdate(sv.seq, now, pending))
                if not sv.unsaved and not b.meta_dirty:
                    continue
                snapshot = None
                if sv.unsaved and sv.seq - sv.snapshot_seq >= SNAPSHOT_EVERY:
                    snapshot = (b.state(), sv.seq)
                    b.recount()  # the exact size now and then (apply() estimates between)
                b.meta_dirty = False
                saves.append(BoardSave(key, b.meta.to_json(), tuple(sv.unsaved), now, snapshot))
            if not saves:
                return
            try:
                await self.store.save(saves)
            except Exception:
                for s in saves:
                    if (b2 := self._boards.get(s.key)) is not None:
                        b2.meta_dirty = True
                raise
            for s in saves:
                sv = self._saving[s.key]
                del sv.unsaved[: len(s.updates)]
                if s.snapshot is not None:
                    sv.snapshot_seq = s.snapshot[1]

    # --- pictures ---------------------------------------------------------------------------------
    async def background(self, asset_id: str | None) -> Image.Image | None:
        if asset_id is None:
            return None
        asset = await self.store.get_asset(asset_id)
        if asset is None:
            return None
        return await asyncio.to_thread(_decode, asset.data)

    async def render_pages(self, board: Board, pages: list[Page], *, scale: float = 1.0) -> list[Image.Image]:
        out = []
        for p in pages:
            bg = await self.background(p.background)
            out.append(await asyncio.to_thread(page_image, p, board.elements_json(p.page_id), bg, scale=scale))
        return out

    async def snapshot_board(self, key: BoardKey) -> Board:
        """The board as stored and live: the live one if served, else read from the store."""
        b = self._boards.get(key)
        if b is not None:
            return b
        return self._from_stored(key, await self.store.load(key))

    async def render_at(self, key: BoardKey, page_index: int, at: float, *, scale: float = 1.0) -> Image.Image | None:
        """The page (by position, 0 = first) as it looked at ``at`` (epoch s), from the stored
        history (saved every FLUSH_S: that is its resolution).  None if the board or page did not
        exist yet.  The recording's composer calls this for the times of its frames."""
        history = await self.store.history(key, at)
        stored = await self.store.load(key)
        if stored is None or not history:
            return None
        meta = BoardMeta.from_json(stored.meta)
        if not 0 <= page_index < len(meta.pages):
            return None
        page = meta.pages[page_index]
        doc: pycrdt.Doc[pycrdt.Map[object]] = pycrdt.Doc()
        elements = doc.get("elements", type=pycrdt.Map)
        for u in history:
            doc.apply_update(u.data)
        bg = await self.background(page.background)
        return await asyncio.to_thread(page_image, page, elements_of(elements, page.page_id), bg, scale=scale)

    async def timeline(self, key: BoardKey, *, until: float = float("inf"), scale: float = 1.0) -> BoardTimeline:
        """The board over the lesson for the recording's composer (board_timeline.py): what was
        shown to everyone when, from the stored history (a live board is flushed first)."""
        if key in self._boards:
            try:
                await self.flush()
            except Exception:
                log.exception("saving boards before a timeline failed; it shows what was saved")
        stored = await self.store.load(key)
        live = self._boards.get(key)
        meta = live.meta if live is not None else BoardMeta.from_json(stored.meta if stored is not None else None)
        history = await self.store.history(key, until)
        backgrounds: dict[str, Image.Image] = {}
        for p in meta.pages:
            if p.background is not None and p.background not in backgrounds:
                img = await self.background(p.background)
                if img is not None:
                    backgrounds[p.background] = img
        return BoardTimeline(meta, history, backgrounds, scale=scale)

    async def add_asset(self, asset: Asset) -> None:
        await self.store.put_asset(asset)


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.copy()

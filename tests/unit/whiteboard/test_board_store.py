"""The BoardStore contract, every implementation (memory, SQLite, PostgreSQL), and the service on
top: the write-behind saves what changed, a new process loads the same board, snapshots shorten
loading but keep the whole history, a page renders as it was at a past time (the recording)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pycrdt
import pytest

from signaling.rooms import Room, RoomSettings
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.e2e.board_peer import BoardPeer
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running
from whiteboard import board_service
from whiteboard.board import BoardKey, BoardLimits, BoardMeta, Page, elements_of
from whiteboard.board_service import BoardService
from whiteboard.board_store import Asset, BoardSave, BoardStore, BoardUpdate, MemoryBoardStore
from whiteboard.sql_board_store import SqlBoardStore

KEY = BoardKey("room-1")
GROUP = BoardKey("room-1", "g1")


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg: PgCluster | None) -> AsyncIterator[BoardStore]:
    rooms: SqlStore | None = None
    if request.param == "memory":
        s: BoardStore = MemoryBoardStore()
    else:
        if request.param == "sqlite":
            url = sqlite_url(tmp_path / "data")
        elif pg is None:
            pytest.skip(SKIP_REASON)
        else:
            url = await pg.new_database()
        rooms = SqlStore(url)  # migrates: r0009 makes the tables
        await rooms.open()
        for rid in ("room-1", "room-2"):  # boards belong to rooms (a foreign key)
            await rooms.create_room(Room(room_id=rid, settings=RoomSettings(), created_at=1.0))
        sql = rooms
        s = SqlBoardStore(lambda: sql.engine)
    await s.open()
    yield s
    await s.close()
    if rooms is not None:
        await rooms.close()


async def test_saves_load_back_by_board_with_snapshots_and_history(store: BoardStore) -> None:
    assert await store.load(KEY) is None
    meta = {"pages": [{"page_id": "p1"}], "rights": {"mode": "nobody", "pens": []}, "follow": None}
    await store.save([BoardSave(KEY, meta, (BoardUpdate(1, 10.0, b"u1"), BoardUpdate(2, 11.0, b"u2")), 11.0),
                      BoardSave(GROUP, {"g": 1}, (BoardUpdate(1, 10.5, b"g1"),), 11.0)])
    got = await store.load(KEY)
    assert got is not None and got.meta == meta and got.snapshot is None and got.last_seq == 2
    assert [u.data for u in got.updates] == [b"u1", b"u2"]
    await store.save([BoardSave(KEY, meta, (BoardUpdate(3, 12.0, b"u3"),), 12.0, snapshot=(b"snap", 3)),
                      BoardSave(KEY, {"again": True}, (BoardUpdate(4, 13.0, b"u4"),), 13.0)])
    got = await store.load(KEY)
    assert got is not None and got.snapshot == b"snap" and got.snapshot_seq == 3 and got.meta == {"again": True}
    assert [u.seq for u in got.updates] == [4] and got.last_seq == 4
    assert [u.data for u in await store.history(KEY, 11.5)] == [b"u1", b"u2"]
    assert [u.seq for u in await store.history(KEY, 99.0)] == [1, 2, 3, 4]
    group = await store.load(GROUP)
    assert group is not None and [u.data for u in group.updates] == [b"g1"]


async def test_assets_by_id_and_kind(store: BoardStore) -> None:
    a = Asset("a1", "room-1", "background", "sheet.pdf", "image/png", b"\x89PNG...", 5.0)
    x = Asset("x1", "room-1", "export", "board.pdf", "application/pdf", b"%PDF-", 6.0)
    other = Asset("x2", "room-2", "export", "b.pdf", "application/pdf", b"%PDF-", 7.0)
    for asset in (a, x, other):
        await store.put_asset(asset)
    assert await store.get_asset("a1") == a
    assert await store.get_asset("nope") is None
    assert await store.list_assets("room-1", "export") == [x]


class FailingOnce(MemoryBoardStore):
    """The database is down for one save: the service must keep the updates for the next flush."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = 0

    async def save(self, saves: list[BoardSave]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database down")
        await super().save(saves)


async def test_the_service_saves_loads_after_a_restart_and_survives_a_failed_flush(
        store: BoardStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board_service, "SNAPSHOT_EVERY", 3)
    now = [100.0]
    svc = BoardService(store, BoardLimits(), clock=lambda: now[0])
    board = await svc.board(KEY)
    board.add_pages([Page("p2")])
    peer = BoardPeer("t")
    eid, u = peer.stroke("p1", [100, 100, 500, 100])
    board.apply(u, "t")
    await svc.flush()
    t_first = now[0]
    for i in range(5):  # past a snapshot
        now[0] += 1.0
        board.apply(peer.extend(eid, [600 + i, 100]), "t")
        await svc.flush()
    await svc.unload_room(KEY.room_id)
    assert svc.loaded(KEY) is None
    # "a new process": another service on the same store
    svc2 = BoardService(store, BoardLimits(), clock=lambda: now[0])
    again = await svc2.board(KEY)
    assert [p.page_id for p in again.meta.pages] == ["p1", "p2"]
    assert again.elements_json()[0]["pts"] == peer.points(eid)
    stored = await store.load(KEY)
    assert stored is not None and stored.snapshot is not None  # loading starts from a snapshot
    # the page as it was after the first flush: only the first segment is drawn
    img = await svc2.render_at(KEY, 0, t_first)
    assert img is not None
    assert img.getpixel((300, 100))[1] < 100 and img.getpixel((603, 100)) == (255, 255, 255)
    latest = await svc2.render_at(KEY, 0, now[0])
    assert latest is not None and latest.getpixel((603, 100))[1] < 100
    assert await svc2.render_at(KEY, 0, 0.0) is None  # before the board existed
    assert await svc2.render_at(KEY, 7, now[0]) is None  # no such page


async def test_a_failed_flush_loses_nothing() -> None:
    store = FailingOnce()
    svc = BoardService(store, BoardLimits(), clock=lambda: 1.0)
    board = await svc.board(KEY)
    peer = BoardPeer("t")
    board.apply(peer.stroke("p1", [1, 1])[1], "t")
    store.fail = 2
    with pytest.raises(ConnectionError):
        await svc.flush()
    board.apply(peer.stroke("p1", [2, 2])[1], "t")
    await svc.unload_room(KEY.room_id)  # fails to save, does not raise
    assert svc.loaded(KEY) is not None  # unsaved updates keep the board in memory
    await svc.flush()
    await svc.unload_room(KEY.room_id)
    assert svc.loaded(KEY) is None
    fresh = BoardService(store, BoardLimits(), clock=lambda: 2.0)
    assert len((await fresh.board(KEY)).elements_json()) == 2


async def test_the_timeline_shows_the_followed_page_as_it_was() -> None:
    """The recording's view: nothing while no page is followed, then the followed page as it was."""
    now = [10.0]
    svc = BoardService(MemoryBoardStore(), BoardLimits(), clock=lambda: now[0])
    board = await svc.board(KEY)
    board.add_pages([Page("p2")])
    peer = BoardPeer("t")
    board.apply(peer.stroke("p1", [100, 100, 700, 100], width=10)[1], "t")
    await svc.flush()
    now[0] = 12.0
    board.set_follow("p1")
    now[0] = 14.0
    board.apply(peer.stroke("p1", [100, 500, 700, 500], width=10)[1], "t")
    await svc.flush()
    now[0] = 15.0
    board.set_follow("p2")
    now[0] = 16.0
    board.set_follow(None)
    timeline = await svc.timeline(KEY)
    assert await timeline.frame(11.0) is None  # not shown yet
    first = await timeline.frame(13.0)
    assert first is not None and first.getpixel((400, 100))[1] < 100 and first.getpixel((400, 500)) == (255, 255, 255)
    both = await timeline.frame(14.5)
    assert both is not None and both.getpixel((400, 500))[1] < 100
    assert await timeline.frame(14.6) is both  # nothing changed: not drawn again
    blank = await timeline.frame(15.5)  # page 2 shown, empty
    assert blank is not None and blank.getpixel((400, 100)) == (255, 255, 255)
    assert await timeline.frame(16.5) is None  # the host let everyone go
    again = await timeline.frame(13.0)  # back in time: starts over
    assert again is not None and again.getpixel((400, 500)) == (255, 255, 255)
    # the log is stored with the board's meta
    await svc.flush()
    stored = await svc.store.load(KEY)
    assert stored is not None
    meta = BoardMeta.from_json(stored.meta)
    assert meta.follow_log == [(12.0, "p1"), (15.0, "p2"), (16.0, None)]
    assert meta.shown_at(15.2) == "p2" and meta.shown_at(1.0) is None


async def test_the_timelines_elements_at_each_time_are_the_boards_as_converted_whole() -> None:
    """The timeline converts only the elements an update touched; what it draws is still every element
    of the shown page in drawing order (strokes added, extended, deleted, on two pages)."""
    now = [10.0]
    svc = BoardService(MemoryBoardStore(), BoardLimits(), clock=lambda: now[0])
    board = await svc.board(KEY)
    board.add_pages([Page("p2")])
    board.set_follow("p1")
    peer = BoardPeer("t")
    ids = []
    for i in range(6):
        now[0] = 11.0 + i
        eid, update = peer.stroke("p1" if i % 3 else "p2", [10.0 * i, 10, 20, 20])
        board.apply(update, "t")
        ids.append(eid)
    now[0] = 20.0
    board.apply(peer.extend(ids[1], [30, 30]), "t")
    now[0] = 21.0
    board.apply(peer.delete(ids[2]), "t")
    await svc.flush()
    timeline = await svc.timeline(KEY)
    for at in (10.5, 12.5, 15.5, 20.5, 21.5):
        await timeline.frame(at)
        replay = pycrdt.Doc()
        elements = replay.get("elements", type=pycrdt.Map)
        for u in timeline.history:
            if u.at <= at:
                replay.apply_update(u.data)
        assert timeline._page_elements("p1") == elements_of(elements, "p1"), at
        assert timeline._page_elements("p2") == elements_of(elements, "p2"), at

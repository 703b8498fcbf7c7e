"""One suite for every RecordingStore: the memory store and the SQL store (on the room store's engine,
SQLite and PostgreSQL; migrations r0006 applied by SqlStore.open)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from recordings.errors import RecordingNotFound
from recordings.recording import Recording, RecordingState, TrackInfo
from recordings.recording_store import MemoryRecordingStore, RecordingQuery, RecordingStore
from recordings.sql_recording_store import SqlRecordingStore
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg: PgCluster | None) -> AsyncIterator[RecordingStore]:
    rooms: SqlStore | None = None
    if request.param == "memory":
        s: RecordingStore = MemoryRecordingStore()
    else:
        if request.param == "sqlite":
            url = sqlite_url(tmp_path / "data")
        else:
            if pg is None:
                pytest.skip(SKIP_REASON)
            url = await pg.new_database()
        rooms = SqlStore(url)
        await rooms.open()
        sql = rooms
        s = SqlRecordingStore(lambda: sql.engine)
    await s.open()
    yield s
    await s.close()
    if rooms is not None:
        await rooms.close()


def rec(rid: str, room: str = "r1", *, at: float = 1000.0, external: str | None = None,
        state: RecordingState = RecordingState.RECORDING, ended: float | None = None) -> Recording:
    return Recording(recording_id=rid, room_id=room, room_name="Физика", external_id=external, state=state,
                     started_at=at, ended_at=ended, started_by="p1")


async def test_a_recording_round_trips_with_its_tracks(store: RecordingStore) -> None:
    r = rec("a", external="journal-1")
    await store.add(r)
    assert await store.get("a") == r
    track = TrackInfo(file="p1-camera-0.webm", participant_id="p1", name="Анна", source="camera", kind="video",
                      codec="vp8", start=0.25, end=61.5, size_bytes=123456)
    done = r.with_(state=RecordingState.READY, ended_at=1061.5, duration_s=61.5, size_bytes=999, tracks=(track,),
                   composed="lesson.mp4", progress=1.0, chat=True)
    await store.save(done)
    assert await store.get("a") == done
    assert await store.get("nope") is None


async def test_saving_a_deleted_recording_says_not_found(store: RecordingStore) -> None:
    await store.add(rec("a"))
    assert await store.delete("a")
    assert not await store.delete("a")
    with pytest.raises(RecordingNotFound):
        await store.save(rec("a"))


async def test_find_filters_newest_first_and_pages(store: RecordingStore) -> None:
    for i in range(5):
        await store.add(rec(f"r{i}", room="r1" if i % 2 else "r2", at=1000.0 + i,
                            external="j" if i < 2 else None,
                            state=RecordingState.READY if i == 4 else RecordingState.RECORDING))
    found, total = await store.find(RecordingQuery(), offset=0, limit=2)
    assert total == 5 and [r.recording_id for r in found] == ["r4", "r3"]
    found, total = await store.find(RecordingQuery(), offset=4, limit=2)
    assert total == 5 and [r.recording_id for r in found] == ["r0"]
    found, total = await store.find(RecordingQuery(room_id="r1"), offset=0, limit=10)
    assert total == 2 and [r.recording_id for r in found] == ["r3", "r1"]
    found, _ = await store.find(RecordingQuery(external_id="j"), offset=0, limit=10)
    assert [r.recording_id for r in found] == ["r1", "r0"]
    found, _ = await store.find(RecordingQuery(since=1002.0, until=1004.0), offset=0, limit=10)
    assert [r.recording_id for r in found] == ["r3", "r2"]
    found, _ = await store.find(RecordingQuery(state=RecordingState.READY), offset=0, limit=10)
    assert [r.recording_id for r in found] == ["r4"]


async def test_ended_before_gives_only_finished_old_ones(store: RecordingStore) -> None:
    await store.add(rec("running"))
    await store.add(rec("old", ended=500.0, state=RecordingState.READY))
    await store.add(rec("older", ended=400.0, state=RecordingState.FAILED))
    await store.add(rec("new", ended=2000.0, state=RecordingState.READY))
    assert [r.recording_id for r in await store.ended_before(1000.0, limit=10)] == ["older", "old"]
    assert [r.recording_id for r in await store.ended_before(1000.0, limit=1)] == ["older"]

"""The meetings' store under every implementation: in memory, SQL on SQLite, SQL on PostgreSQL (a
throwaway cluster: tests/pg_cluster.py; skipped, saying why, without the PostgreSQL binaries).
The SQL ones run on the engine of a real SqlStore, as the app does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from signaling.bbb.meetings import MeetingStore, MemoryMeetingStore, SqlMeetingStore
from signaling.rooms import Room, RoomSettings
from signaling.store import MemoryStore, RoomStore
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running


@pytest.fixture(scope="session")
def bbb_pg_cluster() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@dataclass
class Stores:
    rooms: RoomStore
    meetings: MeetingStore

    async def room(self, room_id: str) -> str:
        """A room in the room store (the SQL meetings' rows hang off it)."""
        await self.rooms.create_room(Room(room_id=room_id, settings=RoomSettings(), created_at=1.0))
        return room_id


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path, bbb_pg_cluster: PgCluster | None,
                 ) -> AsyncIterator[Stores]:
    if request.param == "memory":
        rooms: RoomStore = MemoryStore()
        meetings: MeetingStore = MemoryMeetingStore()
    else:
        if request.param == "sqlite":
            sql = SqlStore(sqlite_url(tmp_path / "data"))
        elif bbb_pg_cluster is None:
            pytest.skip(SKIP_REASON)
        else:
            sql = SqlStore(await bbb_pg_cluster.new_database())
        rooms = sql
        meetings = SqlMeetingStore(lambda: sql.engine)
    await rooms.open()
    await meetings.open()
    yield Stores(rooms, meetings)
    await meetings.close()
    await rooms.close()

"""Every RoomStore implementation under one fixture: the memory store, SqlStore on a SQLite file,
SqlStore on PostgreSQL (a throwaway cluster this test session starts: tests/pg_cluster.py).  Without
the PostgreSQL binaries the postgres cases are skipped, saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from signaling.store import MemoryStore, RoomStore
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running

STORES = ["memory", "sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@pytest.fixture
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PgCluster | None) -> str:
    """A database URL for the SQL backends (the test's parameter says which)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return sqlite_url(tmp_path / "data")
    if pg_cluster is None:
        pytest.skip(SKIP_REASON)
    return await pg_cluster.new_database()


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PgCluster | None,
                ) -> AsyncIterator[RoomStore]:
    if request.param == "memory":
        s: RoomStore = MemoryStore()
    elif request.param == "sqlite":
        s = SqlStore(sqlite_url(tmp_path / "data"))
    else:
        if pg_cluster is None:
            pytest.skip(SKIP_REASON)
        s = SqlStore(await pg_cluster.new_database())
    await s.open()
    yield s
    await s.close()

"""The BreakoutStore contract; every implementation runs this suite: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from signaling.rooms.breakout_store import (
    BreakoutStore,
    BreakoutTemplate,
    MemoryBreakoutStore,
    SqlBreakoutStore,
    StintRecord,
    TemplateGroup,
)
from signaling.store.sql_store import SqlStore, sqlite_url
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg: PgCluster | None) -> AsyncIterator[BreakoutStore]:
    rooms: SqlStore | None = None
    if request.param == "memory":
        s: BreakoutStore = MemoryBreakoutStore()
    else:
        if request.param == "sqlite":
            url = sqlite_url(tmp_path / "data")
        elif pg is None:
            pytest.skip(SKIP_REASON)
        else:
            url = await pg.new_database()
        rooms = SqlStore(url)  # migrates: r0008 makes the tables
        await rooms.open()
        sql = rooms
        s = SqlBreakoutStore(lambda: sql.engine)
    await s.open()
    yield s
    await s.close()
    if rooms is not None:
        await rooms.close()


def template(name: str = "Пары", class_id: str = "7А", *, tid: str = "BT_1", now: float = 1.0,
             first: tuple[str, ...] = ("ivanov", "petrova")) -> BreakoutTemplate:
    return BreakoutTemplate(tid, class_id, name, (TemplateGroup("Группа 1", first), TemplateGroup("Группа 2", ("li",))),
                            now, now)


async def test_a_saved_template_reads_back_equal_and_only_for_its_class(store: BreakoutStore) -> None:
    saved = await store.save_template(template())
    assert saved == template()
    assert await store.template("BT_1") == saved
    assert await store.templates("7А") == [saved]
    assert await store.templates("7Б") == []
    assert await store.template("BT_nope") is None


async def test_the_same_name_in_a_class_replaces_the_groups_and_keeps_the_id(store: BreakoutStore) -> None:
    await store.save_template(template())
    again = await store.save_template(template(tid="BT_2", now=5.0, first=("sidorov",)))
    assert again.template_id == "BT_1" and again.created_at == 1.0 and again.updated_at == 5.0
    assert [t.groups[0].identities for t in await store.templates("7А")] == [("sidorov",)]


async def test_two_saves_of_one_new_name_at_once_make_one_template(store: BreakoutStore) -> None:
    results = await asyncio.gather(*(store.save_template(template(tid=f"BT_{i}")) for i in range(4)))
    assert len({t.template_id for t in results}) == 1
    assert len(await store.templates("7А")) == 1


async def test_a_deleted_template_is_gone(store: BreakoutStore) -> None:
    await store.save_template(template())
    assert await store.delete_template("BT_1") is True
    assert await store.delete_template("BT_1") is False
    assert await store.templates("7А") == []


async def test_attendance_of_a_session_is_replaced_as_it_grows_and_read_by_room(store: BreakoutStore) -> None:
    first = [StintRecord("R1", "BS_1", "BS_1_G1", "Группа 1", "PA_1", "ivanov", "Иванов", 10.0, None)]
    await store.save_stints("R1", "BS_1", first)
    later = [StintRecord("R1", "BS_1", "BS_1_G1", "Группа 1", "PA_1", "ivanov", "Иванов", 10.0, 20.0),
             StintRecord("R1", "BS_1", "BS_1_G2", "Группа 2", "PA_1", "ivanov", "Иванов", 20.0, 30.0),
             StintRecord("R1", "BS_1", "BS_1_G2", "Группа 2", "PA_H", "teacher", "Учитель", 25.0, 30.0, True)]
    await store.save_stints("R1", "BS_1", later)
    await store.save_stints("R2", "BS_9", [StintRecord("R2", "BS_9", "G", "G", "PA_9", "x", "x", 1.0, 2.0)])
    assert await store.stints("R1") == later
    assert [s.room_id for s in await store.stints("R2")] == ["R2"]

"""What only the SQL store has: migrations, what is (not) in the database's rows, several
processes on one database.  Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.rooms import Identity, Role, Room, RoomSettings
from signaling.settings import Settings
from signaling.store import MemoryStore
from signaling.store import schema as t
from signaling.store.all_tables import full_metadata
from signaling.store.factory import make_store
from signaling.store.migrate import SchemaError, alembic_config, head_revision, upgrade
from signaling.store.sql_store import SqlStore, driver_url, upgrade_database

pytestmark = pytest.mark.parametrize("sql_url", ["sqlite", "postgres"], indirect=True)


async def test_the_migrated_schema_is_the_one_the_code_uses(sql_url: str) -> None:
    s = SqlStore(sql_url)
    await s.open()
    try:
        async with s.engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), full_metadata()))
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert diff == [] and version == head_revision()
    finally:
        await s.close()


async def test_a_database_from_a_newer_urok_is_refused_with_a_clear_error(sql_url: str) -> None:
    s = SqlStore(sql_url)
    await s.open()
    async with s.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'r9999'"))
    await s.close()
    with pytest.raises(SchemaError, match="newer urok"):
        await SqlStore(sql_url).open()


async def test_without_migrate_on_start_an_old_schema_is_refused_until_db_upgrade(sql_url: str) -> None:
    with pytest.raises(SchemaError, match="run `urok db upgrade`"):  # an empty database
        await SqlStore(sql_url, migrate=False).open()
    s = SqlStore(sql_url)
    await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    await s.close()
    engine = create_async_engine(driver_url(sql_url))  # the schema of an older urok: one revision back
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "-1"))
    finally:
        await engine.dispose()
    with pytest.raises(SchemaError, match="this urok needs"):
        await SqlStore(sql_url, migrate=False).open()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision()).down_revision
    assert await upgrade_database(sql_url) == (previous, head_revision())
    assert await upgrade_database(sql_url) == (head_revision(), head_revision())  # idempotent
    s = SqlStore(sql_url, migrate=False)
    try:
        await s.open()
    finally:
        await s.close()


async def test_opening_twice_migrates_once_and_keeps_the_rooms(sql_url: str) -> None:
    s = SqlStore(sql_url)
    await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    await s.close()
    s2 = SqlStore(sql_url)
    try:
        assert await s2.get_room("A") is not None
    finally:
        await s2.close()


async def test_a_deleted_messages_text_is_gone_from_the_database(sql_url: str) -> None:
    s = SqlStore(sql_url)
    r, _ = await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    host = r.admit_or_queue(Identity("t", "Teacher", Role.HOST, True), 2.0)
    kept = r.chat_send(host, "homework: page 12", None, 3.0)
    secret = r.chat_send(host, "my phone is 555-0100", None, 4.0)
    await s.save_room(r)  # as the chat handlers do: every durable change marks its room
    await s.flush()
    async with s.engine.connect() as conn:
        texts = {row.message_id: row.text for row in
                 await conn.execute(sa.select(t.chat_messages.c.message_id, t.chat_messages.c.text))}
    assert texts == {kept.message_id: "homework: page 12", secret.message_id: "my phone is 555-0100"}
    r.chat_delete(host, secret.message_id)
    await s.save_room(r)
    await s.flush()
    async with s.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.chat_messages.c.text, t.chat_messages.c.deleted)
                                   .where(t.chat_messages.c.message_id == secret.message_id))).all()
        hits = await conn.scalar(sa.select(sa.func.count()).select_from(t.chat_messages)
                                 .where(t.chat_messages.c.text.like("%555-0100%")))
    await s.close()
    assert [tuple(row) for row in rows] == [("", True)] and hits == 0


async def test_two_processes_creating_one_external_id_get_one_room(sql_url: str) -> None:
    a, b = SqlStore(sql_url), SqlStore(sql_url)
    await a.open()
    await b.open()
    try:
        results = await asyncio.gather(*(
            s.create_room(Room(room_id=f"R{n}", settings=RoomSettings(external_id="ej-1"), created_at=float(n)))
            for n, s in enumerate([a, b] * 5)))
        assert sum(created for _, created in results) == 1
        assert len({r.room_id for r, _ in results}) == 1
        assert await a.count_rooms(active_only=False) == 1
    finally:
        await a.close()
        await b.close()


async def test_the_settings_pick_the_store(sql_url: str, tmp_path: Path) -> None:
    assert isinstance(make_store(Settings(store="memory")), MemoryStore)
    default = make_store(Settings())  # the embedded default: a SQLite file under ./data
    assert isinstance(default, SqlStore) and default.url.endswith("/data/urok.sqlite3")
    lite = make_store(Settings(store="sqlite", data_dir=str(tmp_path / "d")))
    assert isinstance(lite, SqlStore) and lite.url.endswith("/d/urok.sqlite3")
    if sql_url.startswith("postgresql"):
        pg = make_store(Settings(store="postgres", database_url=sql_url))
        assert isinstance(pg, SqlStore) and pg.url == sql_url
    else:
        assert isinstance(lite, SqlStore)
        await lite.open()
        async with lite.engine.connect() as conn:
            assert await conn.scalar(sa.text("PRAGMA journal_mode")) == "wal"
        await lite.close()


async def test_retention_deletes_old_ended_rooms_and_old_chat_only(sql_url: str) -> None:
    day = 86_400.0
    s = SqlStore(sql_url, retention_rooms_s=365 * day, retention_chat_s=90 * day, clock=lambda: 0.0)
    rooms: dict[str, Room] = {}
    for rid, ended in (("old", 1.0), ("quiet", 300 * day), ("recent", 399 * day), ("live", None)):
        r, _ = await s.create_room(Room(room_id=rid, settings=RoomSettings(), created_at=0.0))
        host = r.admit_or_queue(Identity(f"t-{rid}", "Teacher", Role.HOST, True), 0.5)
        r.chat_send(host, f"in {rid}", None, 0.6)
        if ended is not None:
            r.end(ended)
        await s.save_room(r)
        rooms[rid] = r
    await s.flush()
    assert await s.purge(400 * day) == {"rooms": 1, "chat_messages": 2}
    async with s.engine.connect() as conn:
        left = set((await conn.scalars(sa.select(t.rooms.c.room_id))).all())
        chat_in = set((await conn.scalars(sa.select(t.chat_messages.c.room_id))).all())
        orphans = await conn.scalar(sa.select(sa.func.count()).select_from(t.participants)
                                    .where(t.participants.c.room_id == "old"))
    assert left == {"quiet", "recent", "live"} and chat_in == {"recent", "live"} and orphans == 0
    assert await s.get_room("old") is None
    quiet = await s.get_room("quiet")
    assert quiet is not None and quiet is not rooms["quiet"] and len(quiet.chat) == 0  # reloaded: no chat
    assert await s.get_room("live") is rooms["live"]  # a room in use stays the same object
    await s.close()


async def test_every_revision_upgrades_from_the_one_before_and_downgrades(sql_url: str) -> None:
    """A database made by each earlier schema version upgrades to this one (and back, for a rollback)."""
    s = SqlStore(sql_url)
    await s.open()
    await s.close()
    engine = create_async_engine(driver_url(sql_url))
    revisions = [r.revision for r in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "base"))
            assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("rooms"))
        for rev in revisions:
            async with engine.begin() as conn:
                await conn.run_sync(upgrade, rev)
                assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == rev
    finally:
        await engine.dispose()
    again = SqlStore(sql_url)
    try:
        await again.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
        assert await again.get_room("A") is not None
    finally:
        await again.close()

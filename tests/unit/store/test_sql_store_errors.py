"""A database that cannot be used: the server must not start on it (and say why); a database that
fails during a lesson: the lesson goes on from memory and the write is retried, nothing lost."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa

from signaling.rooms import Identity, Role, Room, RoomSettings
from signaling.store.migrate import StoreUnavailable
from signaling.store.sql_store import SQLITE_FILE, SqlStore, sqlite_url
from tests.conftest import free_port


async def test_a_corrupt_sqlite_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / SQLITE_FILE).write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(StoreUnavailable, match=f"{SQLITE_FILE}: file is not a database"):
        await SqlStore(sqlite_url(tmp_path)).open()


def test_a_read_only_sqlite_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        asyncio.run(_read_only_is_refused(tmp_path))
        return
    # root writes read-only files anyway: the check runs as the unprivileged user nobody, in a forked
    # child (its modules already loaded), in a folder of its own (tmp_path's parents are root's, 0700)
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="urok-readonly-"))
    try:
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                asyncio.run(_read_only_is_refused(folder))
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)  # the child this test forked
        assert os.waitstatus_to_exitcode(status) == 0, "as nobody, the read-only file was not refused (see stderr)"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _read_only_is_refused(folder: Path) -> None:
    s = SqlStore(sqlite_url(folder))
    await s.open()
    await s.close()
    _set_modes(folder, files=0o444, folder=0o555)
    try:
        with pytest.raises(StoreUnavailable, match=r"readonly|read-only|unable to open"):
            await SqlStore(sqlite_url(folder)).open()
    finally:
        _set_modes(folder, files=0o644, folder=0o755)


def _set_modes(path: Path, *, files: int, folder: int) -> None:
    for f in path.iterdir():
        f.chmod(files)
    path.chmod(folder)


async def test_an_unreachable_postgresql_is_refused_without_its_password() -> None:
    url = f"postgresql://urok:secret@127.0.0.1:{free_port()}/urok"  # nothing listens there
    with pytest.raises(StoreUnavailable, match="cannot open the database") as e:
        await SqlStore(url).open()
    assert "secret" not in str(e.value)


async def test_a_failed_write_is_counted_retried_and_loses_nothing(tmp_path: Path) -> None:
    s = SqlStore(sqlite_url(tmp_path))
    r, _ = await s.create_room(Room(room_id="A", settings=RoomSettings(), created_at=1.0))
    host = r.admit_or_queue(Identity("t", "Teacher", Role.HOST, True), 2.0)
    first = r.chat_send(host, "one", None, 3.0)
    await s.save_room(r)
    await s.flush()
    async with s.engine.begin() as conn:  # the table goes away under the server (a broken database)
        await conn.execute(sa.text("ALTER TABLE chat_messages RENAME TO chat_messages_away"))
    second = r.chat_send(host, "two", None, 4.0)
    await s.save_room(r)
    with pytest.raises(sa.exc.OperationalError):
        await s.flush()
    assert s.counters()["write_failures"] == {"": 1.0}  # /metrics: urok_store_write_failures_total
    assert [m.text for m in r.chat.messages()] == ["one", "two"]  # the lesson goes on from memory
    async with s.engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE chat_messages_away RENAME TO chat_messages"))
    await s.flush()  # the retry
    await s.close()
    again = SqlStore(sqlite_url(tmp_path))
    try:
        room = await again.get_room("A")
        assert room is not None
        assert [m.message_id for m in room.chat.messages()] == [first.message_id, second.message_id]
    finally:
        await again.close()

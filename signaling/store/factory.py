"""The store that the settings ask for."""

from __future__ import annotations

from signaling.settings import Settings
from signaling.store.memory_store import MemoryStore
from signaling.store.room_store import RoomStore
from signaling.store.sql_store import SqlStore, sqlite_url


def make_store(settings: Settings) -> RoomStore:
    """memory; sqlite: the file data_dir/urok.sqlite3; postgres: database_url.  Call ``open()``
    before serving (it connects and migrates)."""
    if settings.store == "sqlite":
        return SqlStore(sqlite_url(settings.data_dir))
    if settings.store == "postgres":
        return SqlStore(settings.database_url)
    return MemoryStore()

"""The store that the settings ask for."""

from __future__ import annotations

from signaling.settings import Settings
from signaling.store.memory_store import MemoryStore
from signaling.store.room_store import RoomStore
from signaling.store.sql_store import SqlStore, sqlite_url

DAY = 86_400.0


def make_store(settings: Settings) -> RoomStore:
    """memory; sqlite: the file data_dir/urok.sqlite3; postgres: database_url.  Call ``open()``
    before serving (it connects and migrates)."""
    if settings.store == "memory":
        return MemoryStore()
    url = sqlite_url(settings.data_dir) if settings.store == "sqlite" else settings.database_url
    return SqlStore(url, retention_rooms_s=settings.retention_rooms_days * DAY,
                    retention_chat_s=settings.retention_chat_days * DAY, migrate=settings.migrate_on_start)


def database_url(settings: Settings) -> str | None:
    """The SQL database the settings name (None for the memory store)."""
    if settings.store == "memory":
        return None
    return sqlite_url(settings.data_dir) if settings.store == "sqlite" else settings.database_url

"""Room stores behind one interface."""

from signaling.store.memory_store import MemoryStore
from signaling.store.room_store import RoomStore

__all__ = ["MemoryStore", "RoomStore"]

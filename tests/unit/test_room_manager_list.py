"""RoomManager.list_rooms: the REST room list shows rooms as RoomManager.get does, so after the
reconnect window nobody the restart cut off is still listed as present."""

from signaling.room_manager import RoomManager
from signaling.rooms import Identity, Role, Room, RoomSettings
from signaling.store import MemoryStore


async def test_after_the_reconnect_window_the_list_no_longer_shows_who_the_restart_cut_off() -> None:
    store = MemoryStore()  # as a durable store gives them back after a restart: still joined
    room, _ = await store.create_room(Room(room_id="A", settings=RoomSettings(), created_at=0.0))
    for i in ("teacher", "anna"):
        room.admit_or_queue(Identity(i, i, Role.HOST if i == "teacher" else Role.PARTICIPANT, True), 1.0)
    now = [100.0]
    rooms = RoomManager(store, clock=lambda: now[0], reconnect_window_s=60.0)  # this process started at 100

    listed, total = await rooms.list_rooms(active_only=True, offset=0, limit=10)
    assert total == 1 and listed[0].num_joined == 2  # within the window: they may still come back

    now[0] = 161.0
    listed, _ = await rooms.list_rooms(active_only=True, offset=0, limit=10)
    assert listed[0].num_joined == 0
    assert [r.intervals for r in room.attendance.records()] == [[[1.0, 100.0]], [[1.0, 100.0]]]  # left at the restart

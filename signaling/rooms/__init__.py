"""The room domain: rules as plain Python, no I/O."""

from signaling.rooms.errors import (
    EntryRefused,
    InvalidSettings,
    InvalidState,
    ParticipantNotFound,
    PermissionDenied,
    RoomClosed,
    RoomError,
    RoomFull,
    SeatTaken,
)
from signaling.rooms.participant import Participant, ParticipantState
from signaling.rooms.permissions import Action, allowed, denial, require
from signaling.rooms.role import Role
from signaling.rooms.room import Identity, Room, new_id
from signaling.rooms.room_settings import GuestPolicy, LessonRef, LockSettings, RoomMode, RoomSettings

__all__ = [
    "Action", "EntryRefused", "GuestPolicy", "Identity", "InvalidSettings", "InvalidState", "LessonRef",
    "LockSettings", "Participant", "ParticipantNotFound", "ParticipantState", "PermissionDenied", "Role", "Room",
    "RoomClosed", "RoomError", "RoomFull", "RoomMode", "RoomSettings", "SeatTaken", "allowed", "denial", "new_id",
    "require",
]

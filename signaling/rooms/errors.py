"""Named errors of the room domain; the signalling maps each to a stable wire code."""

from __future__ import annotations


class RoomError(Exception):
    code = "room_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(RoomError):
    code = "forbidden"


class ParticipantNotFound(RoomError):
    code = "not_found"


class RoomFull(RoomError):
    code = "room_full"


class RoomClosed(RoomError):
    code = "room_ended"


class EntryRefused(RoomError):
    """Guest policy ALWAYS_DENY, a ban, or a denial by a host."""

    code = "entry_refused"


class SeatTaken(RoomError):
    """The identity is connected already and the room does not let a second connection take over."""

    code = "already_connected"


class InvalidSettings(RoomError):
    code = "invalid_settings"


class InvalidState(RoomError):
    code = "invalid_state"


class InvalidInput(RoomError):
    """A request's content breaks a domain rule (empty or too long chat text, unknown emoji...)."""

    code = "invalid_message"


class RateLimitExceeded(RoomError):
    """Too many of one kind of action (chat messages, reactions) in a short time."""

    code = "rate_limited"

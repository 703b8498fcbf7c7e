"""Room settings of PROTOCOL.md (body of POST /v1/rooms), validated and stored.

Some settings only take effect in later features (recording, transcription, noise suppression);
they are validated and stored now so clients can rely on their names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec

from signaling.rooms.errors import InvalidSettings

MAX_PARTICIPANTS_CEILING = 2000


class RoomMode(StrEnum):
    MEETING = "meeting"
    WEBINAR = "webinar"


class GuestPolicy(StrEnum):
    ALWAYS_ACCEPT = "ALWAYS_ACCEPT"
    ASK_HOST = "ASK_HOST"
    ALWAYS_ACCEPT_AUTH = "ALWAYS_ACCEPT_AUTH"
    ALWAYS_DENY = "ALWAYS_DENY"
    LOCKED = "LOCKED"  # nobody new enters (a host's "nobody" in the lesson); who has been in comes back


class LockSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """true = forbidden for participants and viewers (hosts and co-hosts are never locked)."""

    camera: bool = False
    microphone: bool = False
    screen_share: bool = False
    chat: bool = False
    private_chat: bool = False
    reactions: bool = False
    whiteboard: bool = False
    self_unmute: bool = False


# A room's locks unless its settings say otherwise: a school's students do not message each other
# privately (messages to a host or co-host stay possible); LockSettings() itself is "nothing locked".
SCHOOL_LOCK = LockSettings(private_chat=True)


class RecordingSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    allowed: bool = True  # false: recording_start is refused (recording_not_allowed)
    auto_start: bool = False  # start recording when the room starts (if allowed)


class TranscriptionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = False
    language: Annotated[str, msgspec.Meta(min_length=2, max_length=16, pattern=r"^[a-zA-Z-]+$")] = "ru"


Name = Annotated[str, msgspec.Meta(max_length=200)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LessonRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The timetable lesson a room is one occurrence of (set by the lessons service, signaling/lessons):
    events and reports about the room carry it, so the e-journal finds its own ids."""

    lesson_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    external_id: ExternalId | None = None
    starts_at: float  # the occurrence's start by the timetable (seconds since the epoch)


class RoomSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Name = ""
    external_id: ExternalId | None = None
    max_participants: Annotated[int, msgspec.Meta(ge=1, le=MAX_PARTICIPANTS_CEILING)] = MAX_PARTICIPANTS_CEILING
    mode: RoomMode = RoomMode.MEETING
    guest_policy: GuestPolicy = GuestPolicy.ALWAYS_ACCEPT_AUTH
    lock: LockSettings = SCHOOL_LOCK
    recording: RecordingSettings = msgspec.field(default_factory=RecordingSettings)
    transcription: TranscriptionSettings = msgspec.field(default_factory=TranscriptionSettings)
    noise_suppression: bool = False
    duration_minutes: Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)] = 0
    # a second connection of someone who is connected takes the seat (the older socket is closed
    # with 4409, hosts are told); false: it is refused (`already_connected`, 4423) while the first
    # socket lives, and a reconnect after it is gone still keeps the seat
    allow_seat_takeover: bool = True
    lesson: LessonRef | None = None  # set for a lesson's room (signaling/lessons)
    # non-moderators who would enter wait (`host_absent`) until a host or co-host is in the room
    # ("wait for the teacher"); all of them enter when the first one joins
    wait_for_host: bool = False
    # the timetable's end (seconds since the epoch): preferred over `duration_minutes`; the room warns
    # before it and ends on it; hosts extend it (`room_extend`)
    ends_at: Annotated[float, msgspec.Meta(gt=0)] | None = None

    @classmethod
    def parse(cls, data: Any) -> RoomSettings:
        """From decoded JSON; raises InvalidSettings naming the field."""
        if isinstance(data, dict) and isinstance(data.get("lock"), dict) and "private_chat" not in data["lock"]:
            # locks named without private_chat: it keeps the school's default (locked)
            data = {**data, "lock": {**data["lock"], "private_chat": SCHOOL_LOCK.private_chat}}
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as e:
            raise InvalidSettings(str(e)) from None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out.setdefault("external_id", None)
        return out

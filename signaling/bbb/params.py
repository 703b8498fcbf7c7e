"""The rules for BigBlueButton's parameters, as plain functions: meeting ids, numbers and booleans,
meta_* metadata, the guest policy and the role a join gets.  A bad parameter raises BbbError with
BigBlueButton's messageKey; the handlers (bbb_api.py) answer it as FAILED XML.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from enum import StrEnum

from signaling.rooms import GuestPolicy, Role
from signaling.rooms.room_settings import MAX_PARTICIPANTS_CEILING

MAX_DURATION_MINUTES = 7 * 24 * 60  # RoomSettings.duration_minutes' limit
MAX_IDENTITY = 128  # auth.MAX_IDENTITY: a longer userID is shortened to a digest
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")  # a usable XML element name


class BbbError(Exception):
    """A refused call: BigBlueButton's messageKey and message."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class BbbRole(StrEnum):
    MODERATOR = "MODERATOR"
    VIEWER = "VIEWER"

    @property
    def urok_role(self) -> Role:
        return Role.HOST if self is BbbRole.MODERATOR else Role.PARTICIPANT


# BigBlueButton's guest policy -> urok's.  BigBlueButton asks only about guests (guest=true joins):
# ASK_MODERATOR is urok's ALWAYS_ACCEPT_AUTH (signed-in users enter, guests wait for a host), not
# ASK_HOST (which would make everyone wait).
GUEST_POLICIES: Mapping[str, GuestPolicy] = {
    "ALWAYS_ACCEPT": GuestPolicy.ALWAYS_ACCEPT,
    "ALWAYS_DENY": GuestPolicy.ALWAYS_DENY,
    "ASK_MODERATOR": GuestPolicy.ALWAYS_ACCEPT_AUTH,
}


def clean(value: str) -> str:
    """Control characters out (BigBlueButton refuses them in strings), surrounding spaces off."""
    return _CONTROL.sub("", value).strip()


def meeting_id(params: Mapping[str, str]) -> str:
    """The meetingID parameter, checked like BigBlueButton (2..256 characters, no comma)."""
    value = clean(params.get("meetingID", ""))
    if not value:
        raise BbbError("missingParamMeetingID", "You must specify a meeting ID for the meeting.")
    if not 2 <= len(value) <= 256 or "," in value:
        raise BbbError("invalidMeetingIdentifier",
                       "The meeting ID must be between 2 and 256 characters and cannot contain ','.")
    return value


def number(params: Mapping[str, str], name: str, *, default: int = 0, maximum: int) -> int:
    """A non-negative integer parameter (digits only), at most ``maximum`` (larger is capped)."""
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BbbError("validationError", f"{name} must be a non-negative integer")
    return min(int(raw), maximum)


def boolean(params: Mapping[str, str], name: str, *, default: bool = False) -> bool:
    raw = params.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise BbbError("validationError", f"{name} must be a boolean value (true or false)")
    return raw == "true"


def guest_policy(params: Mapping[str, str]) -> str:
    raw = params.get("guestPolicy", "").strip().upper() or "ALWAYS_ACCEPT"
    if raw not in GUEST_POLICIES:
        raise BbbError("validationError",
                       f"guestPolicy must be one of {', '.join(GUEST_POLICIES)} (got {raw!r})")
    return raw


def metadata(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """meta_* parameters without the prefix, keys lowercased as BigBlueButton returns them; a key
    that cannot be an XML element name is left out (getMeetingInfo writes them as elements)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key.startswith("meta_"):
            name = key[len("meta_"):].lower()
            if _META_KEY.match(name) and not name.lower().startswith("xml"):
                out.setdefault(name, value)
    return out


def password(value: str | None) -> str:
    """A create password as given (cut to 64), or a random one like BigBlueButton's."""
    given = clean(value or "")[:64]
    return given or secrets.token_urlsafe(6)


def internal_id(meeting: str, create_time_ms: int) -> str:
    """BigBlueButton's internalMeetingID: sha1 of the meetingID, a dash, the createTime."""
    return f"{hashlib.sha1(meeting.encode('utf-8')).hexdigest()}-{create_time_ms}"


def voice_bridge(internal: str) -> str:
    """A stable five-digit number in BigBlueButton's 7xxxx range (urok has no phone dial-in)."""
    return str(70000 + int(hashlib.sha1(internal.encode("utf-8")).hexdigest(), 16) % 10000)


def join_role(params: Mapping[str, str], *, attendee_pw: str, moderator_pw: str) -> BbbRole:
    """``role`` (MODERATOR or VIEWER, BigBlueButton 2.4+) wins; else the password says which."""
    role = params.get("role", "").strip().upper()
    if role:
        if role not in BbbRole.__members__:
            raise BbbError("invalidRole", "role must be MODERATOR or VIEWER")
        return BbbRole(role)
    given = params.get("password", "")
    if given and given == moderator_pw:
        return BbbRole.MODERATOR
    if given and given == attendee_pw:
        return BbbRole.VIEWER
    raise BbbError("invalidPassword", "You either did not supply a password or the password supplied is neither "
                                      "the attendee or moderator password for this conference.")


def identity(params: Mapping[str, str]) -> str:
    """The joining user's urok identity: their userID (the LMS's user id: the same user again takes
    their own seat), else a new one; a userID longer than urok allows becomes its digest."""
    user = clean(params.get("userID", ""))
    if not user:
        return "w_" + secrets.token_hex(6)
    if len(user) > MAX_IDENTITY:
        return "u_" + hashlib.sha256(user.encode("utf-8")).hexdigest()
    return user


def full_name(params: Mapping[str, str]) -> str:
    name = clean(params.get("fullName", ""))
    if not name:
        raise BbbError("missingParamFullName",
                       "You must specify a name that will be displayed when the user joins the conference.")
    return name[:MAX_NAME]


def max_participants(params: Mapping[str, str]) -> int:
    return number(params, "maxParticipants", maximum=MAX_PARTICIPANTS_CEILING)


def duration(params: Mapping[str, str]) -> int:
    return number(params, "duration", maximum=MAX_DURATION_MINUTES)

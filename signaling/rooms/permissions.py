"""One permission table decides every action in a room.

``allowed(role, registered, action, lock)`` is the whole rule: the role's base set, then the guest
rule (guests, ``registered: false``, read but do not write chat), then the room's locks, which bind
participants and viewers but never hosts and co-hosts.
"""

from __future__ import annotations

from enum import StrEnum

from signaling.rooms.errors import PermissionDenied
from signaling.rooms.role import Role
from signaling.rooms.room_settings import LockSettings


class Action(StrEnum):
    # everyone (subject to locks)
    PUBLISH_MICROPHONE = "publish_microphone"
    PUBLISH_CAMERA = "publish_camera"
    PUBLISH_SCREEN = "publish_screen"
    UNMUTE_SELF = "unmute_self"
    SUBSCRIBE = "subscribe"
    CHAT = "chat"
    PRIVATE_CHAT = "private_chat"  # to someone who is not a host
    CHAT_TO_HOST = "chat_to_host"
    REACT = "react"
    RAISE_HAND = "raise_hand"
    DRAW = "draw"
    BREAKOUT_HELP = "breakout_help"  # ask the hosts for help from one's breakout group
    BREAKOUT_CHOOSE = "breakout_choose"  # pick a breakout group when the host lets students choose
    # moderators
    ADMIT = "admit"
    MUTE_OTHERS = "mute_others"
    SET_ROLE = "set_role"
    REMOVE = "remove"
    SET_LOCK = "set_lock"
    ATTENTION = "attention"
    LOWER_OTHERS_HAND = "lower_others_hand"
    CHAT_DELETE = "chat_delete"
    BREAKOUTS = "breakouts"
    RECORDING = "recording"
    TRANSCRIPTION = "transcription"
    END_ROOM = "end_room"
    VIEW_WAITING_ROOM = "view_waiting_room"
    VIEW_HANDS = "view_hands"  # the hand queue with waiting times
    SPOTLIGHT = "spotlight"  # feature one participant large for everyone
    GUEST_POLICY = "guest_policy"  # switch who may enter during the lesson
    # everyone, never locked
    ACK_ATTENTION = "ack_attention"
    # hosts only (not co-hosts): make or unmake co-hosts and hosts, change a host's role
    APPOINT_MODERATORS = "appoint_moderators"


_EVERYONE = frozenset({
    Action.SUBSCRIBE, Action.CHAT, Action.PRIVATE_CHAT, Action.CHAT_TO_HOST, Action.REACT,
    Action.RAISE_HAND, Action.UNMUTE_SELF, Action.ACK_ATTENTION, Action.BREAKOUT_HELP, Action.BREAKOUT_CHOOSE,
})
_PUBLISH = frozenset({Action.PUBLISH_MICROPHONE, Action.PUBLISH_CAMERA, Action.PUBLISH_SCREEN, Action.DRAW})
_MODERATE = frozenset({
    Action.ADMIT, Action.MUTE_OTHERS, Action.SET_ROLE, Action.REMOVE, Action.SET_LOCK, Action.ATTENTION,
    Action.LOWER_OTHERS_HAND, Action.CHAT_DELETE, Action.BREAKOUTS, Action.RECORDING, Action.TRANSCRIPTION,
    Action.END_ROOM, Action.VIEW_WAITING_ROOM, Action.VIEW_HANDS, Action.SPOTLIGHT, Action.GUEST_POLICY,
})
_HOST_ONLY = frozenset({Action.APPOINT_MODERATORS})

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.HOST: _EVERYONE | _PUBLISH | _MODERATE | _HOST_ONLY,
    Role.COHOST: _EVERYONE | _PUBLISH | _MODERATE,
    Role.PARTICIPANT: _EVERYONE | _PUBLISH,
    Role.VIEWER: _EVERYONE,  # receive, chat, react, raise a hand; never publish until promoted
}

# the permission to publish (and so to unmute) each media source
SOURCE_ACTIONS: dict[str, Action] = {
    "microphone": Action.PUBLISH_MICROPHONE,
    "camera": Action.PUBLISH_CAMERA,
    "screen": Action.PUBLISH_SCREEN,
    "screen_audio": Action.PUBLISH_SCREEN,
}

# what a guest (registered: false) may never do, whatever the locks
GUEST_FORBIDDEN = frozenset({Action.CHAT, Action.PRIVATE_CHAT, Action.CHAT_TO_HOST})

# which lock forbids which action (for participants and viewers only)
LOCKS: dict[Action, tuple[str, ...]] = {
    Action.PUBLISH_CAMERA: ("camera",),
    Action.PUBLISH_MICROPHONE: ("microphone",),
    Action.PUBLISH_SCREEN: ("screen_share",),
    Action.UNMUTE_SELF: ("self_unmute",),
    Action.CHAT: ("chat",),
    Action.CHAT_TO_HOST: ("chat",),
    Action.PRIVATE_CHAT: ("chat", "private_chat"),
    Action.REACT: ("reactions",),
    Action.DRAW: ("whiteboard",),
}


def denial(role: Role, registered: bool, action: Action, lock: LockSettings) -> str | None:
    """None if allowed, else the reason in words."""
    if action not in ROLE_ACTIONS[role]:
        return f"a {role.value} may not {action.value.replace('_', ' ')}"
    if role.is_moderator:
        return None
    if not registered and action in GUEST_FORBIDDEN:
        return "guests (not signed in to the school) can read the chat but not write"
    for name in LOCKS.get(action, ()):
        if getattr(lock, name):
            return f"{name.replace('_', ' ')} is locked by the host"
    return None


def allowed(role: Role, registered: bool, action: Action, lock: LockSettings) -> bool:
    return denial(role, registered, action, lock) is None


def require(role: Role, registered: bool, action: Action, lock: LockSettings) -> None:
    reason = denial(role, registered, action, lock)
    if reason is not None:
        raise PermissionDenied(reason)

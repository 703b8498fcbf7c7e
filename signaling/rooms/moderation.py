"""Rules of host controls that are not a single permission: who may act on whom, role changes,
lock changes and the one-click lockdown."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from signaling.rooms.errors import InvalidInput, PermissionDenied
from signaling.rooms.participant import Participant
from signaling.rooms.permissions import Action, require
from signaling.rooms.role import Role
from signaling.rooms.room_settings import LockSettings

LOCK_NAMES: tuple[str, ...] = tuple(LockSettings.__struct_fields__)
FULL_LOCK = LockSettings(**dict.fromkeys(LOCK_NAMES, True))

# when a lock is switched on, these sources of participants and viewers are muted at once
LOCK_MUTES: dict[str, tuple[str, ...]] = {
    "microphone": ("microphone",),
    "camera": ("camera",),
    "screen_share": ("screen", "screen_audio"),
}

REACTIONS: tuple[str, ...] = ("👍", "👏", "😂", "😮", "❤️", "🎉", "🤔", "✋")


def check_rank(actor: Participant, target: Participant) -> None:
    """A co-host may not act on a host (mute, remove, change the role)."""
    if target.role is Role.HOST and actor.role is not Role.HOST:
        raise PermissionDenied("only a host may do that to a host")


def check_role_change(actor: Participant, target: Participant, role: Role, lock: LockSettings) -> None:
    """Moderators switch participants and viewers; only hosts make or unmake co-hosts and hosts."""
    require(actor.role, actor.registered, Action.SET_ROLE, lock)
    check_rank(actor, target)
    if role.is_moderator or target.role.is_moderator:
        require(actor.role, actor.registered, Action.APPOINT_MODERATORS, lock)


def changed_lock(lock: LockSettings, changes: Mapping[str, bool]) -> LockSettings:
    unknown = set(changes) - set(LOCK_NAMES)
    if unknown:
        raise InvalidInput(f"unknown lock {sorted(unknown)[0]!r}; locks are {', '.join(LOCK_NAMES)}")
    return msgspec.structs.replace(lock, **changes)


def lock_diff(old: LockSettings, new: LockSettings) -> dict[str, bool]:
    return {n: getattr(new, n) for n in LOCK_NAMES if getattr(old, n) != getattr(new, n)}


def sources_newly_locked(old: LockSettings, new: LockSettings) -> list[str]:
    """Media sources to mute now because their lock was just switched on."""
    out: list[str] = []
    for name, sources in LOCK_MUTES.items():
        if getattr(new, name) and not getattr(old, name):
            out += sources
    return out


def check_emoji(emoji: str) -> str:
    if emoji not in REACTIONS:
        raise InvalidInput(f"reactions are {' '.join(REACTIONS)}")
    return emoji

"""The permission table, exhaustively: every role x registered x action x lock."""

import itertools

import pytest

from signaling.rooms import Action, LockSettings, PermissionDenied, Role, allowed, require
from signaling.rooms.permissions import GUEST_FORBIDDEN, LOCKS, ROLE_ACTIONS

MODERATOR_ONLY = {
    Action.ADMIT, Action.MUTE_OTHERS, Action.SET_ROLE, Action.REMOVE, Action.SET_LOCK, Action.ATTENTION,
    Action.LOWER_OTHERS_HAND, Action.CHAT_DELETE, Action.BREAKOUTS, Action.RECORDING, Action.TRANSCRIPTION,
    Action.END_ROOM, Action.VIEW_WAITING_ROOM,
}
PUBLISHING = {Action.PUBLISH_MICROPHONE, Action.PUBLISH_CAMERA, Action.PUBLISH_SCREEN, Action.DRAW}
LOCK_NAMES = list(LockSettings.__struct_fields__)


def expected(role: Role, registered: bool, action: Action, locks: frozenset[str]) -> bool:
    if action in MODERATOR_ONLY:
        return role.is_moderator
    if action in PUBLISHING and role is Role.VIEWER:
        return False
    if role.is_moderator:
        return True
    if not registered and action in GUEST_FORBIDDEN:
        return False
    return not any(name in locks for name in LOCKS.get(action, ()))


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("registered", [True, False])
def test_every_action_under_every_single_lock(role: Role, registered: bool) -> None:
    for action, lock_name in itertools.product(Action, [None, *LOCK_NAMES]):
        locks = frozenset() if lock_name is None else frozenset({lock_name})
        lock = LockSettings(**{n: True for n in locks})
        assert allowed(role, registered, action, lock) is expected(role, registered, action, locks), (
            role, registered, action, lock_name)


def test_full_lockdown_leaves_participants_only_receiving_and_hands() -> None:
    lock = LockSettings(**{n: True for n in LOCK_NAMES})
    left = {a for a in Action if allowed(Role.PARTICIPANT, True, a, lock)}
    assert left == {Action.SUBSCRIBE, Action.RAISE_HAND}
    assert all(allowed(Role.COHOST, True, a, lock) for a in Action)


def test_every_action_is_in_some_role() -> None:
    assert set(Action) == set().union(*ROLE_ACTIONS.values())


def test_denial_reason_is_readable() -> None:
    with pytest.raises(PermissionDenied, match="chat is locked"):
        require(Role.PARTICIPANT, True, Action.CHAT, LockSettings(chat=True))
    with pytest.raises(PermissionDenied, match="guests"):
        require(Role.PARTICIPANT, False, Action.CHAT, LockSettings())
    with pytest.raises(PermissionDenied, match="viewer may not publish camera"):
        require(Role.VIEWER, True, Action.PUBLISH_CAMERA, LockSettings())

"""The permission table, exhaustively: every role x registered x action x lock."""

import itertools

import pytest

from signaling.rooms import Action, LockSettings, PermissionDenied, Role, allowed, require
from signaling.rooms.permissions import GUEST_FORBIDDEN, LOCKS, ROLE_ACTIONS

MODERATOR_ONLY = {
    Action.ADMIT, Action.MUTE_OTHERS, Action.SET_ROLE, Action.REMOVE, Action.SET_LOCK, Action.ATTENTION,
    Action.LOWER_OTHERS_HAND, Action.CHAT_DELETE, Action.BREAKOUTS, Action.RECORDING, Action.TRANSCRIPTION,
    Action.END_ROOM, Action.VIEW_WAITING_ROOM, Action.VIEW_HANDS,
}
HOST_ONLY = {Action.APPOINT_MODERATORS}
PUBLISHING = {Action.PUBLISH_MICROPHONE, Action.PUBLISH_CAMERA, Action.PUBLISH_SCREEN, Action.DRAW}
LOCK_NAMES = list(LockSettings.__struct_fields__)


def expected(role: Role, registered: bool, action: Action, locks: frozenset[str]) -> bool:
    if action in HOST_ONLY:
        return role is Role.HOST
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
    assert left == {Action.SUBSCRIBE, Action.RAISE_HAND, Action.ACK_ATTENTION}
    assert all(allowed(Role.COHOST, True, a, lock) for a in Action if a not in HOST_ONLY)
    assert all(allowed(Role.HOST, True, a, lock) for a in Action)


def test_every_action_is_in_some_role() -> None:
    assert set(Action) == set().union(*ROLE_ACTIONS.values())


def test_denial_reason_is_readable() -> None:
    with pytest.raises(PermissionDenied, match="chat is locked"):
        require(Role.PARTICIPANT, True, Action.CHAT, LockSettings(chat=True))
    with pytest.raises(PermissionDenied, match="guests"):
        require(Role.PARTICIPANT, False, Action.CHAT, LockSettings())
    with pytest.raises(PermissionDenied, match="viewer may not publish camera"):
        require(Role.VIEWER, True, Action.PUBLISH_CAMERA, LockSettings())


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("registered", [True, False])
def test_every_action_under_every_combination_of_locks(role: Role, registered: bool) -> None:
    for n in range(len(LOCK_NAMES) + 1):
        for combo in itertools.combinations(LOCK_NAMES, n):
            locks = frozenset(combo)
            lock = LockSettings(**{name: True for name in locks})
            for action in Action:
                assert allowed(role, registered, action, lock) is expected(role, registered, action, locks), (
                    role, registered, action, combo)


def test_every_lock_forbids_something_and_every_source_has_a_publish_action() -> None:
    from signaling.rooms.permissions import SOURCE_ACTIONS

    assert {name for names in LOCKS.values() for name in names} == set(LOCK_NAMES)
    assert set(SOURCE_ACTIONS) == {"microphone", "camera", "screen", "screen_audio"}
    assert set(SOURCE_ACTIONS.values()) <= PUBLISHING


def test_cohost_may_not_appoint_moderators() -> None:
    with pytest.raises(PermissionDenied, match="cohost may not appoint moderators"):
        require(Role.COHOST, True, Action.APPOINT_MODERATORS, LockSettings())

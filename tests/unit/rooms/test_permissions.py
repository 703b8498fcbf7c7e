"""The permission table, exhaustively: every role x registered x action x lock.

The expected answers come from MATRIX below, a literal table written from docs/protocol.md (Call
control: Roles; Requests; Mute and locks; Room settings: `lock`), not from the implementation's own
ROLE_ACTIONS / GUEST_FORBIDDEN / LOCKS: a table checked against itself passes any mistake made in
both (issue 20, item 8: dropping `chat` from the private-chat locks went unnoticed).  The WebSocket
path of each lock is tested in tests/e2e/test_call_control_forbidden.py."""

import itertools

import pytest

from signaling.rooms import Action, LockSettings, PermissionDenied, Role, allowed, require
from signaling.rooms.permissions import ROLE_ACTIONS

H, C, P, V = "host", "cohost", "participant", "viewer"
EVERYONE = (H, C, P, V)
PUBLISHERS = (H, C, P)
MODERATORS = (H, C)

# action: (roles that may, guests (registered: false) may too, locks that forbid it to participants and
# viewers).  Locks never bind hosts and co-hosts; the guest rule binds only participants and viewers.
MATRIX: dict[str, tuple[tuple[str, ...], bool, frozenset[str]]] = {
    # "publish (microphone, camera, screen), draw: host, cohost yes; participant unless locked; viewer no"
    "publish_microphone": (PUBLISHERS, True, frozenset({"microphone"})),
    "publish_camera": (PUBLISHERS, True, frozenset({"camera"})),
    "publish_screen": (PUBLISHERS, True, frozenset({"screen_share"})),
    "draw": (PUBLISHERS, True, frozenset({"whiteboard"})),
    # "set_muted muted: false ... with `self_unmute` locked, a host's allow_unmute or a pending request"
    "unmute_self": (EVERYONE, True, frozenset({"self_unmute"})),
    "subscribe": (EVERYONE, True, frozenset()),
    # "chat, private chat, react, raise a hand, acknowledge attention: unless locked; guests read the
    # chat but never write; viewer same as participant"; "a private message to a host or co-host is
    # allowed unless `chat` is locked; to anyone else only while `private_chat` (and `chat`) is unlocked"
    "chat": (EVERYONE, False, frozenset({"chat"})),
    "chat_to_host": (EVERYONE, False, frozenset({"chat"})),
    "private_chat": (EVERYONE, False, frozenset({"chat", "private_chat"})),
    "react": (EVERYONE, True, frozenset({"reactions"})),
    "raise_hand": (EVERYONE, True, frozenset()),  # a full lockdown leaves hands
    "ack_attention": (EVERYONE, True, frozenset()),
    # breakouts (docs/breakouts.md): ask the hosts for help, pick a group when the host lets students choose
    "breakout_help": (EVERYONE, True, frozenset()),
    "breakout_choose": (EVERYONE, True, frozenset()),
    # "admit / deny, mute others, ask to unmute, allow unmute, remove, locks, lockdown, attention, lower
    # others' hands, see the hand queue, delete chat messages, end the lesson: host, cohost"
    "admit": (MODERATORS, True, frozenset()),
    "view_waiting_room": (MODERATORS, True, frozenset()),
    "mute_others": (MODERATORS, True, frozenset()),
    "set_role": (MODERATORS, True, frozenset()),
    "remove": (MODERATORS, True, frozenset()),
    "set_lock": (MODERATORS, True, frozenset()),
    "attention": (MODERATORS, True, frozenset()),
    "lower_others_hand": (MODERATORS, True, frozenset()),
    "view_hands": (MODERATORS, True, frozenset()),
    "chat_delete": (MODERATORS, True, frozenset()),
    "end_room": (MODERATORS, True, frozenset()),
    "breakouts": (MODERATORS, True, frozenset()),  # later features: moderators' tools
    "recording": (MODERATORS, True, frozenset()),
    "transcription": (MODERATORS, True, frozenset()),
    # "spotlight (one participant large for everyone), switch who may enter: host, cohost"
    "spotlight": (MODERATORS, True, frozenset()),
    "guest_policy": (MODERATORS, True, frozenset()),
    # "make or unmake co-hosts and hosts, change a host's role: host"
    "appoint_moderators": ((H,), True, frozenset()),
}
LOCK_NAMES = ["camera", "microphone", "screen_share", "chat", "private_chat", "reactions", "whiteboard",
              "self_unmute"]  # docs/protocol.md, Room settings: `lock`


def expected(role: Role, registered: bool, action: Action, locks: frozenset[str]) -> bool:
    roles, guests_may, locked_by = MATRIX[action.value]
    if role.value not in roles:
        return False
    if role.value in MODERATORS:
        return True
    if not registered and not guests_may:
        return False
    return not locked_by & locks


def test_the_matrix_covers_every_action_and_lock() -> None:
    assert set(MATRIX) == {a.value for a in Action}  # a new action needs its row here
    assert list(LockSettings.__struct_fields__) == LOCK_NAMES
    assert {r.value for r in Role} == set(EVERYONE)
    assert set().union(*(locks for _, _, locks in MATRIX.values())) == set(LOCK_NAMES)  # every lock forbids


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
    left = {a.value for a in Action if allowed(Role.PARTICIPANT, True, a, lock)}
    # asking for help in a breakout group is a raised hand there; picking a group moves no media of one's own
    assert left == {"subscribe", "raise_hand", "ack_attention", "breakout_help", "breakout_choose"}
    assert {a.value for a in Action if allowed(Role.VIEWER, True, a, lock)} == left
    assert {a.value for a in Action if not allowed(Role.COHOST, True, a, lock)} == {"appoint_moderators"}
    assert all(allowed(Role.HOST, True, a, lock) for a in Action)
    assert all(allowed(Role.HOST, False, a, lock) for a in Action)  # a guest host: the guest rule is not for hosts


def test_guests_read_but_do_not_write_the_chat_and_may_do_the_rest() -> None:
    for role in (Role.PARTICIPANT, Role.VIEWER):
        refused = {a.value for a in Action if allowed(role, True, a, LockSettings())
                   and not allowed(role, False, a, LockSettings())}
        assert refused == {"chat", "chat_to_host", "private_chat"}, role


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


def test_every_source_has_its_publish_action() -> None:
    from signaling.rooms.permissions import SOURCE_ACTIONS

    assert {s: a.value for s, a in SOURCE_ACTIONS.items()} == {
        "microphone": "publish_microphone", "camera": "publish_camera", "screen": "publish_screen",
        "screen_audio": "publish_screen"}


def test_cohost_may_not_appoint_moderators() -> None:
    with pytest.raises(PermissionDenied, match="cohost may not appoint moderators"):
        require(Role.COHOST, True, Action.APPOINT_MODERATORS, LockSettings())

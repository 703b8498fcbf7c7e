"""Waiting room, roles, removal, mute, self-unmute and locks: the domain rules without sockets."""

import pytest

from signaling.rooms import (
    EntryRefused,
    InvalidState,
    LockSettings,
    ParticipantNotFound,
    ParticipantState,
    PermissionDenied,
    Role,
)
from signaling.rooms.errors import InvalidInput
from signaling.rooms.moderation import FULL_LOCK, LOCK_NAMES, sources_newly_locked
from signaling.rooms.room_settings import SCHOOL_LOCK
from tests.unit.rooms.helpers import join, make_room, who


def test_host_admits_one_several_or_all_and_a_second_admit_is_a_no_op() -> None:
    room = make_room(guest_policy="ASK_HOST")
    host = join(room, "host", role=Role.HOST)
    a, b, c, d = (join(room, x, now=2.0 + i) for i, x in enumerate("abcd"))
    assert [p.identity for p in room.waiting()] == ["a", "b", "c", "d"]  # by waiting since
    assert room.admit(host, [a.participant_id], now=10) == [a]
    assert a.state is ParticipantState.JOINED and a.joined_at == 10 and a.waiting_since is None
    assert room.admit(host, [a.participant_id, b.participant_id], now=11) == [b]  # a: already in
    assert room.admit(host, None, now=12) == [c, d]
    assert room.admit(host, None, now=13) == []
    assert room.waiting() == []


def test_admit_and_deny_of_unknown_or_departed_participants_change_nothing() -> None:
    room = make_room(guest_policy="ASK_HOST")
    host = join(room, "host", role=Role.HOST)
    a = join(room, "a")
    b = join(room, "b")
    room.leave(b.participant_id, now=3)
    for ids in (["nope"], [a.participant_id, "nope"], [b.participant_id]):
        with pytest.raises(ParticipantNotFound):
            room.admit(host, ids, now=4)
        with pytest.raises(ParticipantNotFound):
            room.deny(host, ids, now=4)
    assert a.state is ParticipantState.WAITING and not room.denied


def test_denied_identity_cannot_come_back_with_the_same_token() -> None:
    room = make_room(guest_policy="ASK_HOST")
    host = join(room, "host", role=Role.HOST)
    a = join(room, "a")
    assert room.deny(host, [a.participant_id], now=2) == [a]
    assert a.state is ParticipantState.LEFT
    with pytest.raises(EntryRefused, match="did not let you"):
        join(room, "a")


def test_deny_after_another_host_admitted_does_not_kick() -> None:
    room = make_room(guest_policy="ASK_HOST")
    h1, h2 = join(room, "h1", role=Role.HOST), join(room, "h2", role=Role.COHOST)
    a = join(room, "a")
    room.admit(h1, [a.participant_id], now=2)
    assert room.deny(h2, [a.participant_id], now=3) == []
    assert a.state is ParticipantState.JOINED and "a" not in room.denied


@pytest.mark.parametrize("role", [Role.PARTICIPANT, Role.VIEWER])
def test_non_moderators_cannot_admit_deny_remove_mute_or_lock(role: Role) -> None:
    room = make_room(guest_policy="ALWAYS_ACCEPT_AUTH")
    actor = join(room, "x", role=role)
    guest = join(room, "g", registered=False)
    other = join(room, "o")
    for call in (lambda: room.admit(actor, None, 2), lambda: room.deny(actor, [guest.participant_id], 2),
                 lambda: room.remove(actor, other.participant_id, ban=True, now=2),
                 lambda: room.mute_targets(actor, other.participant_id, "microphone"),
                 lambda: room.set_lock(actor, {"chat": True}), lambda: room.set_lockdown(actor, True),
                 lambda: room.set_role(actor, other.participant_id, Role.COHOST),
                 lambda: room.allow_unmute(actor, other.participant_id, True),
                 lambda: room.request_unmute(actor, other.participant_id, "microphone")):
        with pytest.raises(PermissionDenied):
            call()
    assert guest.state is ParticipantState.WAITING and other.state is ParticipantState.JOINED
    assert room.settings.lock == SCHOOL_LOCK and not room.banned and other.role is Role.PARTICIPANT


def test_host_makes_and_unmakes_cohosts_and_the_role_survives_a_reconnect() -> None:
    room = make_room()
    host = join(room, "host", role=Role.HOST)
    a = join(room, "a")
    p, before = room.set_role(host, a.participant_id, Role.COHOST)
    assert p is a and before is Role.PARTICIPANT and a.role is Role.COHOST
    assert join(room, "a").role is Role.COHOST  # the token still says participant
    room.leave(a.participant_id, now=5)
    back = join(room, "a", now=6)
    assert back.role is Role.COHOST and back.participant_id == a.participant_id
    room.set_role(host, a.participant_id, Role.PARTICIPANT)
    assert back.role is Role.PARTICIPANT


def test_cohost_cannot_touch_hosts_nor_appoint_moderators() -> None:
    room = make_room()
    host = join(room, "host", role=Role.HOST)
    co = join(room, "co", role=Role.COHOST)
    student = join(room, "s")
    viewer = join(room, "v", role=Role.VIEWER)
    for target, role in [(host, Role.PARTICIPANT), (student, Role.HOST), (student, Role.COHOST),
                         (co, Role.PARTICIPANT)]:
        with pytest.raises(PermissionDenied):
            room.set_role(co, target.participant_id, role)
    with pytest.raises(PermissionDenied):
        room.remove(co, host.participant_id, ban=False, now=2)
    with pytest.raises(PermissionDenied):
        room.mute_targets(co, host.participant_id, "microphone")
    room.set_role(co, viewer.participant_id, Role.PARTICIPANT)  # participants <-> viewers: fine
    room.set_role(co, student.participant_id, Role.VIEWER)
    assert viewer.role is Role.PARTICIPANT and student.role is Role.VIEWER and host.role is Role.HOST


def test_several_hosts_and_the_last_host_cannot_step_down() -> None:
    room = make_room()
    h1 = join(room, "h1", role=Role.HOST)
    h2 = join(room, "h2", role=Role.HOST)
    room.set_role(h1, h2.participant_id, Role.COHOST)
    with pytest.raises(InvalidState, match="needs a host"):
        room.set_role(h1, h1.participant_id, Role.PARTICIPANT)
    room.set_role(h1, h2.participant_id, Role.HOST)
    room.set_role(h1, h1.participant_id, Role.COHOST)
    assert h1.role is Role.COHOST and h2.role is Role.HOST


def test_remove_with_ban_keeps_the_identity_out_and_api_removal_needs_no_actor() -> None:
    room = make_room()
    host = join(room, "host", role=Role.HOST)
    a, b = join(room, "a"), join(room, "b")
    room.hands.raise_hand(a.participant_id, 2)
    room.remove(host, a.participant_id, ban=True, now=3)
    assert a.state is ParticipantState.LEFT and "a" in room.banned and a.participant_id not in room.hands
    with pytest.raises(EntryRefused):
        join(room, "a")
    room.remove(None, b.participant_id, ban=False, now=4)
    assert join(room, "b", now=5).state is ParticipantState.JOINED  # not banned: may come back
    with pytest.raises(ParticipantNotFound):
        room.remove(host, a.participant_id, ban=False, now=6)
    with pytest.raises(InvalidState):
        room.remove(host, host.participant_id, ban=False, now=6)


def test_mute_all_reaches_everyone_but_moderators() -> None:
    room = make_room()
    host = join(room, "host", role=Role.HOST)
    co = join(room, "co", role=Role.COHOST)
    a, _v = join(room, "a"), join(room, "v", role=Role.VIEWER)
    waiting = join(room, "g", registered=False)
    assert {p.identity for p in room.mute_targets(host, None, "microphone")} == {"a", "v"}
    assert room.mute_targets(co, a.participant_id, "camera") == [a]
    with pytest.raises(ParticipantNotFound):
        room.mute_targets(host, waiting.participant_id, "camera")
    with pytest.raises(InvalidInput):
        room.mute_targets(host, a.participant_id, "hologram")


def test_self_unmute_lock_allowance_and_ask_to_unmute_once() -> None:
    room = make_room(lock={"self_unmute": True})
    host = join(room, "host", role=Role.HOST)
    a, b = join(room, "a"), join(room, "b")
    room.check_self_unmute(host, "microphone")  # hosts are never locked
    with pytest.raises(PermissionDenied, match="raise your hand"):
        room.check_self_unmute(a, "microphone")
    room.request_unmute(host, a.participant_id, "microphone")
    with pytest.raises(PermissionDenied):
        room.check_self_unmute(a, "camera")  # the request was for the microphone
    room.check_self_unmute(a, "microphone")  # once...
    with pytest.raises(PermissionDenied):
        room.check_self_unmute(a, "microphone")  # ...only
    room.allow_unmute(host, b.participant_id, True)
    room.check_self_unmute(b, "microphone")
    room.check_self_unmute(b, "microphone")
    room.allow_unmute(host, b.participant_id, False)
    with pytest.raises(PermissionDenied):
        room.check_self_unmute(b, "microphone")
    room.set_lock(host, {"self_unmute": False})
    room.check_self_unmute(a, "camera")


def test_a_host_mute_cancels_a_pending_ask_to_unmute() -> None:
    room = make_room(lock={"self_unmute": True})
    host, a = join(room, "host", role=Role.HOST), join(room, "a")
    room.request_unmute(host, a.participant_id, "microphone")
    room.mute_targets(host, a.participant_id, "microphone")
    with pytest.raises(PermissionDenied):
        room.check_self_unmute(a, "microphone")


def test_self_unmute_also_needs_the_right_to_publish_the_source() -> None:
    room = make_room(lock={"camera": True})
    host = join(room, "host", role=Role.HOST)
    a, v = join(room, "a"), join(room, "v", role=Role.VIEWER)
    room.check_self_unmute(a, "microphone")
    with pytest.raises(PermissionDenied, match="camera is locked"):
        room.check_self_unmute(a, "camera")
    room.allow_unmute(host, v.participant_id, True)
    with pytest.raises(PermissionDenied, match="viewer may not publish"):
        room.check_self_unmute(v, "microphone")


def test_set_lock_changes_only_what_is_named_and_lockdown_restores_the_locks_before() -> None:
    room = make_room(lock={"chat": True, "private_chat": False})
    host = join(room, "host", role=Role.HOST)
    old, new = room.set_lock(host, {"camera": True, "chat": False})
    assert old == LockSettings(chat=True) and new == LockSettings(camera=True)
    assert room.settings.lock == new and room.settings.name == ""  # the other settings stay
    room.set_lockdown(host, True)
    assert room.settings.lock == FULL_LOCK and room.lockdown
    room.set_lockdown(host, True)  # twice: still remembers the locks before the first
    _, restored = room.set_lockdown(host, False)
    assert restored == LockSettings(camera=True) and not room.lockdown
    assert room.set_lockdown(host, False)[1] == LockSettings(camera=True)  # undo without lockdown: no change
    with pytest.raises(InvalidInput):
        room.set_lock(host, {"teleport": True})


def test_sources_newly_locked() -> None:
    assert sources_newly_locked(LockSettings(), FULL_LOCK) == ["microphone", "camera", "screen", "screen_audio"]
    assert sources_newly_locked(LockSettings(camera=True), LockSettings(camera=True, chat=True)) == []
    assert set(LOCK_NAMES) == set(LockSettings.__struct_fields__)


def test_attendance_follows_joins_admissions_and_the_end() -> None:
    room = make_room(guest_policy="ALWAYS_ACCEPT_AUTH")
    host = join(room, "host", now=10, role=Role.HOST)
    g = join(room, "g", now=20, registered=False)
    assert room.attendance.get("g") is None  # waiting is not attending
    room.admit(host, [g.participant_id], now=30)
    room.leave(g.participant_id, now=40)
    join(room, "g", now=70, registered=False)  # waits again after leaving; admitted within the minute
    room.admit(host, None, now=80)
    room.end(now=100)
    rec = room.attendance.get("g")
    assert rec is not None and rec.intervals == [[30, 100]] and rec.total_seconds(100) == 70
    assert room.attendance.get("host").intervals == [[10, 100]]  # type: ignore[union-attr]
    assert room.started_at == 10


def test_room_full_still_counts_waiting_and_admitted() -> None:
    room = make_room(max_participants=2, guest_policy="ASK_HOST")
    join(room, "host", role=Role.HOST)
    join(room, "a")
    with pytest.raises(Exception, match="full"):
        room.admit_or_queue(who("b"), 2)

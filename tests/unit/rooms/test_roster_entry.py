"""A lesson's room: the roster decides who enters, "wait for the teacher", the timetable end and
its extension.  Time passed in."""

from __future__ import annotations

import pytest

from signaling.rooms import (
    EntryRefused,
    InvalidState,
    ParticipantState,
    PermissionDenied,
    Role,
    RoomClosed,
)
from signaling.rooms.errors import InvalidInput, InvalidSettings
from signaling.rooms.participant import WaitingReason
from signaling.rooms.room import Room
from tests.unit.rooms.helpers import join, make_room

WAITING, JOINED = ParticipantState.WAITING, ParticipantState.JOINED


def lesson_room(roster: set[str] | None = None, **settings: object) -> Room:
    room = make_room(**settings)
    room.roster = roster
    return room


@pytest.mark.parametrize("policy", ["ALWAYS_ACCEPT", "ASK_HOST", "ALWAYS_ACCEPT_AUTH", "ALWAYS_DENY"])
def test_a_roster_student_enters_directly_whatever_the_guest_policy(policy: str) -> None:
    room = lesson_room({"s-1"}, guest_policy=policy)
    p = join(room, "s-1")
    assert p.state is JOINED and p.waiting_reason is None


@pytest.mark.parametrize("policy", ["ALWAYS_ACCEPT", "ASK_HOST", "ALWAYS_ACCEPT_AUTH"])
@pytest.mark.parametrize("registered", [True, False])
def test_anyone_not_on_the_roster_waits_for_a_host_whatever_the_guest_policy(policy: str, registered: bool) -> None:
    room = lesson_room({"s-1"}, guest_policy=policy)
    p = join(room, "stranger", registered=registered)
    assert p.state is WAITING and p.waiting_reason is WaitingReason.NOT_ON_ROSTER
    assert p.to_json()["waiting_reason"] == "not_on_roster"


def test_always_deny_still_refuses_guests_in_a_lesson_room() -> None:
    room = lesson_room({"s-1"}, guest_policy="ALWAYS_DENY")
    with pytest.raises(EntryRefused):
        join(room, "stranger", registered=False)
    assert join(room, "registered-stranger").waiting_reason is WaitingReason.NOT_ON_ROSTER


def test_a_host_enters_a_lesson_room_without_being_on_the_roster() -> None:
    room = lesson_room({"s-1"})
    assert join(room, "teacher", role=Role.HOST).state is JOINED
    assert join(room, "cohost", role=Role.COHOST).state is JOINED


def test_without_a_roster_the_guest_policy_decides_and_names_its_reason() -> None:
    room = lesson_room(None)
    guest = join(room, "g", registered=False)
    assert guest.waiting_reason is WaitingReason.GUEST_POLICY and guest.to_json()["waiting_reason"] == "guest_policy"
    assert join(room, "u").state is JOINED


def test_a_joined_participant_json_has_no_waiting_reason() -> None:
    room = lesson_room({"s-1"})
    assert "waiting_reason" not in join(room, "s-1").to_json()


def test_with_wait_for_host_the_class_waits_until_a_host_joins_then_all_enter_and_strangers_stay() -> None:
    room = lesson_room({"s-1", "s-2"}, wait_for_host=True)
    s1, s2 = join(room, "s-1", now=1.0), join(room, "s-2", now=2.0)
    stranger = join(room, "stranger", now=3.0)
    assert [p.waiting_reason for p in (s1, s2, stranger)] == [
        WaitingReason.HOST_ABSENT, WaitingReason.HOST_ABSENT, WaitingReason.NOT_ON_ROSTER]
    assert s1.to_json()["waiting_reason"] == "host_absent"
    assert room.release_host_waiters(now=4.0) == []  # nobody to teach them yet
    assert room.started_at is None
    join(room, "teacher", role=Role.HOST, now=5.0)
    released = room.release_host_waiters(now=5.0)
    assert released == [s1, s2]
    assert s1.state is s2.state is JOINED and s1.joined_at == 5.0 and s1.waiting_reason is None
    assert stranger.state is WAITING and stranger.waiting_reason is WaitingReason.NOT_ON_ROSTER
    assert room.attendance.get("s-1") is not None


def test_a_cohost_arriving_also_lets_the_class_in() -> None:
    room = lesson_room({"s-1"}, wait_for_host=True)
    s1 = join(room, "s-1")
    join(room, "assistant", role=Role.COHOST)
    assert room.release_host_waiters(now=2.0) == [s1]


def test_with_a_host_in_the_room_a_student_enters_directly_and_waits_again_once_no_host_is_in() -> None:
    room = lesson_room({"s-1", "s-2"}, wait_for_host=True)
    host = join(room, "teacher", role=Role.HOST)
    assert join(room, "s-1").state is JOINED
    room.leave(host.participant_id, now=3.0)
    late = join(room, "s-2", now=4.0)
    assert late.waiting_reason is WaitingReason.HOST_ABSENT


def test_wait_for_host_without_a_roster_holds_back_only_those_the_guest_policy_lets_in() -> None:
    room = lesson_room(None, wait_for_host=True)
    member, guest = join(room, "u"), join(room, "g", registered=False)
    assert (member.waiting_reason, guest.waiting_reason) == (WaitingReason.HOST_ABSENT, WaitingReason.GUEST_POLICY)
    join(room, "teacher", role=Role.HOST)
    assert room.release_host_waiters(now=2.0) == [member]
    assert guest.state is WAITING


def test_a_waiting_student_who_reconnects_after_the_host_came_enters() -> None:
    """The reason is not stored (a restart loses it): a reconnect judges again."""
    room = lesson_room({"s-1"}, wait_for_host=True)
    s1 = join(room, "s-1", now=1.0)
    s1.waiting_reason = None  # what the store brings back: a waiting participant with no reason
    assert join(room, "s-1", now=2.0).waiting_reason is WaitingReason.HOST_ABSENT
    join(room, "teacher", role=Role.HOST, now=3.0)
    again = join(room, "s-1", now=4.0)
    assert again is s1 and again.state is JOINED


def test_a_roster_change_lets_in_who_is_now_on_it_and_keeps_out_who_is_not() -> None:
    room = lesson_room({"s-1"})
    newcomer, other = join(room, "s-new", now=1.0), join(room, "other", now=1.0)
    assert room.set_roster({"s-1", "s-new"}, now=2.0) == [newcomer]
    assert newcomer.state is JOINED and other.waiting_reason is WaitingReason.NOT_ON_ROSTER
    assert room.roster == {"s-1", "s-new"}


def test_a_roster_change_while_the_teacher_is_away_makes_the_newcomer_wait_for_the_teacher() -> None:
    room = lesson_room({"s-1"}, wait_for_host=True)
    newcomer = join(room, "s-new")
    assert room.set_roster({"s-1", "s-new"}, now=2.0) == []
    assert newcomer.waiting_reason is WaitingReason.HOST_ABSENT


def test_someone_taken_off_the_roster_while_waiting_now_waits_for_a_host_decision() -> None:
    room = lesson_room({"s-1"}, wait_for_host=True)
    s1 = join(room, "s-1")
    room.set_roster(set(), now=2.0)
    assert s1.waiting_reason is WaitingReason.NOT_ON_ROSTER
    join(room, "teacher", role=Role.HOST)
    assert room.release_host_waiters(now=3.0) == []


# --- the timetable end and its extension ---------------------------------------------------------

def test_the_timetable_end_is_preferred_over_the_duration_and_holds_before_anyone_joins() -> None:
    room = make_room(ends_at=5000.0, duration_minutes=10)
    assert room.ends_at() == 5000.0
    join(room, "u", now=100.0)
    assert room.ends_at() == 5000.0
    assert make_room(duration_minutes=10).ends_at() is None  # a duration starts with the first join


def test_the_timetable_end_must_be_a_positive_time() -> None:
    with pytest.raises(InvalidSettings):
        make_room(ends_at=0)


def test_the_scheduled_length_comes_from_the_lesson_start_to_the_timetable_end() -> None:
    room = make_room(ends_at=1000.0 + 45 * 60, lesson={"lesson_id": "LS_1", "starts_at": 1000.0})
    assert room.scheduled_s() == 45 * 60
    assert make_room(duration_minutes=10).scheduled_s() == 600


def test_a_host_extends_the_timetable_end() -> None:
    room = make_room(ends_at=5000.0)
    host = join(room, "teacher", role=Role.HOST)
    assert room.extend(host, 10, now=200.0) == 5600.0
    assert room.settings.ends_at == 5600.0 and room.ends_at() == 5600.0


def test_a_cohost_and_the_api_extend_too() -> None:
    room = make_room(ends_at=5000.0)
    cohost = join(room, "assistant", role=Role.COHOST)
    assert room.extend(cohost, 1, now=200.0) == 5060.0
    assert room.extend(None, 240, now=200.0) == 5060.0 + 240 * 60


@pytest.mark.parametrize("role", [Role.PARTICIPANT, Role.VIEWER])
def test_a_participant_may_not_extend_and_nothing_changes(role: Role) -> None:
    room = make_room(ends_at=5000.0)
    p = join(room, "s", role=role)
    with pytest.raises(PermissionDenied, match="hosts and co-hosts"):
        room.extend(p, 10, now=200.0)
    assert room.ends_at() == 5000.0


@pytest.mark.parametrize("minutes", [0, -5, 241])
def test_an_extension_is_one_to_240_minutes(minutes: int) -> None:
    room = make_room(ends_at=5000.0)
    host = join(room, "teacher", role=Role.HOST)
    with pytest.raises(InvalidInput, match="1 to 240"):
        room.extend(host, minutes, now=200.0)
    assert room.ends_at() == 5000.0


def test_a_room_without_an_end_cannot_be_extended() -> None:
    room = make_room()
    host = join(room, "teacher", role=Role.HOST)
    with pytest.raises(InvalidState):
        room.extend(host, 10, now=200.0)
    assert room.ends_at() is None


def test_extending_a_duration_lengthens_it_from_the_first_join() -> None:
    room = make_room(duration_minutes=45)
    host = join(room, "teacher", role=Role.HOST, now=100.0)
    assert room.extend(host, 15, now=200.0) == 100.0 + 60 * 60
    assert room.settings.duration_minutes == 60


def test_a_duration_is_not_extended_past_its_ceiling() -> None:
    room = make_room(duration_minutes=7 * 24 * 60 - 10)
    with pytest.raises(InvalidInput):
        room.extend(None, 11, now=1.0)
    assert room.settings.duration_minutes == 7 * 24 * 60 - 10


def test_an_ended_lesson_cannot_be_extended() -> None:
    room = make_room(ends_at=5000.0)
    room.end(now=300.0)
    with pytest.raises(RoomClosed):
        room.extend(None, 10, now=400.0)


def test_the_extension_scales_with_the_lesson_minute() -> None:
    """Tests run lessons with short minutes (the room manager's minute_s)."""
    room = make_room(ends_at=5000.0)
    assert room.extend(None, 10, now=1.0, minute_s=0.5) == 5005.0

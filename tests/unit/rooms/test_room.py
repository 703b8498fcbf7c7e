import pytest

from signaling.rooms import (
    EntryRefused,
    GuestPolicy,
    ParticipantNotFound,
    ParticipantState,
    Role,
    RoomClosed,
    RoomFull,
    RoomSettings,
    SeatTaken,
)
from signaling.rooms.errors import InvalidSettings
from tests.unit.rooms.helpers import make_room, who


@pytest.mark.parametrize(
    ("policy", "registered", "role", "state"),
    [
        ("ALWAYS_ACCEPT", False, Role.PARTICIPANT, ParticipantState.JOINED),
        ("ALWAYS_ACCEPT_AUTH", True, Role.PARTICIPANT, ParticipantState.JOINED),
        ("ALWAYS_ACCEPT_AUTH", False, Role.PARTICIPANT, ParticipantState.WAITING),
        ("ASK_HOST", True, Role.PARTICIPANT, ParticipantState.WAITING),
        ("ASK_HOST", True, Role.VIEWER, ParticipantState.WAITING),
        ("ASK_HOST", False, Role.HOST, ParticipantState.JOINED),
        ("ALWAYS_DENY", True, Role.PARTICIPANT, ParticipantState.JOINED),
        ("ALWAYS_DENY", False, Role.COHOST, ParticipantState.JOINED),
    ],
)
def test_guest_policy_decides_joined_or_waiting(policy: str, registered: bool, role: Role,
                                                state: ParticipantState) -> None:
    room = make_room(guest_policy=policy)
    p = room.admit_or_queue(who("u", role=role, registered=registered), now=5.0)
    assert p.state is state
    assert (p.joined_at, p.waiting_since) == ((5.0, None) if state is ParticipantState.JOINED else (None, 5.0))


def test_always_deny_refuses_guests_with_a_clear_reason() -> None:
    room = make_room(guest_policy="ALWAYS_DENY")
    with pytest.raises(EntryRefused, match="signed in"):
        room.admit_or_queue(who("g", registered=False), now=1.0)
    assert room.participants == {}


def test_reconnect_of_the_same_identity_keeps_the_participant_id() -> None:
    room = make_room()
    a = room.admit_or_queue(who("u"), now=1.0)
    b = room.admit_or_queue(who("u"), now=2.0)
    assert a is b and b.joined_at == 1.0
    room.leave(a.participant_id, now=3.0)
    c = room.admit_or_queue(who("u"), now=4.0)
    assert c.participant_id == a.participant_id and c.state is ParticipantState.JOINED


def test_room_full_counts_present_participants() -> None:
    room = make_room(max_participants=2)
    room.admit_or_queue(who("a"), now=1)
    room.admit_or_queue(who("b", registered=False), now=1)  # waiting counts too
    with pytest.raises(RoomFull):
        room.admit_or_queue(who("c"), now=1)
    room.leave(room.by_identity("a").participant_id, now=2)  # type: ignore[union-attr]
    room.admit_or_queue(who("c"), now=3)


def test_banned_identity_cannot_come_back() -> None:
    room = make_room()
    room.banned.add("u")
    with pytest.raises(EntryRefused, match="removed"):
        room.admit_or_queue(who("u"), now=1)


def test_ended_room_refuses_joins_and_end_is_idempotent() -> None:
    room = make_room()
    room.admit_or_queue(who("a"), now=1)
    assert [p.identity for p in room.end(now=2)] == ["a"]
    assert room.end(now=3) == []
    assert room.ended_at == 2
    with pytest.raises(RoomClosed):
        room.admit_or_queue(who("b"), now=4)


def test_participants_sorted_by_family_then_given_name_with_cyrillic() -> None:
    room = make_room()
    for ident, fam, giv in [("1", "Сидоров", "Пётр"), ("2", "Иванова", "Мария"), ("3", "Иванова", "Анна"),
                            ("4", "Андреев", "Олег")]:
        room.admit_or_queue(who(ident, family=fam, given=giv), now=1)
    assert [p.identity for p in room.sorted_joined()] == ["4", "3", "2", "1"]
    page, total = room.page(1, 2)
    assert total == 4 and [p.identity for p in page] == ["3", "2"]


def test_unknown_participant_is_not_found() -> None:
    with pytest.raises(ParticipantNotFound):
        make_room().get("nope")


@pytest.mark.parametrize(
    "bad",
    [{"max_participants": 0}, {"max_participants": 2001}, {"mode": "lecture"}, {"guest_policy": "MAYBE"},
     {"lock": {"camera": "yes"}}, {"lock": {"teleport": True}}, {"duration_minutes": -1}, {"colour": "red"},
     {"transcription": {"language": "r"}}],
)
def test_invalid_settings_are_refused_naming_the_field(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidSettings):
        RoomSettings.parse(bad)


def test_all_protocol_settings_are_accepted_and_round_trip() -> None:
    data = {"name": "9Б, физика", "external_id": "lesson-42", "max_participants": 30, "mode": "webinar",
            "guest_policy": "ASK_HOST", "lock": {"chat": True, "self_unmute": True},
            "recording": {"allowed": True, "auto_start": True}, "transcription": {"enabled": True, "language": "ru"},
            "noise_suppression": True, "duration_minutes": 45}
    out = RoomSettings.parse(data).to_json()
    assert out["lock"]["chat"] is True and out["lock"]["camera"] is False
    for key, value in data.items():
        if key != "lock":
            assert out[key] == value
    assert GuestPolicy(out["guest_policy"]) is GuestPolicy.ASK_HOST


# --- a second connection of the same identity --------------------------------------------------------
def test_a_connected_identity_may_take_its_seat_by_default() -> None:
    room = make_room()
    p = room.admit_or_queue(who("u"), now=1.0)
    again = room.admit_or_queue(who("u"), now=2.0, connected=True)
    assert again is p and again.state is ParticipantState.JOINED


@pytest.mark.parametrize("policy", ["ALWAYS_ACCEPT_AUTH", "ASK_HOST"])
def test_without_seat_takeover_a_connected_identity_is_refused_and_keeps_its_seat(policy: str) -> None:
    room = make_room(allow_seat_takeover=False, guest_policy=policy)
    p = room.admit_or_queue(who("u"), now=1.0)
    with pytest.raises(SeatTaken, match="another tab"):
        room.admit_or_queue(who("u"), now=2.0, connected=True)
    assert room.by_identity("u") is p and p.state in (ParticipantState.JOINED, ParticipantState.WAITING)
    assert room.admit_or_queue(who("u"), now=3.0, connected=False) is p  # the old socket is gone: a reconnect


def test_without_seat_takeover_a_new_identity_and_a_returning_one_still_enter() -> None:
    room = make_room(allow_seat_takeover=False)
    p = room.admit_or_queue(who("u"), now=1.0)
    room.leave(p.participant_id, 2.0)
    back = room.admit_or_queue(who("u"), now=3.0, connected=False)
    assert back.participant_id == p.participant_id and back.state is ParticipantState.JOINED
    assert room.admit_or_queue(who("v"), now=3.0, connected=False).state is ParticipantState.JOINED
    assert RoomSettings.parse({"allow_seat_takeover": False}).to_json()["allow_seat_takeover"] is False


def test_after_a_restart_those_who_did_not_reconnect_leave_and_free_their_seats() -> None:
    room = make_room(max_participants=3)  # registered users enter, guests wait
    back = room.admit_or_queue(who("back"), now=1.0)
    gone = room.admit_or_queue(who("gone"), now=1.0)
    queued = room.admit_or_queue(who("guest", registered=False), now=1.0)
    assert queued.state is ParticipantState.WAITING
    joined, waited = room.leave_absent({back.participant_id}, now=50.0)
    assert joined == [gone] and waited == [queued]
    assert room.num_joined == 1 and room.present() == [back] and gone.left_at == 50.0
    intervals = {r.identity: r.intervals for r in room.attendance.records()}
    assert intervals["gone"] == [[1.0, 50.0]] and intervals["back"] == [[1.0, None]]
    room.admit_or_queue(who("c"), now=60.0)  # the seats are free again
    room.admit_or_queue(who("d"), now=60.0)
    assert room.leave_absent({p.participant_id for p in room.present()}, now=61.0) == ([], [])

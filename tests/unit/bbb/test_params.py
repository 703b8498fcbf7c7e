"""The parameter rules of the BigBlueButton API: ids, roles, guest policies, metadata."""

from __future__ import annotations

import pytest

from signaling.bbb import params as p
from signaling.bbb.params import BbbError, BbbRole
from signaling.rooms import GuestPolicy, Role


def key_of(call: object, *args: object, **kw: object) -> str:
    with pytest.raises(BbbError) as e:
        call(*args, **kw)  # type: ignore[operator]
    return e.value.key


def test_a_meeting_id_is_required_two_to_256_characters_and_without_commas() -> None:
    assert key_of(p.meeting_id, {}) == "missingParamMeetingID"
    assert key_of(p.meeting_id, {"meetingID": "  "}) == "missingParamMeetingID"
    assert key_of(p.meeting_id, {"meetingID": "a"}) == "invalidMeetingIdentifier"
    assert key_of(p.meeting_id, {"meetingID": "a,b"}) == "invalidMeetingIdentifier"
    assert key_of(p.meeting_id, {"meetingID": "x" * 257}) == "invalidMeetingIdentifier"
    assert p.meeting_id({"meetingID": " 7Б алгебра\x01 "}) == "7Б алгебра"


def test_the_role_param_wins_over_passwords_which_otherwise_tell_moderator_from_attendee() -> None:
    pws = {"attendee_pw": "ap", "moderator_pw": "mp"}
    assert p.join_role({"password": "mp"}, **pws) is BbbRole.MODERATOR
    assert p.join_role({"password": "ap"}, **pws) is BbbRole.VIEWER
    assert p.join_role({"password": "mp", "role": "viewer"}, **pws) is BbbRole.VIEWER
    assert p.join_role({"role": "MODERATOR"}, **pws) is BbbRole.MODERATOR
    assert key_of(p.join_role, {"password": "nope"}, **pws) == "invalidPassword"
    assert key_of(p.join_role, {}, **pws) == "invalidPassword"
    assert key_of(p.join_role, {"role": "ADMIN"}, **pws) == "invalidRole"
    assert BbbRole.MODERATOR.urok_role is Role.HOST and BbbRole.VIEWER.urok_role is Role.PARTICIPANT


def test_guest_policies_map_to_urok_so_that_only_guests_are_asked_about() -> None:
    assert p.guest_policy({}) == "ALWAYS_ACCEPT"
    assert p.GUEST_POLICIES[p.guest_policy({"guestPolicy": "ask_moderator"})] is GuestPolicy.ALWAYS_ACCEPT_AUTH
    assert p.GUEST_POLICIES["ALWAYS_DENY"] is GuestPolicy.ALWAYS_DENY
    assert p.GUEST_POLICIES["ALWAYS_ACCEPT"] is GuestPolicy.ALWAYS_ACCEPT
    assert key_of(p.guest_policy, {"guestPolicy": "SOMETIMES"}) == "validationError"


def test_meta_parameters_keep_their_first_value_lowercased_and_only_usable_names() -> None:
    pairs = [("meta_bbb-origin", "Moodle"), ("meta_endCallbackUrl", "https://x/y?a=1"), ("meta_bbb-origin", "2"),
             ("meta_1bad", "x"), ("meta_", "x"), ("meta_xmlns", "x"), ("name", "n")]
    assert p.metadata(pairs) == {"bbb-origin": "Moodle", "endcallbackurl": "https://x/y?a=1"}


def test_numbers_are_digits_capped_at_urok_limits_and_booleans_are_true_or_false() -> None:
    assert p.max_participants({"maxParticipants": "30"}) == 30
    assert p.max_participants({"maxParticipants": "999999"}) == 2000
    assert p.max_participants({}) == 0
    assert key_of(p.max_participants, {"maxParticipants": "-1"}) == "validationError"
    assert p.duration({"duration": "45"}) == 45
    assert p.boolean({"guest": "TRUE"}, "guest") is True and p.boolean({}, "redirect", default=True) is True
    assert key_of(p.boolean, {"guest": "yes"}, "guest") == "validationError"


def test_users_are_named_by_their_user_id_or_a_new_one_and_need_a_full_name() -> None:
    assert p.identity({"userID": "moodle-42"}) == "moodle-42"
    assert p.identity({}).startswith("w_") and p.identity({}) != p.identity({})
    assert len(p.identity({"userID": "u" * 300})) <= 128
    assert key_of(p.full_name, {"fullName": " "}) == "missingParamFullName"
    assert p.full_name({"fullName": "Иванова Мария"}) == "Иванова Мария"


def test_internal_ids_and_passwords_look_like_bigbluebutton_ones() -> None:
    iid = p.internal_id("Test", 1531155809613)
    assert iid == "640ab2bae07bedc4c163f679a746f7ab7fb5d1fa-1531155809613"  # the API docs' example
    assert p.voice_bridge(iid) == p.voice_bridge(iid) and 70000 <= int(p.voice_bridge(iid)) < 80000
    assert p.password("mp") == "mp" and len(p.password(None)) >= 8 and p.password("") != p.password("")

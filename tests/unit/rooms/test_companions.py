"""Hands, reactions, chat, attention, attendance, schedule: domain rules without sockets."""

import pytest

from signaling.rooms import InvalidState, LockSettings, ParticipantNotFound, PermissionDenied, Role
from signaling.rooms.attendance import CSV_COLUMNS, Attendance
from signaling.rooms.chat_log import MAX_CHAT_CHARS, ChatLog, ChatMessage
from signaling.rooms.errors import InvalidInput, RateLimitExceeded
from signaling.rooms.hand_queue import HandQueue
from signaling.rooms.moderation import REACTIONS
from signaling.rooms.rate_limit import RateLimits, RateRule
from signaling.rooms.schedule import warning_leads
from tests.unit.rooms.helpers import join, make_room

# --- hands -----------------------------------------------------------------------------------


def test_hand_queue_is_first_raised_first_and_idempotent() -> None:
    q = HandQueue()
    assert q.raise_hand("a", 5.0)[0].position == 1
    assert q.raise_hand("b", 6.0)[0].position == 2
    hand, new = q.raise_hand("a", 9.0)
    assert (hand.raised_at, hand.position, new) == (5.0, 1, False)
    assert q.lower("a") and not q.lower("a")
    assert [(h.participant_id, h.position) for h in q.queue()] == [("b", 1)]
    q.raise_hand("a", 10.0)
    assert [h.participant_id for h in q.queue()] == ["b", "a"]
    assert q.lower_all() == ["b", "a"] and len(q) == 0


def test_lowering_others_hands_is_for_moderators() -> None:
    room = make_room()
    host, a, b = join(room, "h", role=Role.HOST), join(room, "a"), join(room, "b")
    room.raise_hand(a, 1.0)
    room.raise_hand(b, 2.0)
    assert a.hand_raised_at == 1.0
    with pytest.raises(PermissionDenied):
        room.lower_hands(a, b.participant_id, False)
    with pytest.raises(PermissionDenied):
        room.lower_hands(a, None, True)
    assert room.lower_hands(a, a.participant_id, False) == [a.participant_id]
    assert room.lower_hands(a, None, False) == []  # already lowered
    assert a.hand_raised_at is None
    room.raise_hand(a, 3.0)
    assert [h.participant_id for h in room.hand_queue(host)] == [b.participant_id, a.participant_id]
    with pytest.raises(PermissionDenied):
        room.hand_queue(a)
    assert room.lower_hands(host, None, True) == [b.participant_id, a.participant_id]
    with pytest.raises(ParticipantNotFound):
        room.lower_hands(host, "nope", False)


def test_leaving_lowers_the_hand() -> None:
    room = make_room()
    a = join(room, "a")
    room.raise_hand(a, 1.0)
    room.leave(a.participant_id, 2.0)
    assert len(room.hands) == 0


# --- reactions -------------------------------------------------------------------------------


def test_reactions_from_the_fixed_set_rate_limited_and_lockable() -> None:
    room = make_room()
    a = join(room, "a")
    with pytest.raises(InvalidInput):
        room.react(a, "<b>hi</b>", 0.0)
    for i in range(3):
        room.react(a, REACTIONS[i], 10.0)
    with pytest.raises(RateLimitExceeded):
        room.react(a, "👍", 10.0)
    room.react(a, "👍", 11.0)  # a token a second
    room.settings = room.settings.__class__(lock=LockSettings(reactions=True))
    with pytest.raises(PermissionDenied, match="reactions is locked"):
        room.react(a, "👍", 20.0)


def test_rate_limits_refill_and_are_per_participant_and_kind() -> None:
    rl = RateLimits()
    rule = RateRule(rate_per_s=2.0, burst=2)
    rl.take("a", "x", rule, 0.0)
    rl.take("a", "x", rule, 0.0)
    with pytest.raises(RateLimitExceeded):
        rl.take("a", "x", rule, 0.1)
    rl.take("b", "x", rule, 0.1)
    rl.take("a", "y", rule, 0.1)
    rl.take("a", "x", rule, 0.6)
    rl.forget("a")
    rl.take("a", "x", rule, 0.6)
    rl.take("a", "x", rule, 0.6)


# --- chat ------------------------------------------------------------------------------------


def test_chat_public_private_guests_and_locks() -> None:
    room = make_room(guest_policy="ALWAYS_ACCEPT", lock={"private_chat": False})
    host, a, b = join(room, "h", role=Role.HOST), join(room, "a"), join(room, "b")
    guest = join(room, "g", registered=False)
    m = room.chat_send(a, "  привет <script>  ", None, 1.0)
    assert m.text == "привет <script>" and not m.private  # stored as text, trimmed
    assert room.chat_send(a, "to teacher", host.participant_id, 2.0).to_id == host.participant_id
    assert room.chat_send(a, "to b", b.participant_id, 3.0).private
    with pytest.raises(PermissionDenied, match="guests"):
        room.chat_send(guest, "hi", None, 4.0)
    with pytest.raises(PermissionDenied, match="guests"):
        room.chat_send(guest, "hi", host.participant_id, 4.0)
    room.set_lock(host, {"private_chat": True})
    with pytest.raises(PermissionDenied, match="private chat is locked"):
        room.chat_send(a, "to b", b.participant_id, 5.0)
    room.chat_send(a, "still to the host", host.participant_id, 5.0)
    room.chat_send(host, "hosts are never locked", a.participant_id, 5.0)
    room.set_lock(host, {"chat": True})
    for to in (None, host.participant_id):
        with pytest.raises(PermissionDenied, match="chat is locked"):
            room.chat_send(a, "x", to, 6.0)
    room.chat_send(host, "hosts still write", None, 6.0)


def test_chat_rejects_empty_too_long_self_and_unknown_targets() -> None:
    room = make_room()
    a = join(room, "a")
    with pytest.raises(InvalidInput):
        room.chat_send(a, "   ", None, 1.0)
    with pytest.raises(InvalidInput, match=str(MAX_CHAT_CHARS)):
        room.chat_send(a, "x" * (MAX_CHAT_CHARS + 1), None, 1.0)
    room.chat_send(a, "x" * MAX_CHAT_CHARS, None, 1.0)
    with pytest.raises(InvalidInput):
        room.chat_send(a, "me", a.participant_id, 1.0)
    with pytest.raises(ParticipantNotFound):
        room.chat_send(a, "?", "nope", 1.0)


def test_chat_is_rate_limited() -> None:
    room = make_room()
    a = join(room, "a")
    for _ in range(5):
        room.chat_send(a, "spam", None, 1.0)
    with pytest.raises(RateLimitExceeded):
        room.chat_send(a, "spam", None, 1.0)
    assert len(room.chat) == 5


def test_deleted_message_is_a_tombstone_in_every_later_history() -> None:
    room = make_room(lock={"private_chat": False})
    host, a, b, c = join(room, "h", role=Role.HOST), join(room, "a"), join(room, "b"), join(room, "c")
    m1 = room.chat_send(a, "secret phone number", None, 1.0)
    room.chat_send(a, "private to b", b.participant_id, 2.0)
    with pytest.raises(PermissionDenied):
        room.chat_delete(a, m1.message_id)
    room.chat_delete(host, m1.message_id)
    room.chat_delete(host, m1.message_id)  # idempotent
    hist = [m.to_json() for m in room.chat.history_for(c.participant_id)]
    assert hist == [{"message_id": m1.message_id, "from": {"participant_id": a.participant_id, "name": "a"},
                     "to": None, "text": "", "sent_at": 1.0, "deleted": True}]
    assert len(room.chat.history_for(b.participant_id)) == 2
    with pytest.raises(ParticipantNotFound):
        room.chat_delete(host, "MS_nope")


def test_history_is_the_last_public_messages_plus_own_private_ones() -> None:
    log = ChatLog(keep=1000)
    for i in range(300):
        log.add(ChatMessage(f"p{i:03}", "x", "x", f"public {i}", float(i)))
    log.add(ChatMessage("priv-mine", "x", "x", "to me", 5.5, to_id="me", to_name="me"))
    log.add(ChatMessage("priv-other", "x", "x", "not for me", 6.5, to_id="other", to_name="o"))
    hist = log.history_for("me", public=200)
    ids = [m.message_id for m in hist]
    assert ids[0] == "priv-mine" and "priv-other" not in ids
    assert ids[1:] == [f"p{i:03}" for i in range(100, 300)]


# --- attention -------------------------------------------------------------------------------


def test_attention_to_all_acks_and_status() -> None:
    room = make_room()
    host, co = join(room, "h", role=Role.HOST), join(room, "co", role=Role.COHOST)
    a, b = join(room, "a"), join(room, "b")
    with pytest.raises(PermissionDenied):
        room.ask_attention(a, None, "", 1.0)
    r = room.ask_attention(host, None, "Вы с нами?", 10.0)
    assert set(r.targets) == {a.participant_id, b.participant_id}  # not the moderators
    got, new = room.ack_attention(a, None, 10.25)
    assert got is r and new and r.after_ms(a.participant_id) == 250
    assert room.ack_attention(a, r.attention_id, 12.0)[1] is False  # the first time counts
    with pytest.raises(ParticipantNotFound):
        room.ack_attention(co, r.attention_id, 12.0)  # not asked
    status = room.attention_status(host, r.attention_id, 13.0)
    assert status["acked"] == [{"participant_id": a.participant_id, "name": "a", "after_ms": 250}]
    assert status["pending"] == [{"participant_id": b.participant_id, "name": "b", "waiting_ms": 3000}]
    with pytest.raises(PermissionDenied):
        room.attention_status(a, r.attention_id, 13.0)
    with pytest.raises(ParticipantNotFound):
        room.attention_status(host, "AT_nope", 13.0)


def test_attention_to_one_and_edge_cases() -> None:
    room = make_room()
    host, a = join(room, "h", role=Role.HOST), join(room, "a")
    r = room.ask_attention(host, a.participant_id, "", 1.0)
    assert list(r.targets) == [a.participant_id]
    with pytest.raises(InvalidInput):
        room.ask_attention(host, a.participant_id, "x" * 201, 1.0)
    with pytest.raises(ParticipantNotFound):
        room.ask_attention(host, "nope", "", 1.0)
    room.ack_attention(a, None, 2.0)
    with pytest.raises(ParticipantNotFound, match="waiting for you"):
        room.ack_attention(a, None, 3.0)
    lone = make_room()
    h = join(lone, "h", role=Role.HOST)
    with pytest.raises(InvalidState):
        lone.ask_attention(h, None, "", 1.0)


# --- attendance, schedule --------------------------------------------------------------------


def test_attendance_merges_reconnects_and_counts_sessions() -> None:
    att = Attendance(merge_gap_s=60)
    kw = {"identity": "u", "name": "Иван Петров", "family_name": "Петров", "given_name": "Иван",
          "role": "participant", "registered": True}
    att.joined(now=100, **kw)  # type: ignore[arg-type]
    att.joined(now=110, **kw)  # type: ignore[arg-type]  # already present: no new interval
    att.left("u", 200)
    att.joined(now=230, **kw)  # type: ignore[arg-type]  # back within a minute: same interval
    att.left("u", 300)
    att.joined(now=1000, **kw)  # type: ignore[arg-type]  # much later: a second session
    att.left("u", 1100)
    att.left("u", 1200)  # not present: ignored
    rec = att.get("u")
    assert rec is not None and rec.intervals == [[100, 300], [1000, 1100]]
    row = dict(zip(CSV_COLUMNS, att.rows(2000)[0], strict=True))
    assert row == {"identity": "u", "name": "Иван Петров", "family_name": "Петров", "given_name": "Иван",
                   "role": "participant", "registered": True, "first_joined": 100, "last_left": 1100,
                   "total_seconds": 300, "sessions": 2}


def test_attendance_sorted_by_family_name() -> None:
    att = Attendance()
    for ident, fam in [("1", "Сидоров"), ("2", "Андреев"), ("3", "Борисова")]:
        att.joined(identity=ident, name=fam, family_name=fam, given_name="", role="participant",
                   registered=True, now=1)
    assert [r.identity for r in att.records()] == ["2", "3", "1"]


@pytest.mark.parametrize(("duration_s", "leads"), [
    (0, []), (45 * 60, [300, 60]), (6 * 60, [300, 60]), (5 * 60, [60]), (120, [60]), (60, [30]), (10, [5]),
])
def test_warning_leads(duration_s: float, leads: list[float]) -> None:
    assert warning_leads(duration_s) == leads


def test_ends_at_counts_from_the_first_join() -> None:
    room = make_room(duration_minutes=45)
    assert room.ends_at() is None
    join(room, "a", now=100.0)
    assert room.ends_at() == 100.0 + 45 * 60 and room.ends_at(minute_s=1.0) == 145.0
    assert make_room().ends_at() is None

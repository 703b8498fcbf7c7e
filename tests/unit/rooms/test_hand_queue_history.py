"""The hands' history: every hand raised, when it went down, by whom, and whether a host took it."""

from signaling.rooms import Role
from signaling.rooms.hand_queue import HandQueue, HandRecord, LowerReason
from tests.unit.rooms.helpers import join, make_room


def _history(q: HandQueue) -> list[tuple[str, float, float | None, str | None, str | None]]:
    return [(h.participant_id, h.raised_at, h.lowered_at, h.lowered_by, h.to_json()["reason"]) for h in q.history()]


def test_every_hand_is_recorded_with_who_lowered_it_when_and_why() -> None:
    room = make_room()
    host, a, b, c = join(room, "h", role=Role.HOST), join(room, "a"), join(room, "b"), join(room, "c")
    for n, p in enumerate((a, b, c)):
        room.raise_hand(p, 10.0 + n)
    room.raise_hand(a, 15.0)  # still up: no second record
    room.lower_hands(a, None, False, 20.0)  # a lowers its own
    room.lower_hands(host, b.participant_id, False, 21.0)  # the teacher takes b's question
    room.leave(c.participant_id, 22.0)
    room.raise_hand(a, 30.0)
    room.raise_hand(b, 31.0)
    room.lower_hands(host, None, True, 40.0)  # "hands down, everyone"
    assert _history(room.hands) == [
        (a.participant_id, 10.0, 20.0, a.participant_id, "lowered"),
        (b.participant_id, 11.0, 21.0, host.participant_id, "answered"),
        (c.participant_id, 12.0, 22.0, None, "left"),
        (a.participant_id, 30.0, 40.0, host.participant_id, "cleared"),
        (b.participant_id, 31.0, 40.0, host.participant_id, "cleared"),
    ]
    assert [h.answered for h in room.hands.history()] == [False, True, False, False, False]


def test_a_hand_still_up_is_in_the_history_as_raised() -> None:
    room = make_room()
    a = join(room, "a")
    room.raise_hand(a, 5.0)
    (h,) = room.hands.history()
    assert h.raised and h.to_json() == {"participant_id": a.participant_id, "raised_at": 5.0, "lowered_at": None,
                                        "lowered_by": None, "reason": None, "answered": False}


def test_the_history_keeps_the_latest_lowered_hands_and_every_hand_still_up() -> None:
    q = HandQueue(keep=3)
    q.raise_hand("up", 0.0)
    for n in range(5):
        q.raise_hand(f"p{n}", 1.0 + n)
        q.lower(f"p{n}", 1.5 + n)
    assert [h.participant_id for h in q.history()] == ["up", "p3", "p4"]
    assert [h.participant_id for h in q.queue()] == ["up"]


def test_restored_records_give_the_queue_back_in_raising_order_and_new_hands_go_after() -> None:
    q = HandQueue()
    q.restore([HandRecord(4, "b", 4.0), HandRecord(1, "x", 1.0, 2.0, "x", LowerReason.LOWERED),
               HandRecord(2, "a", 2.0)])
    assert [(h.participant_id, h.position) for h in q.queue()] == [("a", 1), ("b", 2)]
    q.raise_hand("c", 5.0)
    assert [h.seq for h in q.history()] == [1, 2, 4, 5]
    assert q.lower("a", 6.0, by="h", reason=LowerReason.ANSWERED)
    assert [h.participant_id for h in q.queue()] == ["b", "c"]

"""Attention checks as part of the lesson's record: who asked, who answered and when, who did not."""

from signaling.rooms import Role
from signaling.rooms.attention import AttentionLog, AttentionRequest
from tests.unit.rooms.helpers import join, make_room


def test_the_record_lists_acknowledgements_in_their_order_and_who_did_not_answer() -> None:
    room = make_room()
    host, a, b, c = join(room, "h", role=Role.HOST), join(room, "a"), join(room, "b"), join(room, "c")
    r = room.ask_attention(host, None, "  Вы с нами?  ", 100.0)
    room.ack_attention(c, None, 103.0)
    room.ack_attention(a, r.attention_id, 101.5)
    room.ack_attention(c, r.attention_id, 109.0)  # a repeat keeps the first time
    assert r.record_json() == {
        "attention_id": r.attention_id, "text": "Вы с нами?", "sent_at": 100.0,
        "from": {"participant_id": host.participant_id, "name": "h"}, "targets": 3,
        "acked": [{"participant_id": c.participant_id, "name": "c", "acked_at": 103.0, "after_ms": 3000},
                  {"participant_id": a.participant_id, "name": "a", "acked_at": 101.5, "after_ms": 1500}],
        "not_acked": [{"participant_id": b.participant_id, "name": "b"}],
    }


def test_restored_requests_keep_their_order_and_take_new_acknowledgements() -> None:
    log = AttentionLog(keep=2)
    log.restore([AttentionRequest("A1", "h", "H", "one", 1.0, {"a": "A"}),
                 AttentionRequest("A2", "h", "H", "two", 2.0, {"a": "A", "b": "B"}, {"b": 2.5}),
                 AttentionRequest("A3", "h", "H", "three", 3.0, {"a": "A"})])
    assert [r.attention_id for r in log.requests()] == ["A2", "A3"]  # the keep limit holds
    r, new = log.ack("a", None, 4.0)  # the latest request asked of a
    assert (r.attention_id, new) == ("A3", True)
    r, new = log.ack("a", "A2", 5.0)
    assert new and list(r.acks) == ["b", "a"]

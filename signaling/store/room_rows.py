"""A Room and its rows: what of a room is durable, read out of the live object and rebuilt from rows.

``capture`` reads a room's durable state into plain tuples (no I/O, on the loop, O(participants +
chat + hands + attention requests)); the SQL store compares two captures to write only what changed.
``rebuild`` makes a Room from rows through the domain's own methods (participants, the chat log,
attendance, the hands' history, attention requests), so the rebuilt room keeps the domain's
invariants and indexes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import msgspec

from signaling.rooms import Participant, ParticipantState, Role, Room, RoomSettings
from signaling.rooms.attention import AttentionRequest
from signaling.rooms.chat_log import KEEP_MESSAGES, ChatMessage
from signaling.rooms.hand_queue import HandRecord, LowerReason
from signaling.rooms.room_settings import LockSettings

BANNED = "banned"
DENIED = "denied"

# (settings JSON, external_id, ended_at, started_at, lock_before_lockdown JSON, roster: identities or None)
RoomRow = tuple[dict[str, Any], str | None, float | None, float | None, dict[str, Any] | None,
                frozenset[str] | None]
# (identity, name, family_name, given_name, role, registered, state, joined_at, waiting_since, left_at)
ParticipantRow = tuple[str, str, str, str, str, bool, str, float | None, float | None, float | None]
# (name, family_name, given_name, role, registered, ((joined, left), ...))
AttendanceRow = tuple[str, str, str, str, bool, tuple[tuple[float, float | None], ...]]
# (seq, participant_id, raised_at, lowered_at, lowered_by, reason)
HandRow = tuple[int, str, float, float | None, str | None, str | None]
# (attention_id, from_id, from_name, text, sent_at, ((participant_id, name, acked_at or None), ...) in
# the order asked); acks in the order they came are the targets' acked_at sorted
AttentionRow = tuple[str, str, str, str, float, tuple[tuple[str, str, float | None], ...]]


@dataclass(slots=True)
class Capture:
    """A room's durable state at one moment (or as last written)."""

    room: RoomRow
    exclusions: frozenset[tuple[str, str]] = frozenset()  # (kind, identity)
    overrides: dict[str, str] = field(default_factory=dict)
    participants: dict[str, ParticipantRow] = field(default_factory=dict)
    attendance: dict[str, AttendanceRow] = field(default_factory=dict)
    chat: dict[str, bool] = field(default_factory=dict)  # message id -> deleted
    new_chat: list[ChatMessage] = field(default_factory=list)  # messages not in the last write, in order
    hands: dict[int, HandRow] = field(default_factory=dict)  # the hands' history (seq -> row)
    attention: dict[str, int] = field(default_factory=dict)  # attention id -> acknowledgements so far
    new_attention: list[AttentionRow] = field(default_factory=list)  # requests not in the last write
    new_acks: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # id -> acks since it


def room_row(room: Room) -> RoomRow:
    lock = room.lock_before_lockdown
    return (room.settings.to_json(), room.settings.external_id, room.ended_at, room.started_at,
            None if lock is None else msgspec.to_builtins(lock),
            None if room.roster is None else frozenset(room.roster))


def participant_row(p: Participant) -> ParticipantRow:
    return (p.identity, p.name, p.family_name, p.given_name, p.role.value, p.registered, p.state.value,
            p.joined_at, p.waiting_since, p.left_at)


def hand_row(h: HandRecord) -> HandRow:
    return (h.seq, h.participant_id, h.raised_at, h.lowered_at, h.lowered_by,
            None if h.reason is None else h.reason.value)


def attention_row(r: AttentionRequest) -> AttentionRow:
    return (r.attention_id, r.from_id, r.from_name, r.text, r.sent_at,
            tuple((pid, name, r.acks.get(pid)) for pid, name in r.targets.items()))


def capture(room: Room, written: Capture | None) -> Capture:
    """The room's durable state now; chat messages that ``written`` does not know are listed in
    ``new_chat`` (the messages themselves: the diff needs their text)."""
    known = written.chat if written is not None else {}
    chat: dict[str, bool] = {}
    new_chat: list[ChatMessage] = []
    for m in room.chat.messages():
        chat[m.message_id] = m.deleted
        if m.message_id not in known:
            new_chat.append(m)
    attention: dict[str, int] = {}
    new_attention: list[AttentionRow] = []
    new_acks: dict[str, list[tuple[str, float]]] = {}
    known_attention = written.attention if written is not None else {}
    for a in room.attention.requests():
        attention[a.attention_id] = acks = len(a.acks)
        before = known_attention.get(a.attention_id)
        if before is None:
            new_attention.append(attention_row(a))
        elif acks > before:  # acknowledgements only come, in order: the new ones are the last
            new_acks[a.attention_id] = list(islice(a.acks.items(), before, None))
    attendance: dict[str, AttendanceRow] = {}
    # every identity that ever came (records() would sort them all); a participant is never removed
    for identity in {p.identity for p in room.participants.values()}:
        r = room.attendance.get(identity)
        if r is not None:
            intervals = tuple((a, b) for a, b in r.intervals if a is not None)
            attendance[identity] = (r.name, r.family_name, r.given_name, r.role, r.registered, intervals)
    return Capture(
        room=room_row(room),
        exclusions=frozenset([(BANNED, i) for i in room.banned] + [(DENIED, i) for i in room.denied]),
        overrides={i: r.value for i, r in room.role_overrides.items()},
        participants={pid: participant_row(p) for pid, p in room.participants.items()},
        attendance=attendance,
        chat=chat,
        new_chat=new_chat,
        hands={h.seq: hand_row(h) for h in room.hands.history()},
        attention=attention,
        new_attention=new_attention,
        new_acks=new_acks,
    )


def rebuild(
    room_id: str,
    created_at: float,
    row: RoomRow,
    *,
    exclusions: Iterable[tuple[str, str]],
    overrides: Mapping[str, str],
    participants: Iterable[tuple[str, ParticipantRow]],
    attendance: Mapping[str, AttendanceRow],
    chat: Sequence[ChatMessage],
    hands: Iterable[HandRow] = (),
    attention: Iterable[AttentionRow] = (),
) -> Room:
    """A Room from its rows.  Participants keep their state: one who was joined when the server
    stopped is still joined (a restart is a long network drop) and gets the same seat back, with
    the hand they had up still up and in its place."""
    settings_json, _, ended_at, started_at, lock_json, roster = row
    room = Room(room_id=room_id, settings=RoomSettings.parse(settings_json), created_at=created_at,
                ended_at=ended_at, started_at=started_at,
                lock_before_lockdown=None if lock_json is None else msgspec.convert(lock_json, LockSettings),
                roster=None if roster is None else set(roster))
    for kind, identity in exclusions:
        (room.banned if kind == BANNED else room.denied).add(identity)
    room.role_overrides.update({i: Role(r) for i, r in overrides.items()})
    room.restore_participants(
        Participant(participant_id=pid, identity=identity, name=name, role=Role(role), registered=registered,
                    family_name=family, given_name=given, state=ParticipantState(state), joined_at=joined_at,
                    waiting_since=waiting_since, left_at=left_at)
        for pid, (identity, name, family, given, role, registered, state, joined_at, waiting_since,
                  left_at) in participants)
    room.hands.restore(HandRecord(seq, pid, raised_at, lowered_at, by, None if reason is None else LowerReason(reason))
                       for seq, pid, raised_at, lowered_at, by, reason in hands)
    for hand in room.hands.queue():
        if (p := room.participants.get(hand.participant_id)) is not None:
            p.hand_raised_at = hand.raised_at
    room.attention.restore(
        AttentionRequest(attention_id=aid, from_id=from_id, from_name=from_name, text=text, sent_at=sent_at,
                         targets={pid: name for pid, name, _ in targets},
                         acks=dict(sorted(((pid, at) for pid, _, at in targets if at is not None),
                                          key=lambda a: a[1])))
        for aid, from_id, from_name, text, sent_at, targets in attention)
    for identity, (name, family, given, role, registered, intervals) in attendance.items():
        # replayed through the domain: intervals were written unmerged, so each gap exceeds the
        # merge gap and the replay gives the same intervals back
        for joined, left in intervals:
            room.attendance.joined(identity=identity, name=name, family_name=family, given_name=given,
                                   role=role, registered=registered, now=joined)
            if left is not None:
                room.attendance.left(identity, left)
    for m in chat[-KEEP_MESSAGES:]:
        room.chat.add(m)
    return room

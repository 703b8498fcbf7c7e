"""A Room and its rows: what of a room is durable, read out of the live object and rebuilt from rows.

``capture`` reads a room's durable state into plain tuples (no I/O, on the loop, O(participants +
chat)); the SQL store compares two captures to write only what changed.  ``rebuild`` makes a Room
from rows through the domain's own methods where it has them (the chat log, attendance), so the
rebuilt room keeps the domain's invariants and indexes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from signaling.rooms import Participant, ParticipantState, Role, Room, RoomSettings
from signaling.rooms.chat_log import KEEP_MESSAGES, ChatMessage
from signaling.rooms.room_settings import LockSettings

BANNED = "banned"
DENIED = "denied"

# (settings JSON, external_id, ended_at, started_at, lock_before_lockdown JSON)
RoomRow = tuple[dict[str, Any], str | None, float | None, float | None, dict[str, Any] | None]
# (identity, name, family_name, given_name, role, registered, state, joined_at, waiting_since, left_at)
ParticipantRow = tuple[str, str, str, str, str, bool, str, float | None, float | None, float | None]
# (name, family_name, given_name, role, registered, ((joined, left), ...))
AttendanceRow = tuple[str, str, str, str, bool, tuple[tuple[float, float | None], ...]]


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


def room_row(room: Room) -> RoomRow:
    lock = room.lock_before_lockdown
    return (room.settings.to_json(), room.settings.external_id, room.ended_at, room.started_at,
            None if lock is None else msgspec.to_builtins(lock))


def participant_row(p: Participant) -> ParticipantRow:
    return (p.identity, p.name, p.family_name, p.given_name, p.role.value, p.registered, p.state.value,
            p.joined_at, p.waiting_since, p.left_at)


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
    attendance: dict[str, AttendanceRow] = {}
    for identity in room._by_identity:  # every identity that ever came (records() would sort them all)
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
) -> Room:
    """A Room from its rows.  Participants keep their state: one who was joined when the server
    stopped is still joined (a restart is a long network drop) and gets the same seat back."""
    settings_json, _, ended_at, started_at, lock_json = row
    room = Room(room_id=room_id, settings=RoomSettings.parse(settings_json), created_at=created_at,
                ended_at=ended_at, started_at=started_at,
                lock_before_lockdown=None if lock_json is None else msgspec.convert(lock_json, LockSettings))
    for kind, identity in exclusions:
        (room.banned if kind == BANNED else room.denied).add(identity)
    room.role_overrides.update({i: Role(r) for i, r in overrides.items()})
    for pid, (identity, name, family, given, role, registered, state, joined_at, waiting_since,
              left_at) in participants:
        p = Participant(participant_id=pid, identity=identity, name=name, role=Role(role), registered=registered,
                        family_name=family, given_name=given, state=ParticipantState(state),
                        joined_at=joined_at, waiting_since=waiting_since, left_at=left_at)
        room.participants[pid] = p
        room._by_identity[identity] = pid
        if p.state is not ParticipantState.LEFT:
            room._present[pid] = p
        if p.state is ParticipantState.JOINED:
            room._joined[pid] = p
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

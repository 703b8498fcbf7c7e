"""A participant of a room: who they are, their role, and where they stand (waiting, joined, left)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signaling.rooms.role import Role


class ParticipantState(StrEnum):
    WAITING = "waiting"
    JOINED = "joined"
    LEFT = "left"


class WaitingReason(StrEnum):
    """Why someone is in the waiting room; the client words its waiting screen by it."""

    GUEST_POLICY = "guest_policy"  # the room's guest policy: a host decides ("the teacher will let you in")
    NOT_ON_ROSTER = "not_on_roster"  # a lesson's room and not on its roster: a host decides
    HOST_ABSENT = "host_absent"  # would enter, but the room waits for its teacher ("waiting for the teacher")


SOURCES = ("microphone", "camera", "screen", "screen_audio")


@dataclass(slots=True)
class Participant:
    participant_id: str
    identity: str
    name: str
    role: Role
    registered: bool
    family_name: str = ""
    given_name: str = ""
    state: ParticipantState = ParticipantState.WAITING
    joined_at: float | None = None
    waiting_since: float | None = None
    waiting_reason: WaitingReason | None = None  # set while waiting (not stored: recomputed on reconnect)
    left_at: float | None = None
    muted: dict[str, bool] = field(default_factory=dict)
    hand_raised_at: float | None = None

    def sort_key(self) -> tuple[str, str, str, str]:
        """Participant lists sort by family name, then given name (case-insensitive), then name."""
        family = (self.family_name or self.name).casefold()
        return (family, self.given_name.casefold(), self.name.casefold(), self.participant_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "participant_id": self.participant_id,
            "identity": self.identity,
            "name": self.name,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "role": self.role.value,
            "registered": self.registered,
            "state": self.state.value,
            "joined_at": self.joined_at,
            "waiting_since": self.waiting_since,
            "muted": dict(self.muted),
            "hand_raised_at": self.hand_raised_at,
        }
        if self.state is ParticipantState.WAITING:
            out["waiting_reason"] = (self.waiting_reason or WaitingReason.GUEST_POLICY).value
        return out

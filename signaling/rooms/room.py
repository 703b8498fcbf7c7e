"""The room aggregate: settings, participants, admission by guest policy, permission checks.

Plain Python, no I/O: every method takes the time as an argument so tests need no clock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from signaling.rooms.errors import EntryRefused, ParticipantNotFound, RoomClosed, RoomFull
from signaling.rooms.participant import Participant, ParticipantState
from signaling.rooms.permissions import Action, require
from signaling.rooms.role import Role
from signaling.rooms.room_settings import GuestPolicy, RoomSettings


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(9)}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who asks to join (from a verified access token)."""

    identity: str
    name: str
    role: Role
    registered: bool
    family_name: str = ""
    given_name: str = ""


@dataclass(slots=True)
class Room:
    room_id: str
    settings: RoomSettings
    created_at: float
    ended_at: float | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    _by_identity: dict[str, str] = field(default_factory=dict)
    banned: set[str] = field(default_factory=set)

    # --- queries -----------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def present(self) -> list[Participant]:
        """Participants in the room or in its waiting room (not those who left)."""
        return [p for p in self.participants.values() if p.state is not ParticipantState.LEFT]

    def joined(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state is ParticipantState.JOINED]

    def waiting(self) -> list[Participant]:
        w = [p for p in self.participants.values() if p.state is ParticipantState.WAITING]
        return sorted(w, key=lambda p: (p.waiting_since or 0.0, p.participant_id))

    def get(self, participant_id: str) -> Participant:
        p = self.participants.get(participant_id)
        if p is None or p.state is ParticipantState.LEFT:
            raise ParticipantNotFound(f"no participant {participant_id!r} in this room")
        return p

    def by_identity(self, identity: str) -> Participant | None:
        pid = self._by_identity.get(identity)
        return self.participants.get(pid) if pid else None

    def sorted_joined(self) -> list[Participant]:
        return sorted(self.joined(), key=Participant.sort_key)

    def page(self, offset: int, limit: int) -> tuple[list[Participant], int]:
        everyone = self.sorted_joined()
        return everyone[offset : offset + limit], len(everyone)

    def require(self, actor: Participant, action: Action) -> None:
        require(actor.role, actor.registered, action, self.settings.lock)

    # --- admission ---------------------------------------------------------------------------
    def _must_wait(self, who: Identity) -> bool:
        if who.role.is_moderator:
            return False
        policy = self.settings.guest_policy
        if policy is GuestPolicy.ALWAYS_ACCEPT:
            return False
        if policy is GuestPolicy.ASK_HOST:
            return True
        return not who.registered  # ALWAYS_ACCEPT_AUTH; ALWAYS_DENY refused guests before this

    def admit_or_queue(self, who: Identity, now: float) -> Participant:
        """A connection asks to join: returns the participant, joined or waiting.

        A reconnect of the same identity keeps its participant id (and its seat: a participant
        who was joined stays joined, one who waited keeps its place in the queue).
        """
        if self.ended:
            raise RoomClosed("this lesson has ended")
        if who.identity in self.banned:
            raise EntryRefused("you were removed from this lesson and cannot rejoin")
        if (
            self.settings.guest_policy is GuestPolicy.ALWAYS_DENY
            and not who.registered
            and not who.role.is_moderator
        ):
            raise EntryRefused("this lesson admits only users signed in to the school")
        existing = self.by_identity(who.identity)
        if existing is not None and existing.state is not ParticipantState.LEFT:
            existing.name, existing.role, existing.registered = who.name, who.role, who.registered
            existing.family_name, existing.given_name = who.family_name, who.given_name
            return existing
        if len(self.present()) >= self.settings.max_participants:
            raise RoomFull(f"the room is full ({self.settings.max_participants} participants)")
        pid = existing.participant_id if existing is not None else new_id("PA")
        p = Participant(
            participant_id=pid, identity=who.identity, name=who.name, role=who.role,
            registered=who.registered, family_name=who.family_name, given_name=who.given_name,
        )
        if self._must_wait(who):
            p.state, p.waiting_since = ParticipantState.WAITING, now
        else:
            p.state, p.joined_at = ParticipantState.JOINED, now
        self.participants[pid] = p
        self._by_identity[who.identity] = pid
        return p

    def leave(self, participant_id: str, now: float) -> Participant:
        p = self.get(participant_id)
        p.state, p.left_at, p.hand_raised_at = ParticipantState.LEFT, now, None
        return p

    def end(self, now: float) -> list[Participant]:
        """End the room for everyone; returns who was present. Idempotent."""
        if self.ended:
            return []
        present = self.present()
        for p in present:
            p.state, p.left_at = ParticipantState.LEFT, now
        self.ended_at = now
        return present

    def to_json(self, *, participants: int = 50) -> dict[str, Any]:
        listed, total = self.page(0, participants)
        return {
            "room_id": self.room_id,
            "name": self.settings.name,
            "external_id": self.settings.external_id,
            "settings": self.settings.to_json(),
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "active": not self.ended,
            "num_participants": total,
            "num_waiting": len(self.waiting()),
            "participants": [p.to_json() for p in listed],
            "breakouts": [],
        }

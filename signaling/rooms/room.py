"""The room aggregate: settings, participants, admission by guest policy, permission checks.

Plain Python, no I/O: every method takes the time as an argument so tests need no clock.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from signaling.rooms.attendance import Attendance
from signaling.rooms.attention import MAX_ATTENTION_TEXT, AttentionLog, AttentionRequest
from signaling.rooms.chat_log import ChatLog, ChatMessage, clean_text
from signaling.rooms.errors import (
    EntryRefused,
    InvalidInput,
    InvalidState,
    ParticipantNotFound,
    PermissionDenied,
    RoomClosed,
    RoomFull,
    SeatTaken,
)
from signaling.rooms.hand_queue import HandQueue, LowerReason, RaisedHand
from signaling.rooms.moderation import FULL_LOCK, changed_lock, check_emoji, check_rank, check_role_change
from signaling.rooms.participant import Participant, ParticipantState, WaitingReason
from signaling.rooms.permissions import SOURCE_ACTIONS, Action, denial, require
from signaling.rooms.rate_limit import CHAT_RATE, REACTION_RATE, RateLimits
from signaling.rooms.role import Role
from signaling.rooms.room_settings import GuestPolicy, LockSettings, RoomSettings

MAX_EXTEND_MINUTES = 240  # one extension at most (a double lesson and then some)
MAX_DURATION_MINUTES = 7 * 24 * 60  # RoomSettings.duration_minutes' ceiling


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
    denied: set[str] = field(default_factory=set)  # identities a host denied entry (same token: refused)
    role_overrides: dict[str, Role] = field(default_factory=dict)  # identity -> role set in the room
    unmute_allowed: set[str] = field(default_factory=set)  # participant ids who may unmute despite the lock
    unmute_once: set[tuple[str, str]] = field(default_factory=set)  # (participant id, source) asked to unmute
    lock_before_lockdown: LockSettings | None = None  # set while the one-click lockdown is on
    started_at: float | None = None  # when the first participant joined (the duration counts from it)
    # a lesson's roster (identities; signaling/lessons): None for a room without one
    roster: set[str] | None = None
    hands: HandQueue = field(default_factory=HandQueue)
    chat: ChatLog = field(default_factory=ChatLog)
    attention: AttentionLog = field(default_factory=AttentionLog)
    attendance: Attendance = field(default_factory=Attendance)
    spotlight: str | None = None  # the participant a host features large for everyone (not stored)
    limits: RateLimits = field(default_factory=RateLimits)
    # indexes kept by join/_enter/leave (the only places a state changes): a webinar of 2000 asks
    # "who is in" several times per join, which must not cost a scan of everybody each time
    _joined: dict[str, Participant] = field(default_factory=dict, repr=False)
    _present: dict[str, Participant] = field(default_factory=dict, repr=False)

    def restore_participants(self, participants: Iterable[Participant]) -> None:
        """The store's rebuild (signaling/store/room_rows.py): participants as they were written, each
        in its state (one who was joined when the server stopped is still joined); the indexes follow."""
        for p in participants:
            self.participants[p.participant_id] = p
            self._by_identity[p.identity] = p.participant_id
            if p.state is not ParticipantState.LEFT:
                self._present[p.participant_id] = p
            if p.state is ParticipantState.JOINED:
                self._joined[p.participant_id] = p

    # --- queries -----------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def present(self) -> list[Participant]:
        """Participants in the room or in its waiting room (not those who left)."""
        return list(self._present.values())

    def joined(self) -> list[Participant]:
        return list(self._joined.values())

    @property
    def num_joined(self) -> int:
        return len(self._joined)

    def waiting(self) -> list[Participant]:
        w = [p for p in self.participants.values() if p.state is ParticipantState.WAITING]
        return sorted(w, key=lambda p: (p.waiting_since or 0.0, p.participant_id))

    def get(self, participant_id: str) -> Participant:
        p = self.participants.get(participant_id)
        if p is None or p.state is ParticipantState.LEFT:
            raise ParticipantNotFound(f"no participant {participant_id!r} in this room")
        return p

    def get_joined(self, participant_id: str) -> Participant:
        p = self.get(participant_id)
        if p.state is not ParticipantState.JOINED:
            raise ParticipantNotFound(f"participant {participant_id!r} is not in the room (waiting room?)")
        return p

    def moderators(self) -> list[Participant]:
        return [p for p in self.joined() if p.role.is_moderator]

    @property
    def lockdown(self) -> bool:
        return self.lock_before_lockdown is not None

    def ends_at(self, minute_s: float = 60.0) -> float | None:
        """When the lesson ends: the timetable's end (`settings.ends_at`) if it has one, else by its
        duration from the first join (None: no limit, or a duration that has not started)."""
        if self.settings.ends_at is not None:
            return self.settings.ends_at
        if self.settings.duration_minutes <= 0 or self.started_at is None:
            return None
        return self.started_at + self.settings.duration_minutes * minute_s

    def scheduled_s(self, minute_s: float = 60.0) -> float:
        """The lesson's length in lesson seconds (which end-of-lesson warnings fit in it): the
        duration, or for a timetable end the time from the lesson's start (the timetable's, else the
        first join, else the room's creation) to that end."""
        if self.settings.ends_at is None:
            return self.settings.duration_minutes * 60.0
        lesson = self.settings.lesson
        start = lesson.starts_at if lesson is not None else (
            self.started_at if self.started_at is not None else self.created_at)
        return max(0.0, (self.settings.ends_at - start) * 60.0 / minute_s)

    def host_present(self) -> bool:
        return any(p.role.is_moderator for p in self._joined.values())

    def by_identity(self, identity: str) -> Participant | None:
        pid = self._by_identity.get(identity)
        return self.participants.get(pid) if pid else None

    def sorted_joined(self) -> list[Participant]:
        return sorted(self.joined(), key=Participant.sort_key)

    def page(self, offset: int, limit: int) -> tuple[list[Participant], int]:
        """Joined participants ``offset .. offset + limit`` in name order, and how many there are
        (a partial sort: the first page of a 2000-person room is cheap)."""
        first = heapq.nsmallest(offset + limit, self._joined.values(), key=Participant.sort_key)
        return first[offset:], len(self._joined)

    def require(self, actor: Participant, action: Action) -> None:
        require(actor.role, actor.registered, action, self.settings.lock)

    # --- admission ---------------------------------------------------------------------------
    def _waiting_reason(self, identity: str, role: Role, registered: bool) -> WaitingReason | None:
        """Why this person must wait, or None: they enter.  Hosts and co-hosts always enter.  A
        lesson's roster replaces the guest policy (Meet + Classroom: the class enters, anyone else
        waits for a host; ALWAYS_DENY refused guests before this); then "wait for the teacher"
        holds back whoever would enter while no host or co-host is in."""
        if role.is_moderator:
            return None
        if self.roster is not None:
            if identity not in self.roster:
                return WaitingReason.NOT_ON_ROSTER
        else:
            policy = self.settings.guest_policy
            if policy is GuestPolicy.ASK_HOST or (policy is not GuestPolicy.ALWAYS_ACCEPT and not registered):
                return WaitingReason.GUEST_POLICY
        if self.settings.wait_for_host and not self.host_present():
            return WaitingReason.HOST_ABSENT
        return None

    def admit_or_queue(self, who: Identity, now: float, *, connected: bool = False) -> Participant:
        """A connection asks to join: returns the participant, joined or waiting.

        A reconnect of the same identity keeps its participant id (and its seat: a participant
        who was joined stays joined, one who waited keeps its place in the queue).  ``connected``:
        that identity has a live connection now; unless `allow_seat_takeover`, the new one is
        refused (SeatTaken) instead of taking the seat from it.
        """
        if self.ended:
            raise RoomClosed("this lesson has ended")
        if who.identity in self.banned:
            raise EntryRefused("you were removed from this lesson and cannot rejoin")
        if who.identity in self.denied:
            raise EntryRefused("a host did not let you into this lesson")
        role = self.role_overrides.get(who.identity, who.role)
        if (
            self.settings.guest_policy is GuestPolicy.ALWAYS_DENY
            and not who.registered
            and not who.role.is_moderator
        ):
            raise EntryRefused("this lesson admits only users signed in to the school")
        existing = self.by_identity(who.identity)
        if existing is not None and existing.state is not ParticipantState.LEFT:
            if connected and not self.settings.allow_seat_takeover:
                raise SeatTaken("you are already in this lesson in another tab or on another device")
            existing.name, existing.role, existing.registered = who.name, role, who.registered
            existing.family_name, existing.given_name = who.family_name, who.given_name
            if existing.state is ParticipantState.WAITING:
                # the reason is not stored: after a restart it is found again here; someone who
                # needs no waiting now (a host's token, the teacher came) enters
                existing.waiting_reason = self._waiting_reason(who.identity, role, who.registered)
                if existing.waiting_reason is None:
                    self._enter(existing, now)
            return existing
        # closed to newcomers: who has been in this lesson comes back (a dropped connection is a leave)
        if self.settings.guest_policy is GuestPolicy.LOCKED and not role.is_moderator and existing is None:
            raise EntryRefused("a host closed this lesson to newcomers")
        if len(self._present) >= self.settings.max_participants:
            raise RoomFull(f"the room is full ({self.settings.max_participants} participants)")
        pid = existing.participant_id if existing is not None else new_id("PA")
        p = Participant(
            participant_id=pid, identity=who.identity, name=who.name, role=role,
            registered=who.registered, family_name=who.family_name, given_name=who.given_name,
        )
        self.participants[pid] = p
        self._present[pid] = p
        self._by_identity[who.identity] = pid
        reason = self._waiting_reason(who.identity, role, who.registered)
        if reason is not None:
            p.state, p.waiting_since, p.waiting_reason = ParticipantState.WAITING, now, reason
        else:
            self._enter(p, now)
        return p

    def _enter(self, p: Participant, now: float) -> None:
        p.state, p.joined_at, p.waiting_since, p.waiting_reason = ParticipantState.JOINED, now, None, None
        self._joined[p.participant_id] = p
        if self.started_at is None:
            self.started_at = now
        self.attendance.joined(identity=p.identity, name=p.name, family_name=p.family_name,
                               given_name=p.given_name, role=p.role.value, registered=p.registered, now=now)

    def leave_absent(self, connected: Collection[str], now: float) -> tuple[list[Participant], list[Participant]]:
        """Everyone still in the room or its queue without a connection leaves, at ``now``.  After a
        restart the store brings back who was present (a restart is a long network drop); those who
        have not reconnected within the reconnect window are gone and must stop counting toward the
        room and holding seats (issue 11).  Returns who left: (those who were joined, those who waited)."""
        gone = [p for p in self.present() if p.participant_id not in connected]
        joined = [p for p in gone if p.state is ParticipantState.JOINED]
        waited = [p for p in gone if p.state is ParticipantState.WAITING]
        for p in gone:
            self.leave(p.participant_id, now)
        return joined, waited

    def leave(self, participant_id: str, now: float) -> Participant:
        p = self.get(participant_id)
        was_joined = p.state is ParticipantState.JOINED
        p.state, p.left_at, p.hand_raised_at = ParticipantState.LEFT, now, None
        self._joined.pop(participant_id, None)
        self._present.pop(participant_id, None)
        self.hands.lower(participant_id, now, reason=LowerReason.LEFT)
        self.limits.forget(participant_id)
        self.unmute_allowed.discard(participant_id)
        self.unmute_once = {g for g in self.unmute_once if g[0] != participant_id}
        if was_joined:
            self.attendance.left(p.identity, now)
        return p

    def end(self, now: float) -> list[Participant]:
        """End the room for everyone; returns who was present. Idempotent."""
        if self.ended:
            return []
        present = self.present()
        for p in present:
            self.leave(p.participant_id, now)
        self.ended_at = now
        return present

    # --- waiting room ------------------------------------------------------------------------
    def _known(self, participant_ids: Sequence[str]) -> list[Participant]:
        """All named participants (present), or ParticipantNotFound before anything changes."""
        return [self.get(pid) for pid in dict.fromkeys(participant_ids)]

    def admit(self, actor: Participant, participant_ids: Sequence[str] | None, now: float) -> list[Participant]:
        """Let waiting participants in (None: everyone waiting).  Returns those admitted by this call;
        someone already admitted (by another host a moment earlier) is simply skipped."""
        self.require(actor, Action.ADMIT)
        targets = self.waiting() if participant_ids is None else self._known(participant_ids)
        admitted = [p for p in targets if p.state is ParticipantState.WAITING]
        for p in admitted:
            self._enter(p, now)
        return admitted

    def release_host_waiters(self, now: float) -> list[Participant]:
        """"Wait for the teacher": once a host or co-host is in, everyone waiting only for that
        (`host_absent`) enters at once; those a host must decide on stay.  Returns who entered."""
        if not self.settings.wait_for_host or not self.host_present():
            return []
        released = [p for p in self.waiting() if p.waiting_reason is WaitingReason.HOST_ABSENT]
        for p in released:
            self._enter(p, now)
        return released

    def set_roster(self, roster: Collection[str] | None, now: float) -> list[Participant]:
        """A lesson's roster changed (also during the lesson): whoever waits is judged again.  Someone
        now on it enters (or waits for the teacher); someone taken off it who waits now waits for a
        host's decision.  Nobody already in is put out.  Returns who entered."""
        self.roster = None if roster is None else set(roster)
        entered: list[Participant] = []
        for p in self.waiting():
            p.waiting_reason = self._waiting_reason(p.identity, p.role, p.registered)
            if p.waiting_reason is None:
                self._enter(p, now)
                entered.append(p)
        return entered

    def deny(self, actor: Participant, participant_ids: Sequence[str], now: float) -> list[Participant]:
        """Refuse waiting participants; their identity cannot come back to this room."""
        self.require(actor, Action.ADMIT)
        denied = [p for p in self._known(participant_ids) if p.state is ParticipantState.WAITING]
        for p in denied:
            self.leave(p.participant_id, now)
            self.denied.add(p.identity)
        return denied

    # --- host controls -----------------------------------------------------------------------
    def remove(self, actor: Participant | None, participant_id: str, *, ban: bool, now: float) -> Participant:
        """Remove someone (``actor`` None: the school's API).  ``ban`` keeps the identity out."""
        if actor is not None:
            self.require(actor, Action.REMOVE)
        p = self.get(participant_id)
        if actor is not None:
            if p.participant_id == actor.participant_id:
                raise InvalidState("you cannot remove yourself; leave instead")
            check_rank(actor, p)
        self.leave(p.participant_id, now)
        if ban:
            self.banned.add(p.identity)
        return p

    # --- the lesson's end --------------------------------------------------------------------
    def check_extend(self, actor: Participant) -> None:
        if not actor.role.is_moderator:
            raise PermissionDenied("only hosts and co-hosts can extend the lesson")

    def extend(self, actor: Participant | None, minutes: int, now: float, *, minute_s: float = 60.0) -> float | None:
        """Move the lesson's end ``minutes`` later (``actor`` None: the school's API).  A timetable
        end moves; a duration grows (it counts from the first join: None while nobody has joined).
        Returns the new end.  A room without an end has nothing to extend (invalid_state)."""
        if actor is not None:
            self.check_extend(actor)
        if self.ended:
            raise RoomClosed("this lesson has ended")
        if not 1 <= minutes <= MAX_EXTEND_MINUTES:
            raise InvalidInput(f"extend by 1 to {MAX_EXTEND_MINUTES} minutes at a time")
        s = self.settings
        if s.ends_at is not None:
            self.settings = msgspec.structs.replace(s, ends_at=s.ends_at + minutes * minute_s)
        elif s.duration_minutes > 0:
            if s.duration_minutes + minutes > MAX_DURATION_MINUTES:
                raise InvalidInput(f"a lesson lasts at most {MAX_DURATION_MINUTES} minutes")
            self.settings = msgspec.structs.replace(s, duration_minutes=s.duration_minutes + minutes)
        else:
            raise InvalidState("this lesson has no end to extend (no timetable end or duration)")
        return self.ends_at(minute_s)

    def set_guest_policy(self, actor: Participant, policy: GuestPolicy) -> GuestPolicy:
        """Switch who may enter from now on (the host menu); returns the policy before.  Whoever is
        waiting already stays waiting: a host admits or denies them."""
        self.require(actor, Action.GUEST_POLICY)
        before = self.settings.guest_policy
        self.settings = msgspec.structs.replace(self.settings, guest_policy=policy)
        return before

    def spotlit(self) -> str | None:
        """The spotlighted participant while they are in the lesson."""
        return self.spotlight if self.spotlight in self._joined else None

    def set_spotlight(self, actor: Participant, participant_id: str | None) -> str | None:
        """Feature one joined participant for everyone, or nobody (None)."""
        self.require(actor, Action.SPOTLIGHT)
        if participant_id is not None:
            self.get_joined(participant_id)
        self.spotlight = participant_id
        return participant_id

    def ban(self, identity: str) -> None:
        """Keep an identity out of this room (also one that is not here now)."""
        self.banned.add(identity)

    def set_role(self, actor: Participant, participant_id: str, role: Role) -> tuple[Participant, Role]:
        """Change a joined participant's role; returns the participant and the previous role.
        The role sticks for the rest of the lesson, also across reconnects."""
        self.require(actor, Action.SET_ROLE)
        target = self.get_joined(participant_id)
        check_role_change(actor, target, role, self.settings.lock)
        before = target.role
        if before is Role.HOST and role is not Role.HOST and not any(
                p.role is Role.HOST for p in self.joined() if p is not target):
            raise InvalidState("the lesson needs a host: make someone else a host first")
        target.role = role
        self.role_overrides[target.identity] = role
        self.attendance.role_changed(target.identity, role.value)
        if not role.is_moderator:
            self.unmute_allowed.discard(target.participant_id)
        return target, before

    def mute_targets(self, actor: Participant | None, participant_id: str | None, source: str) -> list[Participant]:
        """Whom a host's mute reaches (``actor`` None: the school's API): one participant, or (None)
        everyone but the moderators.  Pending 'ask to unmute' grants for that source end."""
        if actor is not None:
            self.require(actor, Action.MUTE_OTHERS)
        if source not in SOURCE_ACTIONS:
            raise InvalidInput(f"unknown source {source!r}")
        if participant_id is None:
            targets = [p for p in self.joined() if not p.role.is_moderator and p is not actor]
        else:
            target = self.get_joined(participant_id)
            if actor is not None:
                check_rank(actor, target)
            targets = [target]
        for p in targets:
            self.unmute_once.discard((p.participant_id, source))
        return targets

    def check_self_unmute(self, participant: Participant, source: str) -> None:
        """May this participant unmute (start sending) ``source`` themselves?  Raises PermissionDenied.

        The role and the source's lock decide (a viewer never publishes; `camera` locked forbids the
        camera).  With `self_unmute` locked a participant needs the host's allowance
        (`allow_unmute`) or a pending 'ask to unmute' for that source, which this call uses up.
        Muting oneself is always allowed: call this only for muted=false."""
        action = SOURCE_ACTIONS.get(source)
        if action is None:
            raise InvalidInput(f"unknown source {source!r}")
        self.require(participant, action)
        if denial(participant.role, participant.registered, Action.UNMUTE_SELF, self.settings.lock) is None:
            return
        pid = participant.participant_id
        if pid in self.unmute_allowed:
            return
        if (pid, source) in self.unmute_once:
            self.unmute_once.discard((pid, source))
            return
        raise PermissionDenied("the host has locked unmuting; raise your hand to ask")

    def allow_unmute(self, actor: Participant, participant_id: str, allowed: bool) -> Participant:
        self.require(actor, Action.MUTE_OTHERS)
        target = self.get_joined(participant_id)
        if allowed:
            self.unmute_allowed.add(target.participant_id)
        else:
            self.unmute_allowed.discard(target.participant_id)
        return target

    def request_unmute(self, actor: Participant, participant_id: str, source: str) -> Participant:
        """'Ask to unmute': the target may unmute ``source`` once even if self-unmute is locked."""
        self.require(actor, Action.MUTE_OTHERS)
        target = self.get_joined(participant_id)
        self.unmute_once.add((target.participant_id, source))
        return target

    def set_lock(self, actor: Participant | None, changes: Mapping[str, bool]) -> tuple[LockSettings, LockSettings]:
        """Change some locks; returns (old, new)."""
        if actor is not None:
            self.require(actor, Action.SET_LOCK)
        old = self.settings.lock
        new = changed_lock(old, changes)
        self.settings = msgspec.structs.replace(self.settings, lock=new)
        return old, new

    def set_lockdown(self, actor: Participant | None, enabled: bool) -> tuple[LockSettings, LockSettings]:
        """One click: every lock on (remembering the locks before), or back to the locks before."""
        if actor is not None:
            self.require(actor, Action.SET_LOCK)
        old = self.settings.lock
        if enabled:
            if self.lock_before_lockdown is None:
                self.lock_before_lockdown = old
            new = FULL_LOCK
        else:
            new = self.lock_before_lockdown if self.lock_before_lockdown is not None else old
            self.lock_before_lockdown = None
        self.settings = msgspec.structs.replace(self.settings, lock=new)
        return old, new

    # --- hands, reactions --------------------------------------------------------------------
    def raise_hand(self, participant: Participant, now: float) -> tuple[RaisedHand, bool]:
        self.require(participant, Action.RAISE_HAND)
        hand, new = self.hands.raise_hand(participant.participant_id, now)
        participant.hand_raised_at = hand.raised_at
        return hand, new

    def lower_hands(self, actor: Participant, participant_id: str | None, everyone: bool,
                    now: float | None = None) -> list[str]:
        """Lower the actor's own hand, or (moderators) someone's or everyone's.  Returns whose.
        The hands' history records who lowered each and when (``now``)."""
        if everyone or (participant_id is not None and participant_id != actor.participant_id):
            self.require(actor, Action.LOWER_OTHERS_HAND)
        by = actor.participant_id
        if everyone:
            lowered = self.hands.lower_all(now, by=by)
        else:
            target = self.get(participant_id or actor.participant_id)
            reason = LowerReason.LOWERED if target.participant_id == by else LowerReason.ANSWERED
            lowered = [target.participant_id] if self.hands.lower(target.participant_id, now, by=by,
                                                                   reason=reason) else []
        for pid in lowered:
            if (p := self.participants.get(pid)) is not None:
                p.hand_raised_at = None
        return lowered

    def hand_queue(self, actor: Participant) -> list[RaisedHand]:
        self.require(actor, Action.VIEW_HANDS)
        return self.hands.queue()

    def react(self, participant: Participant, emoji: str, now: float) -> str:
        self.require(participant, Action.REACT)
        check_emoji(emoji)
        self.limits.take(participant.participant_id, "reaction", REACTION_RATE, now)
        return emoji

    # --- chat --------------------------------------------------------------------------------
    def chat_send(self, sender: Participant, text: str, to: str | None, now: float) -> ChatMessage:
        """Public (``to`` None) or private.  Guests read but do not write; `chat` locks all of it
        for participants, `private_chat` locks messages to anyone but a host or co-host."""
        if to is None:
            self.require(sender, Action.CHAT)
            target = None
        else:
            target = self.get_joined(to)
            if target is sender:
                raise InvalidInput("a private message needs another participant")
            self.require(sender, Action.CHAT_TO_HOST if target.role.is_moderator else Action.PRIVATE_CHAT)
        clean = clean_text(text)
        self.limits.take(sender.participant_id, "chat", CHAT_RATE, now)
        return self.chat.add(ChatMessage(
            message_id=new_id("MS"), from_id=sender.participant_id, from_name=sender.name, text=clean,
            sent_at=now, to_id=None if target is None else target.participant_id,
            to_name=None if target is None else target.name))

    def chat_delete(self, actor: Participant, message_id: str) -> ChatMessage:
        self.require(actor, Action.CHAT_DELETE)
        return self.chat.delete(message_id)

    # --- attention ---------------------------------------------------------------------------
    def ask_attention(self, actor: Participant, participant_id: str | None, text: str,
                      now: float, *, within: Collection[str] | None = None) -> AttentionRequest:
        """Ask one participant or (None) everyone but the moderators to confirm they are there
        (``within``: everyone of those, e.g. the asker's breakout group)."""
        self.require(actor, Action.ATTENTION)
        text = text.strip()
        if len(text) > MAX_ATTENTION_TEXT:
            raise InvalidInput(f"the attention text has at most {MAX_ATTENTION_TEXT} characters")
        if participant_id is None:
            targets = [p for p in self.joined() if not p.role.is_moderator and p is not actor
                       and (within is None or p.participant_id in within)]
        else:
            targets = [self.get_joined(participant_id)]
        if not targets:
            raise InvalidState("there is nobody to ask")
        return self.attention.add(AttentionRequest(
            attention_id=new_id("AT"), from_id=actor.participant_id, from_name=actor.name, text=text,
            sent_at=now, targets={p.participant_id: p.name for p in targets}))

    def ack_attention(self, participant: Participant, attention_id: str | None,
                      now: float) -> tuple[AttentionRequest, bool]:
        self.require(participant, Action.ACK_ATTENTION)
        return self.attention.ack(participant.participant_id, attention_id, now)

    def attention_status(self, actor: Participant, attention_id: str, now: float) -> dict[str, Any]:
        self.require(actor, Action.ATTENTION)
        return self.attention.get(attention_id).status(now)

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
            "lockdown": self.lockdown,
            "participants": [p.to_json() for p in listed],
            "breakouts": [],
        }

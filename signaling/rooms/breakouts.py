"""Breakout groups of one room: plain rules, no I/O, the time passed in.

The groups live inside the room (signaling/rooms/live_breakouts.py serves them): a participant in a
group receives only that group's media and news, the main room stays open for whoever is in no
group.  One ``Breakouts`` per room at a time goes PREPARED -> OPEN -> CLOSING -> CLOSED:

- prepared: groups with names and members (manual lists, an even or random split, or none for
  self-select), nothing is sent to students yet and nobody moves;
- open: students are in their groups; a timer (optional, extendable); broadcasts; moves; help
  requests in order; moderators visit any group (optionally listening only) and may speak to all;
- closing: a countdown everyone sees; when it is over everyone is back (``finish``);
- closed: nobody is in a group; the attendance (who was in which group when) stays.

Everything that changes takes ``now`` (seconds, the room's clock).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signaling.rooms.errors import InvalidInput, InvalidState, ParticipantNotFound

MIN_GROUPS = 2
MAX_NAME = 60
MAX_BROADCAST = 500
MAX_DURATION_S = 4 * 3600
MAX_EXTEND_S = 3600
MAX_COUNTDOWN_S = 600
KEEP_BROADCASTS = 50
KEEP_GROUP_CHAT = 200


class BreakoutState(StrEnum):
    PREPARED = "prepared"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Assignment(StrEnum):
    MANUAL = "manual"  # lists given by the host (or dragged in the panel)
    AUTO = "auto"  # an even split in the given order (the class list)
    RANDOM = "random"  # an even split after a shuffle (seeded: the same seed, the same groups)
    SELF = "self"  # students choose; optional cap per group


class GroupNotFound(ParticipantNotFound):
    """No breakout group with that id (the wire code stays ``not_found``)."""


@dataclass(slots=True)
class Group:
    group_id: str
    name: str
    members: list[str] = field(default_factory=list)  # participant ids, in the order they came
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def to_json(self) -> dict[str, Any]:
        return {"breakout_id": self.group_id, "name": self.name, "participant_ids": list(self.members),
                "closed": self.closed_at is not None}


@dataclass(frozen=True, slots=True)
class HelpRequest:
    participant_id: str
    group_id: str
    asked_at: float

    def to_json(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "breakout_id": self.group_id, "asked_at": self.asked_at}


@dataclass(frozen=True, slots=True)
class Visit:
    """A host or co-host in a group: hears and sees it; ``listen_only``: the group does not get them."""

    group_id: str
    listen_only: bool


@dataclass(slots=True)
class Stint:
    """One stay of a participant in a group (the attendance)."""

    participant_id: str
    group_id: str
    joined_at: float
    left_at: float | None = None
    visitor: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "breakout_id": self.group_id, "joined_at": self.joined_at,
                "left_at": self.left_at, "visitor": self.visitor}


@dataclass(frozen=True, slots=True)
class Broadcast:
    text: str
    sent_at: float
    by: str


@dataclass(frozen=True, slots=True)
class GroupMessage:
    message_id: str
    group_id: str
    from_id: str
    from_name: str
    text: str
    sent_at: float

    def to_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "breakout_id": self.group_id, "from_id": self.from_id,
                "from_name": self.from_name, "text": self.text, "sent_at": self.sent_at}


def even_split(participant_ids: Sequence[str], k: int) -> list[list[str]]:
    """``k`` groups whose sizes differ by at most one, filled round-robin in the given order."""
    groups: list[list[str]] = [[] for _ in range(k)]
    for i, pid in enumerate(participant_ids):
        groups[i % k].append(pid)
    return groups


def clean_name(name: str, default: str) -> str:
    name = name.strip() or default
    if len(name) > MAX_NAME:
        raise InvalidInput(f"a group's name has at most {MAX_NAME} characters")
    return name


class Breakouts:
    """One room's breakout session (see the module's docstring)."""

    def __init__(self, names: Sequence[str], *, max_groups: int, now: float, session_id: str = "BS_1",
                 cap: int | None = None, assignment: Assignment = Assignment.MANUAL) -> None:
        if not MIN_GROUPS <= len(names) <= max_groups:
            raise InvalidInput(f"between {MIN_GROUPS} and {max_groups} groups (asked for {len(names)})")
        if cap is not None and cap < 1:
            raise InvalidInput("a group's cap is at least 1")
        self.session_id = session_id
        self.created_at = now
        self.assignment = assignment
        self.cap = cap  # self-select: at most this many students per group
        self.groups: dict[str, Group] = {}
        for i, name in enumerate(names, 1):
            gid = f"{session_id}_G{i}"
            self.groups[gid] = Group(gid, clean_name(name, f"Группа {i}"))
        self.state = BreakoutState.PREPARED
        self.opened_at: float | None = None
        self.ends_at: float | None = None  # the timer (None: no timer)
        self.closing_at: float | None = None  # the countdown's end (state CLOSING)
        self.closed_at: float | None = None
        self.auto_close = True  # the timer's end starts the close countdown
        self.where: dict[str, str] = {}  # student participant id -> group id
        self.visits: dict[str, Visit] = {}  # moderator participant id -> where they are
        self.speakers: set[str] = set()  # moderators speaking to all groups (while held)
        self.help: list[HelpRequest] = []  # oldest first
        self.broadcasts: list[Broadcast] = []
        self.chat: dict[str, list[GroupMessage]] = {gid: [] for gid in self.groups}
        self.stints: list[Stint] = []
        self._open_stint: dict[str, Stint] = {}
        self._messages = 0

    # --- reading -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Open or closing: students are in their groups."""
        return self.state in (BreakoutState.OPEN, BreakoutState.CLOSING)

    def group(self, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            raise GroupNotFound(f"no breakout group {group_id[:80]!r}")
        return g

    def group_of(self, participant_id: str) -> str | None:
        """The group whose media and news this participant gets now (None: the main room).  Before
        the groups open and after they close, everyone is in the main room.  The whiteboard keys
        its boards by this (room_id, group_id | None)."""
        if not self.running:
            return None
        visit = self.visits.get(participant_id)
        if visit is not None:
            return visit.group_id
        return self.where.get(participant_id)

    def assigned(self, participant_id: str) -> str | None:
        """The group a student is assigned to (also while prepared)."""
        return self.where.get(participant_id)

    def hears(self, listener: str, speaker: str, *, audio: bool) -> bool:
        """Whether ``listener`` may receive ``speaker``'s track: the same place (a group or the main
        room), except a listen-only visitor, who is not sent to the group; a moderator speaking to
        all is heard everywhere (audio only)."""
        if not self.running:
            return True
        if audio and speaker in self.speakers:
            return True
        visit = self.visits.get(speaker)
        if visit is not None and visit.listen_only:
            return False  # listening only: the group does not get them
        return self.group_of(listener) == self.group_of(speaker)

    def remaining_s(self, now: float) -> float | None:
        if self.state is BreakoutState.CLOSING and self.closing_at is not None:
            return max(0.0, self.closing_at - now)
        if self.ends_at is None:
            return None
        return max(0.0, self.ends_at - now)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "state": self.state.value, "assign": self.assignment.value,
            "cap": self.cap, "rooms": [g.to_json() for g in self.groups.values()],
            "opened_at": self.opened_at, "ends_at": self.ends_at, "closing_at": self.closing_at,
            "remaining_s": self.remaining_s(now), "server_time": now,
            "visits": {pid: {"breakout_id": v.group_id, "listen_only": v.listen_only}
                       for pid, v in self.visits.items()},
            "speaking_to_all": sorted(self.speakers),
            "help": [h.to_json() for h in self.help],
            "broadcasts": [{"text": b.text, "sent_at": b.sent_at, "by": b.by} for b in self.broadcasts[-5:]],
        }

    # --- preparing ---------------------------------------------------------------------------
    def assign(self, group_id: str, participant_ids: Iterable[str], now: float) -> list[str]:
        """Put students in a group (moving them out of another one).  Returns who changed groups."""
        g = self.group(group_id)
        if not g.open:
            raise InvalidState(f"the group {g.name!r} is closed")
        moved = []
        for pid in participant_ids:
            if self.where.get(pid) == group_id:
                continue
            self._leave(pid, now)
            self.where[pid] = group_id
            g.members.append(pid)
            if self.running:
                self._stint(pid, group_id, now)
            moved.append(pid)
        return moved

    def split(self, participant_ids: Sequence[str], now: float, *, seed: int | None = None) -> None:
        """An even split of these students over the open groups (``seed``: shuffled first)."""
        order = list(participant_ids)
        if seed is not None:
            random.Random(seed).shuffle(order)
        targets = [g for g in self.groups.values() if g.open]
        for g, pids in zip(targets, even_split(order, len(targets)), strict=True):
            self.assign(g.group_id, pids, now)

    def unassign(self, participant_id: str, now: float) -> str | None:
        """Back to the main room (left, removed, or moved there by a host).  Returns the old group."""
        old = self.where.get(participant_id)
        self._leave(participant_id, now)
        self.help = [h for h in self.help if h.participant_id != participant_id]
        return old

    def _leave(self, pid: str, now: float) -> None:
        old = self.where.pop(pid, None)
        if old is not None:
            members = self.groups[old].members
            if pid in members:
                members.remove(pid)
        stint = self._open_stint.pop(pid, None)
        if stint is not None:
            stint.left_at = now

    def _stint(self, pid: str, group_id: str, now: float, *, visitor: bool = False) -> None:
        stint = Stint(pid, group_id, now, visitor=visitor)
        self.stints.append(stint)
        self._open_stint[pid] = stint

    # --- open --------------------------------------------------------------------------------
    def open(self, now: float, *, duration_s: float | None = None) -> None:
        if self.state is not BreakoutState.PREPARED:
            raise InvalidState("the breakout groups are open already")
        self.state = BreakoutState.OPEN
        self.opened_at = now
        if duration_s is not None:
            if not 0 < duration_s <= MAX_DURATION_S:
                raise InvalidInput(f"duration_s: between 1 and {MAX_DURATION_S}")
            self.ends_at = now + duration_s
        for pid, gid in self.where.items():
            self._stint(pid, gid, now)

    def _require_running(self) -> None:
        if not self.running:
            raise InvalidState("the breakout groups are not open")

    def extend(self, seconds: float, now: float) -> float:
        """The timer runs ``seconds`` longer (from now if it had none or was over).  A close
        countdown under way is called off: the groups go on."""
        self._require_running()
        if not 0 < seconds <= MAX_EXTEND_S:
            raise InvalidInput(f"seconds: between 1 and {MAX_EXTEND_S}")
        base = self.ends_at if self.ends_at is not None and self.ends_at > now else now
        self.ends_at = base + seconds
        self.state, self.closing_at = BreakoutState.OPEN, None
        return self.ends_at

    def move(self, participant_id: str, group_id: str | None, now: float) -> str | None:
        """A host moves a student (``group_id`` None: to the main room).  Returns the old group."""
        old = self.where.get(participant_id)
        if group_id is None:
            self.unassign(participant_id, now)
        else:
            self.assign(group_id, [participant_id], now)
        return old

    def choose(self, participant_id: str, group_id: str, now: float) -> str | None:
        """Self-select: a student picks a group (within the cap).  Returns the old group."""
        if self.assignment is not Assignment.SELF:
            raise InvalidState("the host assigns the groups: choosing is not allowed")
        g = self.group(group_id)
        if self.where.get(participant_id) == group_id:
            return group_id
        if self.cap is not None and len(g.members) >= self.cap:
            raise InvalidState(f"the group {g.name!r} is full ({self.cap})")
        old = self.where.get(participant_id)
        self.assign(group_id, [participant_id], now)
        return old

    def ask_help(self, participant_id: str, now: float) -> HelpRequest:
        """A student asks for help from their group: queued once (asking again keeps the place)."""
        self._require_running()
        gid = self.where.get(participant_id)
        if gid is None:
            raise InvalidState("you are in no breakout group")
        for h in self.help:
            if h.participant_id == participant_id:
                return h
        h = HelpRequest(participant_id, gid, now)
        self.help.append(h)
        return h

    def help_done(self, participant_id: str) -> bool:
        before = len(self.help)
        self.help = [h for h in self.help if h.participant_id != participant_id]
        return len(self.help) != before

    def visit(self, moderator_id: str, group_id: str | None, now: float, *, listen_only: bool = False) -> str | None:
        """A host or co-host goes into a group (``None``: back to the main room).  Visiting a group
        answers its help requests.  Returns the group they were in."""
        self._require_running()
        old = self.visits.pop(moderator_id, None)
        stint = self._open_stint.pop(moderator_id, None)
        if stint is not None:
            stint.left_at = now
        if group_id is not None:
            g = self.group(group_id)
            if not g.open:
                raise InvalidState(f"the group {g.name!r} is closed")
            self.visits[moderator_id] = Visit(group_id, listen_only)
            self._stint(moderator_id, group_id, now, visitor=True)
            self.help = [h for h in self.help if h.group_id != group_id]
        return None if old is None else old.group_id

    def speak_to_all(self, moderator_id: str, on: bool) -> bool:
        """While held, the moderator's microphone reaches every group.  Returns whether it changed."""
        self._require_running()
        if on == (moderator_id in self.speakers):
            return False
        if on:
            self.speakers.add(moderator_id)
        else:
            self.speakers.discard(moderator_id)
        return True

    def broadcast(self, by: str, text: str, now: float) -> Broadcast:
        self._require_running()
        text = text.strip()
        if not text:
            raise InvalidInput("a message to the groups needs some text")
        if len(text) > MAX_BROADCAST:
            raise InvalidInput(f"a message to the groups has at most {MAX_BROADCAST} characters")
        b = Broadcast(text, now, by)
        self.broadcasts = [*self.broadcasts[-(KEEP_BROADCASTS - 1):], b]
        return b

    def chat_send(self, participant_id: str, name: str, text: str, now: float) -> GroupMessage:
        """A message to the sender's group (the room's chat rules are checked by the caller)."""
        gid = self.group_of(participant_id)
        if gid is None:
            raise InvalidState("you are in no breakout group")
        self._messages += 1
        msg = GroupMessage(f"{self.session_id}_M{self._messages}", gid, participant_id, name, text, now)
        log = self.chat[gid]
        log.append(msg)
        del log[:-KEEP_GROUP_CHAT]
        return msg

    # --- closing -----------------------------------------------------------------------------
    def begin_close(self, now: float, countdown_s: float) -> float:
        """Everyone returns after ``countdown_s`` (0: at once).  Returns when."""
        self._require_running()
        if not 0 <= countdown_s <= MAX_COUNTDOWN_S:
            raise InvalidInput(f"countdown_s: between 0 and {MAX_COUNTDOWN_S}")
        if self.state is BreakoutState.CLOSING and self.closing_at is not None:
            self.closing_at = min(self.closing_at, now + countdown_s)  # a second end only hurries it
        else:
            self.state, self.closing_at = BreakoutState.CLOSING, now + countdown_s
        return self.closing_at

    def close_group(self, group_id: str, now: float) -> list[str]:
        """One group closes alone: its students and visitors return.  Returns who returns."""
        self._require_running()
        g = self.group(group_id)
        if not g.open:
            raise InvalidState(f"the group {g.name!r} is closed already")
        back = list(g.members)
        for pid in back:
            self.unassign(pid, now)
        for pid, v in list(self.visits.items()):
            if v.group_id == group_id:
                self.visit(pid, None, now)
                back.append(pid)
        g.closed_at = now
        return back

    def due(self, now: float) -> str | None:
        """What the clock makes happen now: "close" (the timer ran out: the countdown starts) or
        "finish" (the countdown is over), or None."""
        if self.state is BreakoutState.CLOSING and self.closing_at is not None and now >= self.closing_at:
            return "finish"
        if self.state is BreakoutState.OPEN and self.auto_close and self.ends_at is not None and now >= self.ends_at:
            return "close"
        return None

    def next_due_at(self) -> float | None:
        if self.state is BreakoutState.CLOSING:
            return self.closing_at
        if self.state is BreakoutState.OPEN and self.auto_close:
            return self.ends_at
        return None

    def finish(self, now: float) -> list[str]:
        """Everyone back in the main room.  Returns who was in a group (students and visitors)."""
        if self.state is BreakoutState.CLOSED:
            return []
        back = sorted(set(self.where) | set(self.visits)) if self.running else []
        for stint in self._open_stint.values():
            stint.left_at = now
        self._open_stint.clear()
        self.visits.clear()
        self.speakers.clear()
        self.help.clear()
        self.state, self.closed_at, self.closing_at = BreakoutState.CLOSED, now, None
        for g in self.groups.values():
            if g.closed_at is None:
                g.closed_at = now
        return back

    def attendance(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.stints]

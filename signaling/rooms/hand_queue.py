"""Raised hands as an ordered queue (first raised, first asked), and their history: every hand raised
in the lesson, when it went down, and whether a host took it (part of the lesson's record, issue 11)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

KEEP_HANDS = 1000  # history records kept in memory (the store keeps every one until retention)


@dataclass(frozen=True, slots=True)
class RaisedHand:
    participant_id: str
    raised_at: float
    position: int  # 1 = first in the queue


class LowerReason(StrEnum):
    LOWERED = "lowered"  # by its owner
    ANSWERED = "answered"  # a host or co-host lowered this hand: the question was taken
    CLEARED = "cleared"  # a host or co-host lowered every hand at once
    LEFT = "left"  # its owner left the room (or the room ended)


@dataclass(slots=True)
class HandRecord:
    """One raise of a hand, from raised to lowered (``reason`` None: still up)."""

    seq: int  # order of raising in the room (the durable key)
    participant_id: str
    raised_at: float
    lowered_at: float | None = None
    lowered_by: str | None = None  # participant id of whoever lowered it (None: by leaving)
    reason: LowerReason | None = None

    @property
    def raised(self) -> bool:
        return self.reason is None

    @property
    def answered(self) -> bool:
        return self.reason is LowerReason.ANSWERED

    def to_json(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "raised_at": self.raised_at, "lowered_at": self.lowered_at,
                "lowered_by": self.lowered_by, "reason": None if self.reason is None else self.reason.value,
                "answered": self.answered}


@dataclass(slots=True)
class HandQueue:
    _raised: dict[str, HandRecord] = field(default_factory=dict)  # insertion order = queue order
    _history: dict[int, HandRecord] = field(default_factory=dict)  # seq -> record, oldest first
    _next_seq: int = 0
    keep: int = KEEP_HANDS

    def __len__(self) -> int:
        return len(self._raised)

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._raised

    def raise_hand(self, participant_id: str, now: float) -> tuple[RaisedHand, bool]:
        """Raise (idempotent: a raised hand keeps its place).  Returns the hand and whether it is new."""
        new = participant_id not in self._raised
        if new:
            record = HandRecord(self._next_seq, participant_id, now)
            self._next_seq += 1
            self._raised[participant_id] = record
            self._history[record.seq] = record
            if len(self._history) > self.keep:
                self._trim()
        return self.get(participant_id), new

    def _trim(self) -> None:
        """Drop the oldest lowered records beyond ``keep`` (a hand still up stays: the queue has it)."""
        excess = len(self._history) - self.keep
        for seq in [s for s, r in self._history.items() if not r.raised][:excess]:
            del self._history[seq]

    def get(self, participant_id: str) -> RaisedHand:
        for i, (pid, r) in enumerate(self._raised.items(), start=1):
            if pid == participant_id:
                return RaisedHand(pid, r.raised_at, i)
        raise KeyError(participant_id)

    def lower(self, participant_id: str, now: float | None = None, *, by: str | None = None,
              reason: LowerReason = LowerReason.LOWERED) -> bool:
        """True if the hand was raised.  ``now`` None: the time is not known (lowered_at stays None)."""
        record = self._raised.pop(participant_id, None)
        if record is None:
            return False
        record.lowered_at, record.lowered_by, record.reason = now, by, reason
        return True

    def lower_all(self, now: float | None = None, *, by: str | None = None) -> list[str]:
        lowered = list(self._raised)
        for pid in lowered:
            self.lower(pid, now, by=by, reason=LowerReason.CLEARED)
        return lowered

    def queue(self) -> list[RaisedHand]:
        return [RaisedHand(pid, r.raised_at, i) for i, (pid, r) in enumerate(self._raised.items(), start=1)]

    # --- the lesson's record -----------------------------------------------------------------
    def history(self) -> list[HandRecord]:
        """The hands raised in this room (the last ``keep``), in the order they were raised."""
        return list(self._history.values())

    def restore(self, records: Iterable[HandRecord]) -> None:
        """The store's rebuild: records as written, in any order; those still up join the queue again
        in the order they were raised."""
        for r in sorted(records, key=lambda r: r.seq):
            self._history[r.seq] = r
            self._next_seq = max(self._next_seq, r.seq + 1)
            if r.raised:
                self._raised[r.participant_id] = r

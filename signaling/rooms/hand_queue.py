"""Raised hands as an ordered queue: first raised, first asked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RaisedHand:
    participant_id: str
    raised_at: float
    position: int  # 1 = first in the queue


@dataclass(slots=True)
class HandQueue:
    _raised: dict[str, float] = field(default_factory=dict)  # insertion order = queue order

    def __len__(self) -> int:
        return len(self._raised)

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._raised

    def raise_hand(self, participant_id: str, now: float) -> tuple[RaisedHand, bool]:
        """Raise (idempotent: a raised hand keeps its place).  Returns the hand and whether it is new."""
        new = participant_id not in self._raised
        if new:
            self._raised[participant_id] = now
        return self.get(participant_id), new

    def get(self, participant_id: str) -> RaisedHand:
        for i, (pid, at) in enumerate(self._raised.items(), start=1):
            if pid == participant_id:
                return RaisedHand(pid, at, i)
        raise KeyError(participant_id)

    def lower(self, participant_id: str) -> bool:
        """True if the hand was raised."""
        return self._raised.pop(participant_id, None) is not None

    def lower_all(self) -> list[str]:
        lowered = list(self._raised)
        self._raised.clear()
        return lowered

    def queue(self) -> list[RaisedHand]:
        return [RaisedHand(pid, at, i) for i, (pid, at) in enumerate(self._raised.items(), start=1)]

"""Per-participant token buckets for actions that reach everybody (chat, reactions).

Plain Python: the time is passed in.  The WebSocket session has its own bucket for all frames; these
are finer and belong to the room rules (a reaction a second, a chat message burst)."""

from __future__ import annotations

from dataclasses import dataclass, field

from signaling.rooms.errors import RateLimitExceeded


@dataclass(frozen=True, slots=True)
class RateRule:
    rate_per_s: float
    burst: int


REACTION_RATE = RateRule(rate_per_s=1.0, burst=3)
CHAT_RATE = RateRule(rate_per_s=1.0, burst=5)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float


@dataclass(slots=True)
class RateLimits:
    """Buckets by (participant id, kind)."""

    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def take(self, participant_id: str, kind: str, rule: RateRule, now: float) -> None:
        """Spend one token or raise RateLimitExceeded (nothing is done then)."""
        key = (participant_id, kind)
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(tokens=float(rule.burst), last=now)
        b.tokens = min(float(rule.burst), b.tokens + max(0.0, now - b.last) * rule.rate_per_s)
        b.last = now
        if b.tokens < 1.0:
            raise RateLimitExceeded(f"too many {kind} messages; wait a moment")
        b.tokens -= 1.0

    def forget(self, participant_id: str) -> None:
        for key in [k for k in self._buckets if k[0] == participant_id]:
            del self._buckets[key]

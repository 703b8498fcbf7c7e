"""Deliveries yield to a burst of room events.

Events come in bursts: 2000 students joining a webinar in a few seconds, an admit-all, the end of a
big room.  Each event is one delivery per webhook, and a delivery costs the event loop about 0.4 ms
(the HTTP request, the signature, its row), so ten webhooks delivering while 2000 people join took
most of the loop from the joins (683 joins/s without webhooks, 201 with ten; issue 18's benchmark).
The room is what people wait for; the journal can hear of it seconds later.  So while deliveries
are being made faster than ``threshold_per_s`` (over the last ``window_s``), a queue defers its
next attempt until the burst is over, at most ``max_defer_s`` at a time (every queue still moves at
least that often under a storm that does not end).  Plain Python, time passed in.
"""

from __future__ import annotations

from collections import deque


class BurstGate:
    def __init__(self, *, threshold_per_s: float = 200.0, window_s: float = 0.5, max_defer_s: float = 5.0) -> None:
        self.threshold_per_s = threshold_per_s
        self.window_s = window_s
        self.max_defer_s = max_defer_s
        self._made: deque[tuple[float, int]] = deque()  # (when, how many deliveries were made)
        self._count = 0
        self.deferrals = 0  # attempts that waited for a burst to pass

    def note(self, now: float, deliveries: int) -> None:
        """Deliveries were made (one event, its matching webhooks)."""
        self._made.append((now, deliveries))
        self._count += deliveries
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._made and self._made[0][0] <= now - self.window_s:
            self._count -= self._made.popleft()[1]

    def busy(self, now: float) -> bool:
        self._trim(now)
        return self._count > self.threshold_per_s * self.window_s

    def wait_s(self, now: float, deferred_since: float | None) -> float:
        """How long an attempt due now should still wait: 0 to go (no burst, or deferred long enough)."""
        if not self.busy(now):
            return 0.0
        if deferred_since is not None and now - deferred_since >= self.max_defer_s:
            return 0.0
        step = self.window_s / 5
        return step if deferred_since is None else min(step, deferred_since + self.max_defer_s - now)

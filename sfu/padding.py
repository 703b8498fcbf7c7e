"""The pacing of a padding cluster towards one subscriber (bandwidth probes, issue 12).

The subscriber's downlink estimate (``sfu.downlink_estimator``) decides when a cluster runs and at
what rate (:meth:`SubscriberCongestion.padding_rate`); this object sends it: every
:data:`PACE_INTERVAL` the padding-only RTX packets due since the last round (at most
:data:`MAX_BURST` at once, so a cluster never leaves as one burst that a shallow queue would drop),
through one video consumer that negotiated RTX (``Consumer.send_padding``). The timer runs only
while a cluster does (``call_later``), and stops as soon as the rate is 0: the cluster is over,
or the estimator saw congestion. As LiveKit and libwebrtc, padding goes on the RTX SSRC (a
receiver drops it after counting it); mediasoup's probation stream is the same idea on an SSRC of
its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from .rtx import PADDING_SIZE

PACE_INTERVAL = 0.01  # s between two rounds of a cluster
MAX_BURST = 16  # packets per round (16 x 267 bytes in 10 ms: up to ~3.4 Mbit/s of padding)
PACKET_BYTES = 12 + PADDING_SIZE


class PaddingSender(Protocol):
    @property
    def closed(self) -> bool: ...

    def send_padding(self, count: int) -> int: ...


class PaddingPacer:
    """Runs the clusters of one transport; ``rate(now)`` is the padding bit rate wanted now."""

    __slots__ = ("_carry", "_last", "_rate", "_sender", "_timer")

    def __init__(self, rate: Callable[[float], float]) -> None:
        self._rate = rate
        self._sender: PaddingSender | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._carry = 0.0  # bytes due but not yet sent (less than one packet, or over a burst)

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self, sender: PaddingSender, now: float) -> None:
        """A cluster begins: pace it through ``sender`` from ``now`` on."""
        self._sender = sender
        self._last = now
        self._carry = 0.0
        if self._timer is None:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._sender = None

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (offline tests drive run() themselves)
            return
        self._timer = loop.call_later(PACE_INTERVAL, self._run)

    def _run(self) -> None:
        self._timer = None
        if self.run(time.monotonic()):
            self._schedule()

    def run(self, now: float) -> bool:
        """One round: send what is due at ``now``; False when the cluster is over."""
        sender = self._sender
        rate = self._rate(now)
        if sender is None or sender.closed or rate <= 0:
            self._sender = None
            return False
        due = self._carry + rate * max(0.0, now - self._last) / 8
        self._last = now
        count = min(MAX_BURST, int(due // PACKET_BYTES))
        sent = sender.send_padding(count) if count else 0
        if count and not sent:
            self._sender = None  # the consumer cannot pad (paused, path gone): end the cluster
            return False
        self._carry = min(due - sent, PACKET_BYTES * MAX_BURST)
        return True


__all__ = ["MAX_BURST", "PACE_INTERVAL", "PaddingPacer", "PaddingSender"]

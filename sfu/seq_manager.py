"""A consumer's sequence number and timestamp rewriting (its one outgoing SSRC).

A subscriber sees one RTP stream per consumer, whatever happens upstream: pauses, a publisher that
restarts its numbering, simulcast switches between layers that each have their own sequence
numbers, timestamps and clocks' origins. :class:`SeqManager` keeps the two offsets that map the
incoming stream onto the outgoing one and re-derives them at each such event, so that the output
never jumps back, never leaves a gap in sequence numbers, and advances its timestamps by the time
that passed (mediasoup's ``SeqManager`` and the timestamp handling of its ``SimulcastConsumer``,
LiveKit's ``RTPMunger``; the code is this project's own):

- the first packet gets a random base (RFC 3550 5.1: sequence numbers and timestamps start at
  random values);
- after :meth:`SeqManager.resync` (a pause, a restart of the publisher's numbering), the next
  packet continues from the last one sent: sequence number + 1, timestamp + the wall-clock time
  since that packet (at least one tick);
- at a simulcast switch (:meth:`SeqManager.switch`), sequence numbers continue the same way and
  the new layer's timestamps are placed on the old layer's timeline through both layers' sender
  reports when there are some (capture time against capture time), else by the wall-clock time;
  always strictly after the last timestamp sent.

Pure state: the caller passes the time in (``now``, seconds, monotonic) and, for tests, the random
source. The compiled fan-out (``sfu.fast_path``) takes ``seq_offset`` / ``ts_offset`` into its slot
and hands the last sent state back with :meth:`SeqManager.restore`.
"""

from __future__ import annotations

import random

MAX_SWITCH_TS_JUMP = 90000 * 5  # an SR-derived timestamp further ahead than this is not trusted


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` is after ``b`` (RFC 1982 serial arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class SeqManager:
    """Offsets from one incoming stream (or the layer forwarded now) to one outgoing SSRC.

    ``out_seq = (seq + seq_offset) & 0xFFFF``, ``out_ts = (ts + ts_offset) & 0xFFFFFFFF``; the
    offsets hold for incoming sequence numbers from ``start`` on. ``last_seq`` / ``last_ts`` /
    ``last_time``: the newest packet sent (None before the first one)."""

    __slots__ = (
        "_rng",
        "clock_rate",
        "last_seq",
        "last_time",
        "last_ts",
        "resync_pending",
        "seq_offset",
        "start",
        "ts_offset",
    )

    def __init__(self, clock_rate: int, rng: random.Random | None = None) -> None:
        self.clock_rate = clock_rate
        self._rng = rng or random.Random()
        self.seq_offset = 0
        self.ts_offset = 0
        self.start: int | None = None  # incoming sequence number from which the offsets hold
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_time = 0.0
        self.resync_pending = True  # the next packet derives the offsets (sync)

    def resync(self) -> None:
        """The next packet re-derives the offsets (after a pause or a restart of the numbering)."""
        self.resync_pending = True

    def _ticks_since(self, now: float) -> int:
        return max(1, int((now - self.last_time) * self.clock_rate))

    def sync(self, seq: int, ts: int, now: float) -> None:
        """Derive the offsets at incoming packet (``seq``, ``ts``): a random base for the first
        packet, else the continuation of the last one sent (see the module docstring)."""
        if self.last_seq is None:
            self.seq_offset = (self._rng.getrandbits(15) - seq) & 0xFFFF
            self.ts_offset = (self._rng.getrandbits(31) - ts) & 0xFFFFFFFF
        else:
            self.seq_offset = (self.last_seq + 1 - seq) & 0xFFFF
            self.ts_offset = (self.last_ts + self._ticks_since(now) - ts) & 0xFFFFFFFF
        self.start = seq
        self.resync_pending = False

    def switch(
        self,
        seq: int,
        ts: int,
        now: float,
        old_sr: tuple[int, int] | None = None,
        new_sr: tuple[int, int] | None = None,
    ) -> None:
        """A simulcast switch at the new layer's packet (``seq``, ``ts``); ``old_sr`` / ``new_sr``:
        the last sender reports ``(ntp, rtp)`` of the layer left and of the new one. Without a
        packet sent before (or with a resync pending) this is :meth:`sync`."""
        last_seq = self.last_seq
        if last_seq is None or self.resync_pending:
            self.sync(seq, ts, now)
            return
        new_ts = (self.last_ts + self._ticks_since(now)) & 0xFFFFFFFF
        if old_sr is not None and new_sr is not None:
            # the new layer's capture time on the old layer's RTP clock, then through the offset
            delta_ntp = ((new_sr[0] - old_sr[0]) * self.clock_rate) >> 32
            since = (ts - new_sr[1]) & 0xFFFFFFFF
            if since >= 0x80000000:
                since -= 0x100000000
            candidate = (old_sr[1] + delta_ntp + since + self.ts_offset) & 0xFFFFFFFF
            if 0 < ((candidate - self.last_ts) & 0xFFFFFFFF) < MAX_SWITCH_TS_JUMP:
                new_ts = candidate
        self.seq_offset = (last_seq + 1 - seq) & 0xFFFF
        self.ts_offset = (new_ts - ts) & 0xFFFFFFFF
        self.start = seq
        self.resync_pending = False

    def sent(self, out_seq: int, out_ts: int, now: float) -> None:
        """A rewritten packet went out: remember it when it is the newest."""
        last = self.last_seq
        if last is None or seq_newer(out_seq, last):
            self.last_seq = out_seq
            self.last_ts = out_ts
            self.last_time = now

    def restore(self, last_seq: int, last_ts: int, last_time: float) -> None:
        """The last sent state from elsewhere (the compiled fan-out's slot); ``last_seq`` < 0: none."""
        if last_seq >= 0:
            self.last_seq = last_seq
            self.last_ts = last_ts
            self.last_time = last_time

    def incoming(self, out_seq: int) -> int | None:
        """The incoming sequence number that ``out_seq`` was made from, or None when it precedes
        the current offsets (sent before a resync or a switch: its source is another mapping)."""
        start = self.start
        if start is None:
            return None
        seq = (out_seq - self.seq_offset) & 0xFFFF
        return None if seq_newer(start, seq) else seq

    def rewrite(self, seq: int, ts: int) -> tuple[int, int]:
        """The outgoing (sequence number, timestamp) of an incoming one (the hot path inlines it)."""
        return (seq + self.seq_offset) & 0xFFFF, (ts + self.ts_offset) & 0xFFFFFFFF

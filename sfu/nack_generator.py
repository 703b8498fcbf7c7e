"""Which packets of one incoming stream to ask the publisher for again (RFC 4585 generic NACK).

One :class:`NackGenerator` per received RTP stream (one SSRC: a producer, or one simulcast layer).
The receive path feeds it every packet's 16-bit sequence number (:meth:`NackGenerator.on_packet`);
a gap puts the numbers it skipped on the *missing list*, and a periodic :meth:`NackGenerator.tick`
returns the numbers to put in a NACK now:

- a missing number is first asked for ``reorder_delay`` after its gap was seen (a packet merely
  reordered on the way usually arrives within a few milliseconds, and should cost no NACK), then
  again each round-trip time while it is still missing, at most ``max_retries`` times; it is
  *given up* after ``max_age`` seconds (a video frame that late is useless to a jitter buffer);
- a packet that arrives late (a retransmission, or just reordered) leaves the list;
- a jump of more than ``max_jump`` numbers, or a list that would hold more than ``max_packets``
  numbers even after dropping those older than the newest keyframe, clears the list and asks for a
  keyframe instead (:meth:`on_packet` returns True): repairing that much would flood the publisher
  for packets the decoder no longer needs;
- the list is bounded by ``max_packets`` whatever arrives (100% loss adds nothing: gaps are only
  seen from packets that arrive, and every jump beyond the bounds clears it);
- what it asks for is bounded by what arrives: at most ``nack_ratio`` numbers per packet received
  (a token bucket of ``nack_burst``). Random loss on a good link (5%) stays well inside it; a
  congested uplink (an 800 kbit/s link under 1.1 Mbit/s of media loses a quarter of the packets)
  would otherwise be asked for every loss and every lost retransmission again: with aiortc as the
  publisher that sent 9.2 Mbit/s of retransmissions for 1.08 Mbit/s of media and decoded nothing
  (benchmarks/network.py, scenario uplink). Numbers not asked for in time are given up by age.

The round-trip time used for retries is the caller's (``tick(now, rtt)``), else the generator's own
estimate: the time from a NACK to the arrival of a packet asked for exactly once (Karn's rule: a
packet asked twice says nothing about which request it answers), smoothed like TCP's SRTT, else
:data:`DEFAULT_RTT`. A real publisher answers from its own send history at once, so that time is
the network's round trip.

Per packet the work is a few integer operations: an in-order packet (the common case) allocates
nothing but the new highest number. Everything about losses happens on the rare paths and in
:meth:`tick`. The design follows mediasoup's ``NackGenerator`` (a missing list with retries per
RTT, a maximum age, a keyframe request when too much is lost) and LiveKit's NACK queue; the code
is this project's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_RTT = 0.1  # s, until the caller or a measured retransmission gives one (mediasoup's default)
MIN_RTT = 0.02  # the retry interval is the RTT clamped to [MIN_RTT, MAX_RTT]
MAX_RTT = 1.0
REORDER_DELAY = 0.01  # s before a missing number is first asked for
MAX_RETRIES = 10  # times one number is asked for
MAX_AGE = 1.0  # s after its gap was seen, a missing number is given up
MAX_PACKETS = 1000  # numbers on the missing list at most (mediasoup's MaxNackPackets)
MAX_JUMP = 1000  # a gap larger than this asks for a keyframe instead of NACKs
MAX_PER_TICK = 256  # numbers returned by one tick (64 FCI entries at least: one small RTCP packet)
NACK_RATIO = 0.15  # numbers asked for per packet received, at most (retries included)
NACK_BURST = 64.0  # ... and at once


@dataclass(slots=True)
class NackStats:
    """What one generator did (all counts of sequence numbers, except ``keyframe_requests``)."""

    missing: int = 0  # numbers put on the missing list (gaps seen)
    asked: int = 0  # numbers put in NACKs, retries included
    recovered: int = 0  # asked-for numbers that arrived afterwards
    reordered: int = 0  # missing numbers that arrived before they were asked for
    given_up: int = 0  # numbers dropped from the list unrecovered (age, retries, keyframe, overflow)
    keyframe_requests: int = 0  # times on_packet returned True
    throttled: int = 0  # ticks that asked for fewer numbers than were due (the nack_ratio budget)


class _Entry:
    """One missing number: when its gap was seen, when it was last asked for, how often."""

    __slots__ = ("asked_at", "retries", "seen_at")

    def __init__(self, seen_at: float) -> None:
        self.seen_at = seen_at
        self.asked_at = -1.0
        self.retries = 0


class NackGenerator:
    """The missing list of one incoming stream (see the module docstring). Not thread-safe; the
    caller's clock (``now``, seconds, monotonic) everywhere, so tests pass time in."""

    __slots__ = (
        "_budget",
        "_burst",
        "_highest",
        "_keyframe",
        "_max_age",
        "_max_jump",
        "_max_packets",
        "_max_per_tick",
        "_max_retries",
        "_missing",
        "_ratio",
        "_reorder_delay",
        "_tick_highest",
        "_tick_missing",
        "on_loss",
        "rtt",
        "stats",
    )

    def __init__(
        self,
        *,
        max_retries: int = MAX_RETRIES,
        max_age: float = MAX_AGE,
        max_packets: int = MAX_PACKETS,
        max_jump: int = MAX_JUMP,
        reorder_delay: float = REORDER_DELAY,
        max_per_tick: int = MAX_PER_TICK,
        nack_ratio: float = NACK_RATIO,
        nack_burst: float = NACK_BURST,
    ) -> None:
        if max_packets < 1 or max_jump < 1 or max_retries < 1 or max_per_tick < 1:
            raise ValueError("max_packets, max_jump, max_retries and max_per_tick must be positive")
        if max_jump >= 0x8000:
            raise ValueError("max_jump must be below 32768 (half the sequence number space)")
        self._max_retries = max_retries
        self._max_age = max_age
        self._max_packets = max_packets
        self._max_jump = max_jump
        self._reorder_delay = reorder_delay
        self._max_per_tick = max_per_tick
        if nack_ratio <= 0 or nack_burst < 1:
            raise ValueError("nack_ratio must be positive and nack_burst at least 1")
        self._ratio = nack_ratio
        self._burst = nack_burst
        self._budget = nack_burst
        # where the highest number and the missing count stood at the last tick: the packets that
        # arrived since are the difference, so the receive path pays nothing for the budget
        self._tick_highest = -1
        self._tick_missing = 0
        self._highest = -1  # extended (cycles << 16 | seq) highest number seen; -1 before the first
        self._keyframe = -1  # extended number of the newest keyframe's first packet; -1: none seen
        # extended number -> entry; insertion order is ascending number order (gaps are added as
        # the highest number grows), so the oldest entries come first
        self._missing: dict[int, _Entry] = {}
        self.rtt: float | None = None  # smoothed estimate from retransmissions (s); None: none yet
        self.stats = NackStats()
        # called (synchronously, from on_packet) when a gap put numbers on the list: the owner can
        # start its periodic tick then instead of ticking while nothing is missing
        self.on_loss: Callable[[], None] | None = None

    # ---- the receive path ----------------------------------------------------------------------
    def on_packet(self, seq: int, is_keyframe: bool, now: float) -> bool:
        """One received packet's 16-bit sequence number (``is_keyframe``: it starts a keyframe).

        Returns True when the stream lost more than can be repaired and the caller should ask the
        publisher for a keyframe (the missing list was cleared)."""
        highest = self._highest
        delta = (seq - highest) & 0xFFFF
        if delta == 1 and highest >= 0:  # in order: the common case
            self._highest = highest + 1
            if is_keyframe:
                self._keyframe = highest + 1
            return False
        if highest < 0:
            self._highest = seq
            if is_keyframe:
                self._keyframe = seq
            return False
        if delta == 0:
            return False  # a duplicate of the highest
        if delta < 0x8000:  # ahead, with a gap of delta - 1 numbers
            return self._gap(highest, highest + delta, is_keyframe, now)
        self._late(highest - (0x10000 - delta), now)
        return False

    def _gap(self, highest: int, new: int, is_keyframe: bool, now: float) -> bool:
        self._highest = new
        if is_keyframe:
            self._keyframe = new
        lost = new - highest - 1
        if lost > self._max_jump:
            self._give_up_all()
            return self._ask_keyframe()
        missing = self._missing
        if len(missing) + lost > self._max_packets:
            # what precedes the newest keyframe is not needed to decode from it on
            self._drop_before(self._keyframe)
            if len(missing) + lost > self._max_packets:
                self._give_up_all()
                return self._ask_keyframe()
        for ext in range(highest + 1, new):
            missing[ext] = _Entry(now)
        self.stats.missing += lost
        callback = self.on_loss
        if callback is not None:
            callback()
        return False

    def _late(self, ext: int, now: float) -> None:
        entry = self._missing.pop(ext, None)
        if entry is None:
            return  # a duplicate, or a number already given up
        stats = self.stats
        if entry.retries:
            stats.recovered += 1
            if entry.retries == 1:  # unambiguous: an RTT sample (Karn's rule)
                sample = now - entry.asked_at
                if sample >= 0:
                    rtt = self.rtt
                    self.rtt = sample if rtt is None else rtt + (sample - rtt) / 8
        else:
            stats.reordered += 1

    def _drop_before(self, ext: int) -> None:
        """Give up every missing number below ``ext`` (none when ``ext`` < 0: no keyframe seen)."""
        if ext < 0:
            return
        missing = self._missing
        stale = [k for k in missing if k < ext]
        for k in stale:
            del missing[k]
        self.stats.given_up += len(stale)

    def _give_up_all(self) -> None:
        self.stats.given_up += len(self._missing)
        self._missing.clear()

    def _ask_keyframe(self) -> bool:
        self.stats.keyframe_requests += 1
        return True

    # ---- periodic work -------------------------------------------------------------------------
    def tick(self, now: float, rtt: float | None = None) -> list[int]:
        """The 16-bit numbers to NACK now, in sequence order (wraps included): each missing number
        ``reorder_delay`` after its gap was seen, then again every round trip (``rtt``, else the
        generator's own estimate, else :data:`DEFAULT_RTT`; clamped to [MIN_RTT, MAX_RTT]); numbers
        older than ``max_age`` or asked ``max_retries`` times are given up. At most
        ``max_per_tick`` numbers (the rest are due at the next tick)."""
        missing = self._missing
        stats = self.stats
        highest = self._highest
        if self._tick_highest >= 0 and highest >= self._tick_highest:
            arrived = (highest - self._tick_highest) - (stats.missing - self._tick_missing)
            if arrived > 0:
                budget = self._budget + arrived * self._ratio
                self._budget = budget if budget < self._burst else self._burst
        self._tick_highest, self._tick_missing = highest, stats.missing
        if not missing:
            return []
        if rtt is None:
            rtt = self.rtt if self.rtt is not None else DEFAULT_RTT
        rtt = MIN_RTT if rtt < MIN_RTT else MAX_RTT if rtt > MAX_RTT else rtt
        oldest = now - self._max_age
        first_ask = now - self._reorder_delay
        retries = self._max_retries
        out: list[int] = []
        budget = int(self._budget)
        limit = self._max_per_tick if self._max_per_tick < budget else budget
        dead: list[int] = []
        due_skipped = False
        for ext, entry in missing.items():
            if entry.seen_at <= oldest or entry.retries >= retries:
                dead.append(ext)
                continue
            if entry.retries == 0:
                if entry.seen_at > first_ask:
                    break  # gaps are in order of their arrival: the rest is newer still
            elif now - entry.asked_at < rtt:
                continue
            if len(out) >= limit:
                due_skipped = True  # due, but over this tick's cap or the budget: later, or given up by age
                continue
            entry.asked_at = now
            entry.retries += 1
            out.append(ext & 0xFFFF)
        for ext in dead:
            del missing[ext]
        stats.given_up += len(dead)
        stats.asked += len(out)
        self._budget -= len(out)
        if due_skipped and len(out) >= budget:
            stats.throttled += 1
        return out

    # ---- state ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """How many numbers are on the missing list now."""
        return len(self._missing)

    @property
    def highest(self) -> int:
        """The extended highest sequence number seen (-1 before the first packet)."""
        return self._highest

    def is_missing(self, seq: int) -> bool:
        """Whether the 16-bit ``seq`` is on the missing list (a packet that repairs it is late, not
        a jump of the stream's numbering, however far behind the highest number it is)."""
        highest = self._highest
        return highest >= 0 and highest - ((highest - seq) & 0xFFFF) in self._missing

    def missing(self) -> list[int]:
        """The 16-bit numbers on the missing list, oldest first (for tests and diagnostics)."""
        return [ext & 0xFFFF for ext in self._missing]

    def reset(self) -> None:
        """Forget the stream's numbering (the publisher restarted it): the list is given up and the
        next packet starts afresh. The RTT estimate and the stats stay."""
        self._give_up_all()
        self._highest = -1
        self._keyframe = -1
        self._tick_highest = -1

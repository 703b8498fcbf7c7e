"""Which NACKed packets a consumer re-sends: the limits that keep NACKs from amplifying traffic.

A generic NACK (RFC 4585 6.2.1) names up to 17 sequence numbers in 4 bytes, and a compound can
hold hundreds of them: answered blindly, 20 small NACK packets (2.9 KB) made the server send about
1,200 retransmissions (190 KB), and with a forged source address a subscriber could point that at
a third party (issue 10). So each consumer answers a NACK only

- for a packet it sent, no further than ``nack_window`` behind its newest sent sequence number
  (never for one ahead of it: that was never sent, it cannot have been lost);
- at most once per round-trip time per packet (a second request within one RTT is a duplicate:
  the first retransmission cannot have arrived yet; mediasoup's RtpStreamSend keeps the same rule
  with the same 100 ms default);
- within a token bucket of ``retransmit_rate`` bytes per second (``retransmit_burst`` at once):
  whatever a NACK asks for, one consumer's retransmissions never exceed
  ``retransmit_burst + retransmit_rate * seconds``.

The round-trip time comes from the subscriber's receiver reports: the LSR/DLSR of a report block
(RFC 3550 6.4.1) against the time we sent the sender report it echoes (the producer remembers the
send times of its last few reports, :class:`SenderReportTimes`). Until one arrives,
:data:`DEFAULT_RTT`. Nothing here runs per forwarded packet: only per NACK and per report.
"""

from __future__ import annotations

import struct

from .stats import ConsumerStats, WorkerStats

# Reasons in WorkerStats.nack_dropped / ConsumerStats.nack_dropped (a requested sequence number
# not re-sent; one not in the history is counted as ``retransmit_missed`` instead)
NACK_FAR = "far"  # more than nack_window behind the newest sent packet, or ahead of it
NACK_RECENT = "recent"  # already re-sent less than one round-trip time ago
NACK_RATE = "rate"  # over the consumer's retransmission byte budget

DEFAULT_RTT = 0.1  # seconds, until a receiver report gives one (mediasoup's DefaultRtt)
MIN_RTT = 0.02  # a measured RTT is clamped to [MIN_RTT, MAX_RTT]: below 20 ms a duplicate
MAX_RTT = 1.0  # NACK from a jittery client would pass; above 1 s repairs come too late to play
SR_TIMES = 8  # sender reports whose send time is remembered (one a second: 8 s of RTT samples)

_BLOCK = struct.Struct("!I12xII")  # report block: ssrc, (loss, highest seq, jitter), LSR, DLSR


class SenderReportTimes:
    """When the last few sender reports were sent, by the LSR a receiver report echoes (the middle
    32 bits of the report's NTP time). One per producer: the same report goes to every consumer at
    once (translated by each), so one send time serves them all."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: dict[int, float] = {}

    def note(self, ntp: int, now: float) -> None:
        times = self._times
        times[(ntp >> 16) & 0xFFFFFFFF] = now
        if len(times) > SR_TIMES:
            del times[next(iter(times))]  # the oldest (dicts keep insertion order)

    def sent_at(self, lsr: int) -> float | None:
        return self._times.get(lsr)


def report_blocks(data: bytes | bytearray, start: int, end: int, count: int) -> list[tuple[int, int, int]]:
    """``(ssrc, lsr, dlsr)`` of each report block of a receiver report (``start``/``end``/``count``
    as :func:`sfu.rtcp.split_compound` gives them); blocks that do not fit are ignored."""
    pos = start + 8
    out: list[tuple[int, int, int]] = []
    for _ in range(count):
        if pos + 24 > end:
            break
        ssrc, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        out.append((ssrc, lsr, dlsr))
        pos += 24
    return out


class RetransmitGuard:
    """One consumer's NACK limits (see the module docstring) and its RTT estimate."""

    __slots__ = ("_burst", "_rate", "_refilled_at", "_resent", "_tokens", "_window", "rtt")

    def __init__(self, rate: int, burst: int, window: int) -> None:
        self._rate = float(rate)
        self._burst = float(burst)
        self._window = window
        self._tokens = float(burst)
        self._refilled_at: float | None = None
        self._resent: dict[int, float] = {}  # outgoing sequence number -> when last re-sent
        self.rtt: float | None = None  # smoothed, seconds (None: no receiver report yet)

    def round_trip(self) -> float:
        """The RTT the once-per-RTT rule uses: the measured one, clamped, or :data:`DEFAULT_RTT`."""
        rtt = self.rtt
        if rtt is None:
            return DEFAULT_RTT
        return MIN_RTT if rtt < MIN_RTT else MAX_RTT if rtt > MAX_RTT else rtt

    def on_rtt_sample(self, sample: float) -> None:
        """A round trip measured from a receiver report (negative samples, from a bad DLSR or a
        clock step, are ignored); smoothed like TCP's SRTT (RFC 6298: 7/8 old, 1/8 new)."""
        if sample < 0:
            return
        self.rtt = sample if self.rtt is None else self.rtt + (sample - self.rtt) / 8

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last NACK (once per NACK packet, not per number)."""
        last = self._refilled_at
        self._refilled_at = now
        if last is not None and now > last:
            self._tokens = min(self._burst, self._tokens + (now - last) * self._rate)

    def far(self, out_seq: int, newest: int) -> bool:
        """Whether ``out_seq`` is ahead of the newest sent sequence number or more than the window
        behind it (16-bit serial arithmetic, RFC 1982)."""
        behind = (newest - out_seq) & 0xFFFF
        return behind >= 0x8000 or behind > self._window

    def admit(self, out_seq: int, size: int, now: float) -> str | None:
        """None, and the packet counts as re-sent now, if it may go; else the reason it may not."""
        resent = self._resent
        rtt = self.round_trip()
        at = resent.get(out_seq)
        if at is not None and now - at < rtt:
            return NACK_RECENT
        if size > self._tokens:
            return NACK_RATE
        self._tokens -= size
        if len(resent) >= 256:  # forget what can no longer suppress anything
            self._resent = resent = {s: t for s, t in resent.items() if now - t < rtt}
        resent[out_seq] = now
        return None


def count_dropped(stats: WorkerStats, mine: ConsumerStats, reason: str) -> None:
    stats.nack_dropped[reason] = stats.nack_dropped.get(reason, 0) + 1
    mine.nack_dropped[reason] = mine.nack_dropped.get(reason, 0) + 1

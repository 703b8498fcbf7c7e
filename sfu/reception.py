"""Receive statistics of one incoming RTP stream (RFC 3550 A.3) and its receiver-report block.

Shared by a plain producer and each simulcast layer: the hot path updates the attributes in place
(no call per packet); the report block is computed once per RTCP interval.
"""

from __future__ import annotations

ReportBlock = tuple[int, int, int, int, int, int, int]


class ReceptionStats:
    """Mixin: the class sets these attributes (and keeps them current on every packet)."""

    ssrc: int | None
    packets: int
    last_sr: tuple[int, int] | None  # (ntp 64-bit, rtp timestamp) of the last sender report
    _last_sr_at: float  # when it arrived (monotonic)
    _base_seq: int
    _max_seq: int  # extended (cycles << 16 | seq); -1 before the first packet
    _prior_expected: int
    _prior_received: int

    @property
    def highest_seq(self) -> int:
        """The extended highest sequence number received (cycles << 16 | seq); -1 before the first."""
        return self._max_seq

    def report_block(self, now: float) -> ReportBlock | None:
        """(ssrc, fraction lost, cumulative lost, extended highest seq, jitter, LSR, DLSR); None
        before the first packet."""
        if self.ssrc is None or self._max_seq < 0:
            return None
        expected = self._max_seq - self._base_seq + 1
        lost = expected - self.packets
        expected_interval = expected - self._prior_expected
        received_interval = self.packets - self._prior_received
        self._prior_expected = expected
        self._prior_received = self.packets
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        lsr = dlsr = 0
        if self.last_sr is not None:
            lsr = (self.last_sr[0] >> 16) & 0xFFFFFFFF
            dlsr = int((now - self._last_sr_at) * 65536)
        return (self.ssrc, min(fraction, 255), lost, self._max_seq, 0, lsr, dlsr)

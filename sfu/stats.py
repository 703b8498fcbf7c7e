"""Counters of the forwarding core, exported by the signalling layer (e.g. to Prometheus).

One :class:`WorkerStats` per :class:`sfu.Worker`; every counter is a plain ``int`` (drop counters
are ``dict[str, int]`` keyed by reason) and only ever grows. The hot path increments attributes
directly, so reading them is free and needs no lock (one event loop per worker).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# Reasons used in WorkerStats.rtp_dropped
RTP_TRUNCATED = "truncated"  # shorter than its header / extension / padding claims
RTP_BAD_VERSION = "bad_version"  # RTP version field is not 2
RTP_UNKNOWN_SSRC = "unknown_ssrc"  # no producer for this SSRC (and no MID extension to learn it)
RTP_UNKNOWN_PT = "unknown_pt"  # payload type is not the producer's negotiated codec
RTP_RTX = "rtx"  # publisher RTX / padding stream (not forwarded)
RTP_NO_PRODUCER = "no_producer"  # m-line known but not produced (yet) or producer closed
RTP_NOT_CONNECTED = "not_connected"  # subscriber's DTLS/SRTP not ready
RTP_SRTP_ERROR = "srtp_error"  # libsrtp refused to protect
RTP_SEND_ERROR = "send_error"  # socket refused
RTP_SRTP_UNPROTECT = "srtp_unprotect"  # authentication/replay check failed (direct receive only)
RTP_ERROR = "error"  # unexpected exception in the hook (a bug): counted and swallowed

# Reasons used in WorkerStats.rtcp_dropped
RTCP_TRUNCATED = "truncated"
RTCP_BAD_VERSION = "bad_version"
RTCP_UNKNOWN_SSRC = "unknown_ssrc"
RTCP_SRTP_UNPROTECT = "srtp_unprotect"
RTCP_ERROR = "error"


@dataclass
class WorkerStats:
    """Plain counters; see ``docs/sfu.md`` for the meaning of each."""

    rtp_in: int = 0
    rtp_in_bytes: int = 0
    rtp_out: int = 0
    rtp_out_bytes: int = 0
    rtp_dropped: dict[str, int] = field(default_factory=dict)
    rtcp_in: int = 0
    rtcp_out: int = 0
    rtcp_dropped: dict[str, int] = field(default_factory=dict)
    nack_received: int = 0  # sequence numbers asked for by subscribers
    retransmitted: int = 0  # of those, re-sent from the packet history
    retransmitted_bytes: int = 0  # RTP bytes of those retransmissions (before SRTP)
    retransmit_missed: int = 0  # not (or no longer) in the history
    rtx_sent: int = 0  # of the retransmissions, those sent RTX-wrapped on the consumer's RTX SSRC
    padding_sent: int = 0  # padding-only RTX packets sent to subscribers (bandwidth probes)
    padding_bytes: int = 0  # RTP bytes of those (before SRTP)
    nack_dropped: dict[str, int] = field(default_factory=dict)  # not re-sent, by rule (sfu.nack)
    pli_received: int = 0  # PLI/FIR from subscribers
    pli_sent: int = 0  # PLI to publishers (after throttling)
    nack_sent: int = 0  # sequence numbers asked of publishers in NACKs, retries included (sfu.nack_generator)
    keyframes: int = 0  # keyframe starts seen from publishers
    remb_sent: int = 0
    rr_sent: int = 0
    sr_received: int = 0
    sr_sent: int = 0
    rr_received: int = 0
    producers: int = 0  # currently open
    consumers: int = 0  # currently open
    transports: int = 0  # currently open

    def drop_rtp(self, reason: str) -> None:
        self.rtp_dropped[reason] = self.rtp_dropped.get(reason, 0) + 1

    def drop_rtcp(self, reason: str) -> None:
        self.rtcp_dropped[reason] = self.rtcp_dropped.get(reason, 0) + 1

    def snapshot(self) -> WorkerStats:
        """A copy that later packets do not change."""
        copy = dataclasses.replace(self)
        copy.rtp_dropped = dict(self.rtp_dropped)
        copy.rtcp_dropped = dict(self.rtcp_dropped)
        copy.nack_dropped = dict(self.nack_dropped)
        return copy


@dataclass
class ConsumerStats:
    """One consumer's share of the NACK counters (``consumer.stats``), so that a subscriber that
    asks for much more than it gets can be told apart (see ``sfu.nack``)."""

    nack_received: int = 0  # sequence numbers asked for
    retransmitted: int = 0
    retransmitted_bytes: int = 0
    retransmit_missed: int = 0
    rtx_sent: int = 0  # retransmissions sent on the RTX SSRC
    padding_sent: int = 0  # padding-only RTX packets (probes)
    nack_dropped: dict[str, int] = field(default_factory=dict)  # by reason: far, recent, rate

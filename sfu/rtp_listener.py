"""The RTP listener of one transport: routes each incoming RTP packet and RTCP compound.

mediasoup splits this the same way: its Transport keeps an ``RtpListener`` (SSRC, MID and RID
tables; an unknown SSRC is looked up by the MID header extension, then the RID one, and bound) and
hands RTCP to the producer or consumer that an SSRC names. aiortc's ``RtpRouter`` (inside its
DTLS transport) routes by SSRC, then MID, then payload type.

Here, RTP from the client goes to a :class:`~sfu.producer.Producer`:
- by SSRC (one dict get: the hot path);
- an unknown SSRC once by the MID extension (the m-line's producer), for simulcast with the RID
  extension naming the layer, and then by SSRC;
- an RTX SSRC paired by the offer's ``a=ssrc-group:FID`` to its producer, which unwraps it
  (RFC 4588); other RTX SSRCs (declared, or learned from the RTX payload type) are dropped as
  ``rtx``;
- anything else is dropped with its reason (``unknown_ssrc``, ``no_producer``, ``truncated``,
  ``bad_version``; see docs/sfu.md, "Stats").

RTCP from the client: sender reports to the producer of their SSRC, receiver reports (RTT), NACKs,
PLI/FIR and REMB to the :class:`~sfu.consumer.Consumer` whose SSRC they name.

The tables are this object's; the transport adds and removes producers and consumers as they come
and go. The hooks never raise: an unexpected exception is counted (``error``) and logged once.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import nack, rtcp
from .rtp import find_extension
from .stats import (
    RTCP_ERROR,
    RTCP_SRTP_UNPROTECT,
    RTCP_TRUNCATED,
    RTCP_UNKNOWN_SSRC,
    RTP_BAD_VERSION,
    RTP_ERROR,
    RTP_NO_PRODUCER,
    RTP_RTX,
    RTP_SRTP_UNPROTECT,
    RTP_TRUNCATED,
    RTP_UNKNOWN_SSRC,
    WorkerStats,
)

if TYPE_CHECKING:
    from .congestion import PublisherCongestion, SubscriberCongestion
    from .consumer import Consumer
    from .producer import Producer

logger = logging.getLogger(__name__)

_U32 = struct.Struct("!I")


class RtpListener:
    """Routing tables and the receive hooks of one transport (``name`` labels its log lines)."""

    def __init__(self, stats: WorkerStats, name: str) -> None:
        self._stats = stats
        self._name = name
        self.producer_by_ssrc: dict[int, Producer] = {}
        self.producer_by_mid: dict[str, Producer] = {}
        # SSRCs of RTX streams: declared in the offer (a=ssrc-group:FID) or learned from the RTX
        # payload type (Producer._learn_rtx keeps that bounded)
        self.rtx_ssrcs: set[int] = set()
        # RTX SSRC -> the producer whose stream it repairs (a=ssrc-group:FID of the offer)
        self.rtx_producers: dict[int, Producer] = {}
        self.consumer_by_ssrc: dict[int, Consumer] = {}
        self.consumer_rtx_ssrcs: set[int] = set()  # the consumers' RTX SSRCs (not routed: never reused)
        self.mid_ext_id = 0  # header extension ids of the offer's MID and the answer's RID (0: none)
        self.rid_ext_id = 0
        self._offered_mids: frozenset[str] = frozenset()
        self.hook_errors = 0  # unexpected exceptions in the hooks (bugs), counted as `error`
        # congestion control (sfu.congestion, set by the transport): every packet's transport-wide
        # sequence number or abs-send-time (None: nothing negotiated to record); the subscriber's
        # receiver report blocks and REMBs
        self.congestion: PublisherCongestion | None = None
        self.downlink: SubscriberCongestion | None = None

    # ---- tables ---------------------------------------------------------------------------------
    def set_offer(self, mid_ext_id: int, rid_ext_id: int, mids: Iterable[str]) -> None:
        """A new offer/answer: the extension ids to read and the m-lines the offer has (a packet
        for an m-line that exists but is not produced is ``no_producer``, not ``unknown_ssrc``)."""
        self.mid_ext_id = mid_ext_id
        self.rid_ext_id = rid_ext_id
        self._offered_mids = frozenset(mids)

    def add_producer(
        self, producer: Producer, ssrcs: Iterable[int], rtx_ssrcs: Iterable[int], repair_ssrc: int | None,
    ) -> None:
        """Route ``ssrcs`` to ``producer`` (and packets of its m-line's MID); ``rtx_ssrcs`` are
        RTX streams of its m-line, ``repair_ssrc`` the one to unwrap into it (None: none)."""
        self.producer_by_mid[producer.mid] = producer
        for ssrc in ssrcs:
            self.producer_by_ssrc[ssrc] = producer
        self.rtx_ssrcs.update(rtx_ssrcs)
        if repair_ssrc is not None:
            self.rtx_producers[repair_ssrc] = producer

    def remove_producer(self, producer: Producer, learned_rtx: Iterable[int] = ()) -> None:
        if self.producer_by_mid.get(producer.mid) is producer:
            del self.producer_by_mid[producer.mid]
        for ssrc in [s for s, p in self.producer_by_ssrc.items() if p is producer]:
            del self.producer_by_ssrc[ssrc]
        for ssrc in [s for s, p in self.rtx_producers.items() if p is producer]:
            del self.rtx_producers[ssrc]
        self.rtx_ssrcs.difference_update(learned_rtx)

    def unused_ssrc(self, exclude: int, also: int | None = None) -> int:
        """A random SSRC no consumer of this transport sends with (media or RTX), nor ``exclude``
        or ``also``."""
        while True:
            ssrc = random.getrandbits(32)
            if (ssrc and ssrc != exclude and ssrc != also and ssrc not in self.consumer_by_ssrc
                    and ssrc not in self.consumer_rtx_ssrcs):
                return ssrc

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumer_by_ssrc[consumer.ssrc] = consumer
        if consumer.rtx_ssrc is not None:
            self.consumer_rtx_ssrcs.add(consumer.rtx_ssrc)

    def remove_consumer(self, consumer: Consumer) -> None:
        if self.consumer_by_ssrc.get(consumer.ssrc) is consumer:
            del self.consumer_by_ssrc[consumer.ssrc]
            self.consumer_rtx_ssrcs.discard(consumer.rtx_ssrc or 0)

    # ---- RTP ------------------------------------------------------------------------------------
    def on_rtp(self, data: bytes) -> None:
        """Hook: one decrypted RTP packet from the client. Never raises."""
        stats = self._stats
        try:
            stats.rtp_in += 1
            stats.rtp_in_bytes += len(data)
            if len(data) < 12:
                stats.drop_rtp(RTP_TRUNCATED)
                return
            if data[0] >> 6 != 2:
                stats.drop_rtp(RTP_BAD_VERSION)
                return
            congestion = self.congestion
            if congestion is not None:  # every packet: RTX and padding probes carry the numbers too
                congestion.on_rtp(data, time.monotonic())
            ssrc = _U32.unpack_from(data, 8)[0]
            producer = self.producer_by_ssrc.get(ssrc)
            if producer is None:
                producer = self._learn_ssrc(data, ssrc)
                if producer is None:
                    return
            producer._receive_rtp(data)
        except Exception:
            stats.drop_rtp(RTP_ERROR)
            self._hook_error("RTP")

    def _learn_ssrc(self, data: bytes, ssrc: int) -> Producer | None:
        """Bind an unknown SSRC to a producer through the MID header extension (counts drops)."""
        stats = self._stats
        if ssrc in self.rtx_ssrcs:
            repaired = self.rtx_producers.get(ssrc)
            if repaired is None:
                stats.drop_rtp(RTP_RTX)
            else:
                repaired._receive_rtx(data)  # unwrapped into the original stream (RFC 4588)
            return None
        mid_value = find_extension(data, self.mid_ext_id) if self.mid_ext_id else None
        if mid_value is None:
            stats.drop_rtp(RTP_UNKNOWN_SSRC)
            return None
        mid = mid_value.decode("ascii", "replace")
        producer = self.producer_by_mid.get(mid)
        if producer is None:
            stats.drop_rtp(RTP_NO_PRODUCER if mid in self._offered_mids else RTP_UNKNOWN_SSRC)
            return None
        if producer.simulcast:
            # one SSRC per layer: the rid extension (sent in the first packets) names the layer
            if data[1] & 0x7F != producer.codec_info.payload_type:
                producer._learn_rtx(ssrc, data[1] & 0x7F, self.rtx_ssrcs, data, self.rtx_producers)  # bounded
                return None
            rid = find_extension(data, self.rid_ext_id) if self.rid_ext_id else None
            if rid is None or not producer._bind_layer(rid.decode("ascii", "replace"), ssrc):
                stats.drop_rtp(RTP_UNKNOWN_SSRC)
                return None
            self.producer_by_ssrc[ssrc] = producer
            return producer
        if producer.ssrc is not None and producer.ssrc != ssrc:
            if data[1] & 0x7F != producer.codec_info.payload_type:
                producer._learn_rtx(ssrc, data[1] & 0x7F, self.rtx_ssrcs, data, self.rtx_producers)  # bounded
                return None
            if producer.packets:
                stats.drop_rtp(RTP_UNKNOWN_SSRC)  # a second stream on one m-line (simulcast): not yet
                return None
            # the SSRC announced in a=ssrc never sent anything: the MID extension wins
            if self.producer_by_ssrc.get(producer.ssrc) is producer:
                del self.producer_by_ssrc[producer.ssrc]
        self.producer_by_ssrc[ssrc] = producer
        producer._learned_ssrc(ssrc)
        return producer

    def on_srtp_error(self, is_rtcp: bool) -> None:
        """Hook: a datagram SRTP/SRTCP refused (authentication, replay, length)."""
        if is_rtcp:
            self._stats.rtcp_in += 1
            self._stats.drop_rtcp(RTCP_SRTP_UNPROTECT)
        else:
            self._stats.rtp_in += 1
            self._stats.drop_rtp(RTP_SRTP_UNPROTECT)

    # ---- RTCP -----------------------------------------------------------------------------------
    def on_rtcp(self, data: bytes) -> None:
        """Hook: one decrypted RTCP compound from the client. Never raises."""
        stats = self._stats
        try:
            stats.rtcp_in += 1
            try:
                packets = rtcp.split_compound(data)
            except ValueError:
                stats.drop_rtcp(RTCP_TRUNCATED)
                return
            for pt, fmt, start, end in packets:
                if pt == rtcp.RTCP_SR:
                    stats.sr_received += 1
                    ssrc, ntp, rtp_ts = rtcp.parse_sr(data, start, end)
                    producer = self.producer_by_ssrc.get(ssrc)
                    if producer is not None:
                        producer._on_sender_report(ntp, rtp_ts, ssrc)
                elif pt == rtcp.RTCP_RR:
                    stats.rr_received += 1
                    # each block about one of this subscriber's consumers is an RTT sample
                    for ssrc, lsr, dlsr in nack.report_blocks(data, start, end, fmt):
                        consumer = self.consumer_by_ssrc.get(ssrc)
                        if consumer is not None:
                            consumer._on_report_block(lsr, dlsr)
                    if self.downlink is not None:
                        self._on_report_blocks(self.downlink, data, start, end, fmt)
                elif pt == rtcp.RTCP_RTPFB and fmt == rtcp.RTPFB_NACK:
                    media, seqs = rtcp.parse_nack(data, start, end)
                    consumer = self.consumer_by_ssrc.get(media)
                    if consumer is None:
                        stats.drop_rtcp(RTCP_UNKNOWN_SSRC)
                    else:
                        consumer._handle_nack(seqs)
                        downlink = self.downlink
                        if downlink is not None and consumer.kind == "video":
                            downlink.on_nack(time.monotonic(), len(seqs))
                elif pt == rtcp.RTCP_PSFB and fmt in (rtcp.PSFB_PLI, rtcp.PSFB_FIR):
                    if fmt == rtcp.PSFB_PLI:
                        targets = [rtcp.feedback_ssrcs(data, start, end)[1]]
                    else:
                        targets = rtcp.parse_fir_ssrcs(data, start, end)
                    for media in targets:
                        consumer = self.consumer_by_ssrc.get(media)
                        if consumer is None:
                            stats.drop_rtcp(RTCP_UNKNOWN_SSRC)
                            continue
                        stats.pli_received += 1
                        consumer._request_keyframe()
                elif pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_APP:
                    self._on_remb(data, start, end)
        except Exception:
            stats.drop_rtcp(RTCP_ERROR)
            self._hook_error("RTCP")

    def _on_remb(self, data: bytes, start: int, end: int) -> None:
        """REMB from a subscriber: share the estimate among the video consumers it names."""
        try:
            bitrate, ssrcs = rtcp.parse_remb(data, start, end)
        except ValueError:
            return  # another application-layer feedback message
        named = [c for s in ssrcs if (c := self.consumer_by_ssrc.get(s)) is not None and c.kind == "video"]
        if not named:
            return
        if self.downlink is not None:
            self.downlink.on_remb(time.monotonic(), bitrate, ssrcs)
        share = bitrate // len(named)
        for consumer in named:
            if consumer.producer.simulcast:
                consumer._on_estimate(share)
            else:
                consumer.estimate = share

    def _on_report_blocks(self, downlink: SubscriberCongestion, data: bytes, start: int, end: int, count: int) -> None:
        """The loss and RTT of the subscriber's video consumers, for its downlink estimate."""
        now = time.monotonic()
        for block in rtcp.parse_report_blocks(data, start, end, count):
            consumer = self.consumer_by_ssrc.get(block[0])
            if consumer is not None and consumer.kind == "video":
                downlink.on_report_block(now, block[0], block[1], consumer.packets, consumer.rtt)

    def _hook_error(self, what: str) -> None:
        self.hook_errors += 1
        if self.hook_errors == 1:
            logger.exception("transport %s: %s hook error (further ones are only counted)", self._name, what)


__all__ = ["RtpListener"]

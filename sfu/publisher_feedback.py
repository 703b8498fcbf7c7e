"""RTCP from one transport to its publisher: receiver reports, REMB and NACKs.

mediasoup's Transport sends its periodic RTCP (each producer's receiver reports, its REMB) from a
timer of its own and has each producer's ``NackGenerator`` ask for what is missing; this object
does both for one transport:
- :meth:`tick` (from the worker's ticker, every ``remb_interval``): one compound with a receiver
  report block for every producer and a REMB of ``remb_bitrate`` for all their SSRCs;
- :meth:`nack_wanted` / the NACK timer (:data:`NACK_INTERVAL`, ``call_later``, running only while
  a producer has numbers missing): one compound with each producer's generic NACK;
- with a :class:`sfu.congestion.PublisherCongestion`: the REMB is its value (the cap with
  transport-cc, else the receive-side estimate), a falling estimate goes out at the next tick, and
  :meth:`start_transport_cc` runs the transport-cc feedback timer (:data:`FEEDBACK_INTERVAL`).

PLIs are the producers' own (:meth:`Producer.request_keyframe`). The transport gives this object
its producers (a live mapping), its send function and whether it is connected, at construction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import rtcp
from .congestion import FEEDBACK_INTERVAL
from .stats import WorkerStats

if TYPE_CHECKING:
    from .congestion import PublisherCongestion
    from .producer import Producer
    from .reception import ReportBlock

logger = logging.getLogger(__name__)

# NACKs to publishers (sfu.nack_generator): the missing lists are read this often while a producer
# of the transport has numbers missing (no timer runs while nothing is)
NACK_INTERVAL = 0.02


class PublisherFeedback:
    """Receiver reports, REMB and NACKs towards the publisher of one transport."""

    def __init__(
        self,
        *,
        rtcp_ssrc: int,
        remb_bitrate: int,
        remb_interval: float,
        stats: WorkerStats,
        producers: Mapping[str, Producer],
        send_rtcp: Callable[[bytes], bool],
        connected: Callable[[], bool],
        name: str,
        congestion: PublisherCongestion | None = None,
    ) -> None:
        self._rtcp_ssrc = rtcp_ssrc
        self._remb_bitrate = remb_bitrate
        self._remb_interval = remb_interval
        self._stats = stats
        self._producers = producers
        self._send_rtcp = send_rtcp
        self._connected = connected
        self._name = name
        self._last_remb = 0.0
        self.nack_timer: asyncio.TimerHandle | None = None
        self._congestion = congestion
        self.transport_cc_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def tick(self, now: float) -> None:
        """Every ``remb_interval``, while connected with producers: receiver reports + REMB; in
        between (each tick), a REMB alone when the estimate fell."""
        if not self._producers or not self._connected():
            return
        congestion = self._congestion
        if now - self._last_remb < self._remb_interval:
            if congestion is None:
                return
            bitrate = congestion.remb(now, periodic=False)
            if bitrate is not None:
                ssrcs = [s.ssrc for p in self._producers.values() for s in p.streams if s.ssrc is not None]
                if ssrcs and self._send_rtcp(rtcp.build_remb(self._rtcp_ssrc, bitrate, ssrcs)):
                    self._stats.remb_sent += 1
            return
        self._last_remb = now
        blocks: list[ReportBlock] = []
        video_loss: list[float] = []
        for producer in self._producers.values():
            produced = producer._report_blocks(now)
            blocks += produced
            if producer.kind == "video":
                video_loss += [b[1] / 256 for b in produced]
        if not blocks:
            return
        ssrcs = [b[0] for b in blocks]
        bitrate = self._remb_bitrate if congestion is None else congestion.remb(now, True, video_loss)
        packet = rtcp.build_rr(self._rtcp_ssrc, blocks) + rtcp.build_remb(
            self._rtcp_ssrc, self._remb_bitrate if bitrate is None else bitrate, ssrcs
        )
        if self._send_rtcp(packet):
            self._stats.remb_sent += 1
            self._stats.rr_sent += 1

    def start_transport_cc(self) -> None:
        """The publisher negotiated transport-cc: send its feedback every FEEDBACK_INTERVAL while the
        transport lives (a tick with nothing recorded sends nothing). Idempotent."""
        if self.transport_cc_timer is not None or self._closed or self._congestion is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test feeding packets synchronously): the test calls send
            return
        self.transport_cc_timer = loop.call_later(FEEDBACK_INTERVAL, self.send_transport_cc)

    def send_transport_cc(self) -> None:
        """The transport-cc timer: each feedback packet due, as its own RTCP packet (it is padded:
        only the last of a compound may be)."""
        self.transport_cc_timer = None
        if self._closed or self._congestion is None:
            return
        try:
            if self._congestion.feedback_pending and self._connected():
                media = next((s.ssrc for p in self._producers.values() for s in p.streams if s.ssrc), 0)
                for packet in self._congestion.feedback(media):
                    self._send_rtcp(packet)
        except Exception:
            logger.exception("transport %s: transport-cc timer failed", self._name)
        self.start_transport_cc()

    def nack_wanted(self) -> None:
        """A producer's NACK generator has numbers missing: read the lists in NACK_INTERVAL."""
        if self.nack_timer is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test feeding packets synchronously): nothing to schedule
            return
        self.nack_timer = loop.call_later(NACK_INTERVAL, self.send_nacks)

    def send_nacks(self) -> None:
        """The NACK timer: one compound with a generic NACK per producer that has numbers due; the
        timer runs again while numbers are missing."""
        self.nack_timer = None
        if self._closed:
            return
        try:
            now = time.monotonic()
            packets: list[bytes] = []
            missing = False
            for producer in list(self._producers.values()):
                packet, pending = producer._nack_tick(now)
                if packet:
                    packets.append(packet)
                missing = missing or pending
            if packets and self._connected():
                self._send_rtcp(b"".join(packets))
            if missing:
                self.nack_wanted()
        except Exception:
            logger.exception("transport %s: NACK timer failed", self._name)

    def close(self) -> None:
        """Stop the NACK timer for good (idempotent)."""
        self._closed = True
        if self.nack_timer is not None:
            self.nack_timer.cancel()
            self.nack_timer = None
        if self.transport_cc_timer is not None:
            self.transport_cc_timer.cancel()
            self.transport_cc_timer = None


__all__ = ["NACK_INTERVAL", "PublisherFeedback"]

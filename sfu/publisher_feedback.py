"""RTCP from one transport to its publisher: receiver reports, REMB and NACKs.

mediasoup's Transport sends its periodic RTCP (each producer's receiver reports, its REMB) from a
timer of its own and has each producer's ``NackGenerator`` ask for what is missing; this object
does both for one transport:
- :meth:`tick` (from the worker's ticker, every ``remb_interval``): one compound with a receiver
  report block for every producer and a REMB of ``remb_bitrate`` for all their SSRCs;
- :meth:`nack_wanted` / the NACK timer (:data:`NACK_INTERVAL`, ``call_later``, running only while
  a producer has numbers missing): one compound with each producer's generic NACK.

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
from .stats import WorkerStats

if TYPE_CHECKING:
    from .producer import Producer

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
        self._closed = False

    def tick(self, now: float) -> None:
        """Every ``remb_interval``, while connected with producers: receiver reports + REMB."""
        if not self._producers or now - self._last_remb < self._remb_interval or not self._connected():
            return
        self._last_remb = now
        blocks = [b for p in self._producers.values() for b in p._report_blocks(now)]
        if not blocks:
            return
        ssrcs = [b[0] for b in blocks]
        packet = rtcp.build_rr(self._rtcp_ssrc, blocks) + rtcp.build_remb(
            self._rtcp_ssrc, self._remb_bitrate, ssrcs
        )
        if self._send_rtcp(packet):
            self._stats.remb_sent += 1
            self._stats.rr_sent += 1

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


__all__ = ["NACK_INTERVAL", "PublisherFeedback"]

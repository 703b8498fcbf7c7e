"""Congestion control of one transport: what its receive path, its RTCP hooks and its tick call.

Towards a **publisher** (:class:`PublisherCongestion`) the server helps the sender's own
controller rather than deciding for it:

- when the offer has transport-cc (Chromium and Firefox offer it on every m-line), the answer takes
  it (:func:`sfu.transport_cc.munge_answer`), every packet's transport-wide sequence number and
  arrival time are recorded, and the feedback goes back every :data:`FEEDBACK_INTERVAL`: the
  browser's send-side GCC (delay and loss, its probes, its simulcast allocation) sets its rate.
  The REMB keeps announcing ``remb_cap`` as an upper bound (the room's policy);
- otherwise (aiortc clients: abs-send-time only, and aiortc's sender obeys REMB alone), the
  server's own receive-side estimate (:class:`sfu.bandwidth_estimator.ReceiveBandwidthEstimator`)
  is the REMB, capped by ``remb_cap``; a falling estimate is sent at the next tick, not after
  ``remb_interval``.

Towards a **subscriber** (:class:`SubscriberCongestion`) the server decides: its receiver reports
(loss, RTT) and its REMB feed a :class:`sfu.downlink_estimator.DownlinkEstimator` whose value the
transport shares among its video consumers (``Consumer.on_bandwidth``).

Pure (time passed in, bytes in and out): the transport owns the timers and the socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .bandwidth_estimator import EXT_ABS_SEND_TIME, ReceiveBandwidthEstimator
from .downlink_estimator import DownlinkEstimator
from .sdp import MediaSection
from .transport_cc import EXT_TRANSPORT_CC, FEEDBACK_INTERVAL, TransportCcRecorder, extension_value

__all__ = ["FEEDBACK_INTERVAL", "BandwidthConsumer", "PublisherCongestion", "SubscriberCongestion", "extension_ids"]


class PublisherCongestion:
    """Transport-cc feedback or a REMB estimate for one publisher transport (module docstring)."""

    __slots__ = ("_abs_ext", "_remb_cap", "_rtcp_ssrc", "_twcc_ext", "estimator", "recorder")

    def __init__(self, rtcp_ssrc: int, remb_cap: int) -> None:
        self._rtcp_ssrc = rtcp_ssrc
        self._remb_cap = remb_cap
        self._twcc_ext = 0
        self._abs_ext = 0
        # made by configure() when needed (a subscriber's transport never needs them: 64 kB saved)
        self.recorder: TransportCcRecorder | None = None
        self.estimator: ReceiveBandwidthEstimator | None = None

    def configure(self, twcc_ext: int, abs_send_time_ext: int) -> None:
        """The answered extension ids (0: not negotiated); transport-cc wins when answered."""
        self._twcc_ext = twcc_ext
        self._abs_ext = 0 if twcc_ext else abs_send_time_ext
        if self._twcc_ext and self.recorder is None:
            self.recorder = TransportCcRecorder(self._rtcp_ssrc)
        if self._abs_ext and self.estimator is None:
            self.estimator = ReceiveBandwidthEstimator(max_bitrate=self._remb_cap)

    @property
    def active(self) -> bool:
        """Whether packets carry anything to record (the receive path may skip :meth:`on_rtp`)."""
        return bool(self._twcc_ext or self._abs_ext)

    @property
    def transport_cc(self) -> bool:
        """Whether transport-cc feedback is what this publisher gets."""
        return self._twcc_ext != 0

    def on_rtp(self, data: bytes | bytearray, now: float) -> None:
        """The receive path: every RTP packet of the transport (RTX included), decrypted."""
        if self._twcc_ext:
            seq = extension_value(data, self._twcc_ext)
            if seq >= 0:
                self.recorder.on_packet(seq, now)  # type: ignore[union-attr]  # made with the id
        elif self._abs_ext:
            sent = extension_value(data, self._abs_ext)
            if sent >= 0:
                self.estimator.on_packet(now, sent, len(data))  # type: ignore[union-attr]

    @property
    def feedback_pending(self) -> bool:
        """Numbers wait for a transport-cc report (run the feedback timer)."""
        return self.recorder is not None and self.recorder.pending > 0

    def feedback(self, media_ssrc: int) -> list[bytes]:
        """The transport-cc feedback packets due now (each to be sent as its own RTCP packet)."""
        return [] if self.recorder is None else self.recorder.feedback(media_ssrc)

    def remb(self, now: float, periodic: bool, video_loss: Iterable[float] = ()) -> int | None:
        """The REMB bitrate to send now, or None. ``periodic``: the regular REMB is due
        (``remb_interval``); ``video_loss``: the loss fractions (0..1) of the video producers'
        receiver report blocks sent with it (fed to the loss-based part once per report)."""
        est = self.estimator
        if self._twcc_ext or not self._abs_ext or est is None:
            return self._remb_cap if periodic else None
        if periodic:
            fractions = list(video_loss)
            if fractions:
                est.on_loss(now, sum(fractions) / len(fractions))
        est.update(now)
        if not periodic and not est.should_send():
            return None
        value = est.estimate
        bitrate = self._remb_cap if value is None else min(self._remb_cap, value)
        est.sent(bitrate)
        return bitrate


class BandwidthConsumer(Protocol):
    """What :meth:`SubscriberCongestion.share` reads and calls of a consumer."""

    @property
    def kind(self) -> str: ...

    @property
    def octets(self) -> int: ...

    def on_bandwidth(self, available_bps: float | None) -> None: ...

    @property
    def rtx(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    @property
    def held_down(self) -> bool: ...

    def probe_goal(self) -> float: ...

    def send_padding(self, count: int) -> int: ...


class SubscriberCongestion:
    """The downlink estimate of one subscriber transport (module docstring). With
    ``padding_probes``, the estimator probes with padding through a video consumer that negotiated
    RTX (``prober``, taken by the transport's pacer, sfu.padding) instead of growing into a layer."""

    __slots__ = ("_last_octets", "_last_tick", "_packets_at_report", "_padding", "estimator", "given", "prober")

    def __init__(self, padding_probes: bool = False) -> None:
        self.estimator = DownlinkEstimator()
        self._padding = padding_probes
        self.prober: BandwidthConsumer | None = None  # a cluster starts: pad through it
        self.given: tuple[float | None, int] = (None, 0)  # the last (share, video consumers) given
        self._packets_at_report: dict[int, int] = {}  # consumer SSRC -> its packets at the last block
        self._last_octets = -1
        self._last_tick = -1.0

    def on_report_block(self, now: float, ssrc: int, fraction_lost: int, packets: int, rtt: float | None) -> None:
        """A receiver report block about a video consumer: ``fraction_lost`` as in the block
        (0..255), ``packets`` the consumer's packets sent so far, ``rtt`` its RTT after the block."""
        before = self._packets_at_report.get(ssrc)
        self._packets_at_report[ssrc] = packets
        if before is not None and packets > before:
            self.estimator.on_loss(fraction_lost / 256, packets - before)
        if rtt is not None:
            self.estimator.on_rtt(now, rtt)

    def on_remb(self, now: float, bitrate: int, ssrcs: list[int]) -> None:
        """A REMB from the subscriber (its SSRCs as written: the first is the key)."""
        if ssrcs:
            self.estimator.on_remb(now, bitrate, key=ssrcs[0])

    def on_nack(self, now: float, count: int) -> None:
        """The subscriber NACKed ``count`` packets of a video consumer (a cluster's early stop)."""
        self.estimator.on_nack(now, count)

    def forget(self, ssrc: int) -> None:
        """A consumer closed."""
        self._packets_at_report.pop(ssrc, None)

    def tick(self, now: float, video_octets: int) -> float | None:
        """The transport's tick: ``video_octets``, the video consumers' octets sent so far (their
        sum; it may fall when a consumer closes: that tick counts nothing). Returns the estimate
        for the whole transport (bit/s; None: no limit seen)."""
        sent_bps = 0.0
        if self._last_tick >= 0 and now > self._last_tick and video_octets >= self._last_octets:
            sent_bps = (video_octets - self._last_octets) * 8 / (now - self._last_tick)
        first = self._last_tick < 0
        self._last_tick = now
        self._last_octets = video_octets
        if first:
            return self.estimator.estimate
        return self.estimator.update(now, sent_bps)

    def share(self, now: float, consumers: Iterable[BandwidthConsumer]) -> None:
        """The transport's tick: the estimate, shared equally among the video ``consumers`` (their
        layers follow it, ``on_bandwidth``); given again when the share or the number of video
        consumers changed, and at each tick to a consumer held below its wish (its layer choice
        may be waiting for a hold to pass)."""
        video = [c for c in consumers if c.kind == "video"]
        if not video:
            return
        value = self.tick(now, sum(c.octets for c in video))
        share = None if value is None else value / len(video)
        held = [c for c in video if c.held_down]  # below their wish: a layer to win back
        if (share, len(video)) != self.given:
            self.given = (share, len(video))
            for consumer in video:
                consumer.on_bandwidth(share)
        elif share is not None:
            # the same share again to a consumer held below its wish: its layer choice waits for a
            # hold after each change (sfu.layer_selector), and an estimate that a padding probe
            # raised stays flat after it, so without this the step up it allows came only with the
            # estimate's next change, seconds later (360p -> 720p 8 s after the estimate allowed it,
            # benchmarks/network.py, Chromium subscriber, 2026-12-07)
            for consumer in held:
                consumer.on_bandwidth(share)
        if self._padding:
            est = self.estimator
            senders = [c for c in video if c.rtx]
            est.padding_probes = bool(senders)
            if senders and held and est.start_probe(now, sum(c.probe_goal() for c in video)) > 0:
                self.prober = senders[0]

    def padding_rate(self, now: float) -> float:
        """The padding bit rate a cluster wants now (0: none runs)."""
        return self.estimator.probe_padding(now)


def extension_ids(answer: Iterable[MediaSection]) -> tuple[int, int]:
    """``(transport-cc id, abs-send-time id)`` of an answer's m-lines (0: absent): one bundle, one
    id per extension (the first found; abs-send-time of a video m-line)."""
    twcc = abs_id = 0
    for section in answer:
        if section.rejected:
            continue
        twcc = twcc or section.extensions.get(EXT_TRANSPORT_CC, 0)
        if section.kind == "video":
            abs_id = abs_id or section.extensions.get(EXT_ABS_SEND_TIME, 0)
    return twcc, abs_id

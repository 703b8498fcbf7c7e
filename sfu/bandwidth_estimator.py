"""A receive-side estimate of a publisher's uplink, for the REMB sent back to it.

The delay-based part of Google Congestion Control (draft-ietf-rmcat-gcc-02, libwebrtc's
``RemoteBitrateEstimatorAbsSendTime`` with goog_cc's trendline filter): packets are grouped by
their send time (the abs-send-time header extension, 6.18 fixed-point seconds, 24 bits); from one
group to the next, the growth of the one-way delay (arrival delta minus send delta) is accumulated,
smoothed and fitted with a least-squares line over the last 20 groups. A slope that stays above an
adaptive threshold is *overuse* (a queue is building on the path), one below its negative is
*underuse* (a queue draining). An AIMD rate controller turns that into the estimate: on overuse,
0.85 x the bitrate actually received; otherwise up by 8% a second, or additively (about one packet
per response time) once near the capacity last measured at an overuse; never above 1.5 x the
received bitrate + 10 kbit/s (a receiver cannot vouch for more than it sees).

The loss-based part (draft section 6): the fraction of the publisher's packets lost, as the
server's own receiver reports count it, caps the estimate: over 10% lost -> the cap (at first the
bitrate sent) x (1 - loss / 2) per report, but not below 0.85 x the bitrate received; under 2% ->
the cap grows 5% per report and goes once it is above the delay estimate (only then: a queue that
stays full, which the delay filter cannot see, must not lift it). Chromium runs the same rule on
its side from the same reports, so this matters for senders that only obey REMB (aiortc).

Used for publishers that do not negotiate transport-cc (``sfu.transport_cc``: there the browser's
own send-side GCC decides). Time is passed in (seconds, monotonic); :meth:`on_packet` is the
receive path's call and allocates nothing (a few float operations; the filter runs once per group
of packets, ~30-60 times a second).
"""

from __future__ import annotations

import math

from .rtp import EXT_ABS_SEND_TIME

ABS_SEND_TIME_MS = 1000.0 / (1 << 18)  # one unit of abs-send-time (6.18 fixed point) in ms
GROUP_LENGTH_MS = 5.0  # packets sent within 5 ms of a group's first packet belong to it
BURST_DELTA_MS = 5.0  # ... as do packets arriving within 5 ms in a burst (sent earlier, queued)
MAX_BURST_MS = 100.0
RESET_GAP_MS = 3000.0  # arrival and send deltas further apart than this: start the filter afresh

# trendline filter and overuse detector (goog_cc trendline_estimator.cc defaults)
WINDOW = 20
SMOOTHING = 0.9
THRESHOLD_GAIN = 4.0
MIN_NUM_DELTAS = 60
K_UP = 0.0087
K_DOWN = 0.039
MAX_ADAPT_OFFSET_MS = 15.0
OVERUSING_TIME_MS = 10.0
INITIAL_THRESHOLD = 12.5

# AIMD rate control (aimd_rate_control.cc)
BETA = 0.85
INITIALIZATION_MS = 5000.0  # the first estimate is the received bitrate after 5 s (or an overuse)
FEEDBACK_INTERVAL_MS = 500.0  # the controller runs at least this often while packets arrive
DEFAULT_RTT_MS = 200.0
MIN_BITRATE = 30_000

# loss-based cap (draft-ietf-rmcat-gcc-02 section 6)
LOSS_HIGH = 0.10
LOSS_LOW = 0.02

RATE_BUCKET_MS = 50.0
RATE_BUCKETS = 20  # received bitrate over the last second

NORMAL = 0
UNDERUSING = 1
OVERUSING = 2

HOLD = 0
INCREASE = 1
DECREASE = 2


class ReceiveBandwidthEstimator:
    """The estimate of one publisher transport's uplink (see the module docstring).

    Feed every packet that carries abs-send-time (:meth:`on_packet`) and the loss fraction of each
    receiver report the server sends (:meth:`on_loss`); read :attr:`estimate` (bit/s, None until
    the first one: 5 s of packets, or an overuse earlier) for the REMB. :meth:`should_send` says
    when a REMB should go out ahead of the periodic one (the estimate fell by 3% or more since the
    last one sent, as libwebrtc's ``RemoteEstimatorProxy``/``RembThrottler`` do).
    """

    __slots__ = (
        "_acc_delay",
        "_bucket_index",
        "_buckets",
        "_first_arrival",
        "_g_arrival",
        "_g_first_arrival",
        "_g_first_send",
        "_g_send",
        "_hist_pos",
        "_hist_x",
        "_hist_y",
        "_hypothesis",
        "_last_change_ms",
        "_last_sent",
        "_last_threshold_ms",
        "_last_update_ms",
        "_link_dev",
        "_link_est",
        "_loss_cap",
        "_max_bitrate",
        "_num_deltas",
        "_overuse_count",
        "_p_arrival",
        "_p_send",
        "_prev_trend",
        "_rate_first_ms",
        "_rate_latest",
        "_smoothed",
        "_state",
        "_threshold",
        "_time_over",
        "delay_estimate",
        "overuses",
        "rtt_ms",
    )

    def __init__(self, max_bitrate: int = 10_000_000) -> None:
        self._max_bitrate = max_bitrate
        # the current group of packets (send times in abs-send-time units, unwrapped to the group)
        self._g_first_send = -1
        self._g_send = 0
        self._g_first_arrival = 0.0
        self._g_arrival = 0.0
        self._p_send = -1  # the previous complete group (its last send time and arrival)
        self._p_arrival = 0.0
        # trendline filter
        self._num_deltas = 0
        self._first_arrival = -1.0
        self._acc_delay = 0.0
        self._smoothed = 0.0
        self._hist_x = [0.0] * WINDOW
        self._hist_y = [0.0] * WINDOW
        self._hist_pos = 0
        self._prev_trend = 0.0
        # overuse detector
        self._threshold = INITIAL_THRESHOLD
        self._last_threshold_ms = -1.0
        self._time_over = -1.0
        self._overuse_count = 0
        self._hypothesis = NORMAL
        # received bitrate
        self._buckets = [0] * RATE_BUCKETS
        self._bucket_index = -1
        self._rate_first_ms = -1.0
        self._rate_latest = 0
        # rate control
        self._state = HOLD
        self._last_change_ms = -1.0
        self._last_update_ms = -1.0
        self._link_est = -1.0  # kbit/s at the last overuses (link capacity estimate), -1: none
        self._link_dev = 0.4
        self.delay_estimate: float | None = None
        self._loss_cap: float | None = None
        self._last_sent: int | None = None
        self.rtt_ms = DEFAULT_RTT_MS
        self.overuses = 0  # times the detector entered overuse

    # -- the receive path -------------------------------------------------------------------

    def on_packet(self, arrival: float, abs_send_time: int, size: int) -> None:
        """A packet of ``size`` bytes (the whole RTP packet) sent at ``abs_send_time`` (the 24-bit
        header extension value) arrived at ``arrival`` (seconds)."""
        now_ms = arrival * 1000.0
        index = int(now_ms // RATE_BUCKET_MS)
        if index != self._bucket_index:
            self._advance_rate(index, now_ms)
        self._buckets[index % RATE_BUCKETS] += size

        first = self._g_first_send
        if first < 0:
            self._g_first_send = self._g_send = abs_send_time
            self._g_first_arrival = self._g_arrival = now_ms
            return
        from_first = (abs_send_time - first) & 0xFFFFFF
        if from_first >= 0x800000:
            return  # sent before the current group: out of order, ignored (as libwebrtc)
        send = first + from_first  # unwrapped into the group's time line
        last = self._g_send
        if send <= last or (
            (now_ms - self._g_arrival) - (send - last) * ABS_SEND_TIME_MS < 0
            and now_ms - self._g_arrival <= BURST_DELTA_MS
            and now_ms - self._g_first_arrival < MAX_BURST_MS
        ):
            pass  # same send time, or a burst queued behind it: same group
        elif from_first * ABS_SEND_TIME_MS > GROUP_LENGTH_MS:
            self._close_group(send & 0xFFFFFF, now_ms)
            return
        if send > last:
            self._g_send = send
        self._g_arrival = now_ms

    def _close_group(self, send: int, now_ms: float) -> None:
        """A packet of a new group arrived: the current group is complete."""
        if self._p_send >= 0:
            send_delta = ((self._g_send - self._p_send) & 0xFFFFFF) * ABS_SEND_TIME_MS
            arrival_delta = self._g_arrival - self._p_arrival
            if arrival_delta < 0 or abs(arrival_delta - send_delta) > RESET_GAP_MS:
                self._reset_filter()
            else:
                self._update_trend(arrival_delta, send_delta, now_ms)
                self._maybe_control(now_ms)
        self._p_send = self._g_send & 0xFFFFFF
        self._p_arrival = self._g_arrival
        self._g_first_send = self._g_send = send
        self._g_first_arrival = self._g_arrival = now_ms

    def _reset_filter(self) -> None:
        self._num_deltas = 0
        self._first_arrival = -1.0
        self._acc_delay = self._smoothed = 0.0
        self._hist_pos = 0
        self._hypothesis = NORMAL
        self._time_over = -1.0
        self._overuse_count = 0

    def _advance_rate(self, index: int, now_ms: float) -> None:
        buckets = self._buckets
        if self._bucket_index < 0 or index - self._bucket_index >= RATE_BUCKETS:
            for i in range(RATE_BUCKETS):
                buckets[i] = 0
            if self._bucket_index < 0 or index - self._bucket_index > 2 * RATE_BUCKETS:
                self._rate_first_ms = now_ms  # a long pause: the rate starts again
        else:
            for i in range(self._bucket_index + 1, index + 1):
                buckets[i % RATE_BUCKETS] = 0
        self._bucket_index = index

    def received_bitrate(self, now: float) -> int | None:
        """Bit/s received over the last second (less just after the start); None before 0.5 s."""
        now_ms = now * 1000.0
        if self._rate_first_ms < 0 or now_ms - self._rate_first_ms < 500.0:
            return None
        index = int(now_ms // RATE_BUCKET_MS)
        if index != self._bucket_index:
            self._advance_rate(index, now_ms)
        span = min(RATE_BUCKETS * RATE_BUCKET_MS, now_ms - self._rate_first_ms)
        return int(sum(self._buckets) * 8000 / span)

    # -- trendline and detector --------------------------------------------------------------

    def _update_trend(self, recv_delta: float, send_delta: float, now_ms: float) -> None:
        self._num_deltas = min(self._num_deltas + 1, 1000)
        if self._first_arrival < 0:
            self._first_arrival = now_ms
        self._acc_delay += recv_delta - send_delta
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._acc_delay
        pos = self._hist_pos
        self._hist_x[pos % WINDOW] = now_ms - self._first_arrival
        self._hist_y[pos % WINDOW] = self._smoothed
        self._hist_pos = pos + 1
        trend = self._prev_trend
        if pos + 1 >= WINDOW:
            xs, ys = self._hist_x, self._hist_y
            x_avg = sum(xs) / WINDOW
            y_avg = sum(ys) / WINDOW
            num = den = 0.0
            for i in range(WINDOW):
                dx = xs[i] - x_avg
                num += dx * (ys[i] - y_avg)
                den += dx * dx
            if den > 0:
                trend = num / den
        self._detect(trend, send_delta, now_ms)

    def _detect(self, trend: float, send_delta: float, now_ms: float) -> None:
        if self._num_deltas < 2:
            self._hypothesis = NORMAL
            return
        modified = min(self._num_deltas, MIN_NUM_DELTAS) * trend * THRESHOLD_GAIN
        if modified > self._threshold:
            if self._time_over < 0:
                self._time_over = send_delta / 2
            else:
                self._time_over += send_delta
            self._overuse_count += 1
            if self._time_over > OVERUSING_TIME_MS and self._overuse_count > 1 and trend >= self._prev_trend:
                self._time_over = 0.0
                self._overuse_count = 0
                if self._hypothesis != OVERUSING:
                    self.overuses += 1
                self._hypothesis = OVERUSING
        elif modified < -self._threshold:
            self._time_over = -1.0
            self._overuse_count = 0
            self._hypothesis = UNDERUSING
        else:
            self._time_over = -1.0
            self._overuse_count = 0
            self._hypothesis = NORMAL
        self._prev_trend = trend
        # adaptive threshold
        if self._last_threshold_ms < 0:
            self._last_threshold_ms = now_ms
        if abs(modified) <= self._threshold + MAX_ADAPT_OFFSET_MS:
            k = K_DOWN if abs(modified) < self._threshold else K_UP
            dt = min(now_ms - self._last_threshold_ms, 100.0)
            self._threshold = min(600.0, max(6.0, self._threshold + k * (abs(modified) - self._threshold) * dt))
        self._last_threshold_ms = now_ms

    @property
    def hypothesis(self) -> int:
        """:data:`NORMAL`, :data:`UNDERUSING` or :data:`OVERUSING`."""
        return self._hypothesis

    # -- rate control ------------------------------------------------------------------------

    def _maybe_control(self, now_ms: float) -> None:
        due = self._last_update_ms < 0 or now_ms - self._last_update_ms > FEEDBACK_INTERVAL_MS
        if not due and self._hypothesis == OVERUSING:
            # reduce again at most once per RTT (10..200 ms), or at once below half the estimate
            interval = min(200.0, max(10.0, self.rtt_ms))
            received = self.received_bitrate(now_ms / 1000.0)
            due = now_ms - self._last_change_ms >= interval or (
                self.delay_estimate is not None and received is not None and received < 0.5 * self.delay_estimate
            )
        if due:
            self.update(now_ms / 1000.0)

    def update(self, now: float) -> float | None:
        """Run the rate controller now (also from the caller's periodic tick, so the estimate moves
        while the publisher is paused); returns the delay-based estimate (bit/s) or None."""
        now_ms = now * 1000.0
        received = self.received_bitrate(now)
        if received is not None:
            self._rate_latest = received
        throughput = float(self._rate_latest)
        usage = self._hypothesis
        if self.delay_estimate is None:
            if usage != OVERUSING or received is None:
                if received is not None and now_ms - self._rate_first_ms >= INITIALIZATION_MS:
                    self.delay_estimate = max(float(MIN_BITRATE), throughput)
                    self._last_change_ms = now_ms
                self._last_update_ms = now_ms
                return self.delay_estimate
            self.delay_estimate = throughput  # an overuse before the estimate: start from the rate
        current = self.delay_estimate
        # state machine
        if usage == NORMAL:
            if self._state == HOLD:
                self._last_change_ms = now_ms
                self._state = INCREASE
        elif usage == OVERUSING:
            self._state = DECREASE
        else:
            self._state = HOLD
        new = current
        limit = 1.5 * throughput + 10_000.0
        if self._state == INCREASE:
            kbps = throughput / 1000.0
            if self._link_est >= 0 and kbps > self._link_est + 3 * math.sqrt(self._link_dev * self._link_est):
                self._link_est = -1.0  # well above the last capacity: it grew
            if current < limit:
                dt = max(0.0, now_ms - self._last_change_ms)
                if self._link_est >= 0:
                    frame = current / 30.0
                    packets = math.ceil(frame / (8 * 1200))
                    per_s = max(4000.0, (frame / max(1, packets)) * 1000.0 / (self.rtt_ms + 100.0))
                    new = current + per_s * dt / 1000.0
                else:
                    new = current + max(1000.0, current * (1.08 ** (min(dt, 1000.0) / 1000.0) - 1))
                new = min(new, limit)
            self._last_change_ms = now_ms
        elif self._state == DECREASE:
            decreased = BETA * throughput
            if decreased > current and self._link_est >= 0:
                decreased = BETA * self._link_est * 1000.0
            if decreased < current:
                new = decreased
            kbps = throughput / 1000.0
            if self._link_est >= 0 and kbps < self._link_est - 3 * math.sqrt(self._link_dev * self._link_est):
                self._link_est = -1.0
            self._on_capacity_sample(kbps)
            self._state = HOLD
            self._last_change_ms = now_ms
        self.delay_estimate = min(float(self._max_bitrate), max(float(MIN_BITRATE), new))
        self._last_update_ms = now_ms
        return self.delay_estimate

    def _on_capacity_sample(self, kbps: float) -> None:
        alpha = 0.05
        est = kbps if self._link_est < 0 else (1 - alpha) * self._link_est + alpha * kbps
        norm = max(est, 1.0)
        self._link_dev = min(2.5, max(0.4, (1 - alpha) * self._link_dev + alpha * (est - kbps) ** 2 / norm))
        self._link_est = est

    # -- loss --------------------------------------------------------------------------------

    def on_loss(self, now: float, fraction: float) -> None:
        """The loss fraction (0..1) of the publisher's packets over the last report interval (the
        server's own receiver report; ``fraction_lost / 256``)."""
        received = self.received_bitrate(now)
        if fraction > LOSS_HIGH and received is not None:
            # GCC: A = A_prev x (1 - loss / 2); the first time, A_prev is what the sender sends
            # (the received bitrate before the loss), not the estimate, which may be far above it
            base = self._loss_cap if self._loss_cap is not None else received / (1 - min(fraction, 0.9))
            # never below BETA x what gets through: the path carries at least that much (a sender
            # that cannot go lower, an encoder overshooting its target, must not drive the estimate
            # to the floor report after report)
            self._loss_cap = max(base * (1 - 0.5 * fraction), BETA * received)
        elif fraction < LOSS_LOW and self._loss_cap is not None:
            self._loss_cap *= 1.05
            if self.delay_estimate is not None and self._loss_cap > self.delay_estimate:
                self._loss_cap = None

    # -- the output --------------------------------------------------------------------------

    @property
    def estimate(self) -> int | None:
        """The bit/s to announce in REMB: the delay-based estimate, capped by the loss-based one;
        None before there is either."""
        est = self.delay_estimate
        cap = self._loss_cap
        if est is None:
            return None if cap is None else max(MIN_BITRATE, int(cap))
        return max(MIN_BITRATE, int(est if cap is None else min(est, cap)))

    def should_send(self) -> bool:
        """Whether the estimate fell by 3% or more since the last :meth:`sent` (send a REMB now)."""
        est = self.estimate
        return est is not None and (self._last_sent is None or est < 0.97 * self._last_sent)

    def sent(self, bitrate: int) -> None:
        """The caller sent a REMB with ``bitrate``."""
        self._last_sent = bitrate


__all__ = ["EXT_ABS_SEND_TIME", "NORMAL", "OVERUSING", "UNDERUSING", "ReceiveBandwidthEstimator"]

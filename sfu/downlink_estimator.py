"""The bandwidth available towards one subscriber, for its simulcast layer choice.

A forwarding server sends what publishers send; it cannot shape video to a rate, only choose a
layer (``sfu.layer_selector``, input ``available_bps``). What it learns of a subscriber's downlink:

- **loss** from the subscriber's receiver reports (the fraction lost of each video stream since its
  previous report, weighted by the packets sent): over 10% is congestion, the estimate becomes
  what got through (the bitrate sent x (1 - loss)) x 0.9, and while such loss persists it keeps
  falling by (1 - loss / 2) per report as in GCC's loss-based controller (a layer just above the
  link's rate would otherwise sit in the layer selector's dead band, losing packets); 2-10% holds
  it; under 2% lets it grow;
- **queueing** from the round-trip times of the same reports: an RTT above the smallest one seen
  (over the last 30 s) by more than :data:`QUEUE_DELAY` means a queue is building before it drops
  anything (tc tbf, a Wi-Fi access point): the estimate becomes 0.85 x the bitrate sent;
- **REMB** from the subscriber (its own receive-side delay estimate): one below 0.9 x the bitrate
  sent, and falling, says the receiver sees overuse; the estimate becomes at most that (a flat or
  rising one below what is sent is a receiver catching up after a step up; one under
  :data:`REMB_FLOOR` x what is sent, outside a padding cluster, is a receiver still climbing back
  after a limit, not an overuse, which lands near 0.85 x what it receives). A REMB above what is
  sent says nothing more (a receiver never vouches for more than 1.5 x what it receives), so it is
  not used to go up.

Without congestion there is no evidence of more room (no padding probes yet), so going up is a
probe by growth: ``hold`` seconds after the last congestion, the estimate grows by ``growth`` per
second (20%: from a 500 kbit/s link's estimate to a 1.7 Mbit/s layer in ~7 s). Growing more than
10% above the rate where the last congestion happened (the *ceiling*) is a probe; congestion within
:data:`PROBE_WINDOW` of that is a failed probe and doubles ``hold`` (4, 8, 16, 30 s at most), so a
link that stays too small for the next layer is probed less and less often instead of flapping; a
probe that meets no congestion for :data:`PROBE_WINDOW` resets ``hold``. Before the first
congestion, and once the estimate grows past ``max_bps``, there is no estimate (None: the layer
selector then follows the subscriber's wish, as without this module). The first cut after such a
time is taken x :data:`FRESH_FACTOR` lower (its report saw only the start of the limit).

**Padding probes** (with :attr:`DownlinkEstimator.padding_probes`: the subscriber negotiated RTX,
so the server can send padding-only RTX packets that its receiver drops): instead of growing into
a higher layer with the media itself, the transport asks :meth:`DownlinkEstimator.start_probe`
with the *probe goal* (what its video consumers would send one layer up); once the link has been
quiet for :data:`PROBE_QUIET`, a cluster of :data:`PROBE_DURATION` tops what is sent up to the
goal x :data:`PROBE_MARGIN` with padding (:meth:`DownlinkEstimator.probe_padding`). The first
receiver report at least :data:`PROBE_SETTLE` after the cluster judges it (one sent sooner may not
count the losses of its last packets, still in the bottleneck's queue): low loss and no queue, the
estimate becomes the rate probed at once (the layer steps up without waiting for growth); loss, a
queue (an RTT :data:`PROBE_QUEUE_DELAY` above the smallest), a REMB cut during it or until that
report, or :data:`PROBE_NACKS` packets NACKed during it (the quickest sign: the cluster stops at
once), the probe failed: the padding stops, the estimate is not cut for it (the probe caused it, nor
for the reports within :data:`PROBE_AFTERMATH` after), and the next probe waits twice as long
(:data:`PROBE_INTERVAL`, at most :data:`MAX_PROBE_INTERVAL`: a limit lifted just after a failed
cluster is found within ~5 s). A failure that the REMB alone saw (no loss, no NACK, no queue in
the RTT) cost nothing and also comes on a free link: the next cluster waits :data:`PROBE_INTERVAL`.
A success followed by congestion within :data:`PROBE_WINDOW` (the layer did not fit after all)
counts as a failed probe of the growth kind too (hold doubled) and sets the padding interval to its
maximum. With padding probes the estimate never grows past the ceiling: going higher is their job.

Time is passed in (seconds, monotonic); nothing here is on the packet path: the transport feeds
the reports as they come and calls :meth:`DownlinkEstimator.update` on its periodic tick with the
bitrate it sent to the subscriber (video, over the last tick).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)  # cluster outcomes and cuts, at DEBUG (a few a minute when limited)

LOSS_HIGH = 0.10
LOSS_LOW = 0.02
DELIVERED_FACTOR = 0.9  # on loss: the estimate is 0.9 x what got through
FRESH_FACTOR = 0.55  # the first cut (loss, queue or REMB) after a time without any limit seen is x this
QUEUE_FACTOR = 0.85  # on queueing (RTT) : 0.85 x the bitrate sent
REMB_OVERUSE = 0.9  # a REMB under 0.9 x the bitrate sent is overuse
PERSIST_FACTOR = 0.7  # congestion that persists lowers the estimate further only while it is >= 0.7 x
# the bitrate sent (below that the layer selector steps down by itself once its hold time is over)
QUEUE_DELAY = 0.15  # s of RTT above the minimum that count as a queue building
MIN_RTT_WINDOW = 30.0  # s the smallest RTT is remembered
REMB_FALL = 0.97  # a REMB under 0.97 x the previous one is falling (the receiver saw overuse)
REMB_MAX_AGE = 5.0  # s a REMB (per key) counts
REMB_FLOOR = 0.5  # outside a padding cluster, a falling REMB under 0.5 x the bitrate sent cuts nothing
PROBE_WINDOW = 8.0  # s after the estimate passed 1.1 x the ceiling, a congestion is a failed probe
GROWTH = 0.2  # per second, after ``hold`` without congestion
HOLD = 4.0
MAX_HOLD = 30.0
MIN_BPS = 50_000
MAX_BPS = 20_000_000
PROBE_DURATION = 0.5  # s of padding per cluster: at PROBE_MARGIN 2 it overflows a 200-ms queue on a
# 500 kbit/s link after ~0.3 s, and its failures froze a 180p subscriber 0.2-0.35 s; 1-s clusters
# froze it 0.4-0.8 s (benchmarks/network.py, Chromium subscriber, 2026-12-07)
PROBE_QUEUE_DELAY = 0.05  # s of RTT above the minimum that fail a cluster (a shorter cluster fills a
# queue less: it shows as tens of ms, not QUEUE_DELAY's 150)
PROBE_NACKS = 2  # packets the subscriber NACKs during a cluster that end it at once, as failed: a
# tail-dropping queue is full, and a receiver report, up to a second later, let a 1-s cluster to
# 860 kbit/s on a 500 kbit/s link drop ~40 kB, and the keyframe requests that followed kept a 360p
# layer frozen for seconds (benchmarks/network.py, Chromium subscriber, 2026-12-07)
PROBE_MARGIN = 2.0  # a cluster sends up to the probe goal x this (media + padding): a layer is taken
# only where the link shows room for 2x its bitrate (its audio, retransmissions and keyframe bursts
# beside it). At 1.15 and 1.3 a 360p layer (~350 kbit/s) won on a 500 kbit/s link and froze within
# seconds; at 1.5 (~520 kbit/s) the cluster barely exceeds that link: only the receiver's REMB or
# an RTT sample saw it, and once neither did (360p taken, a 1-s freeze); at 2 it fills tc tbf's
# queue and drops: a failure seen by its NACKs or loss (benchmarks/network.py, Chromium
# subscriber, 2026-12-07)
PROBE_QUIET = 2.0  # s without congestion (or moderate loss) before a cluster
PROBE_SETTLE = 0.5  # s after a cluster before a receiver report may confirm it: one sent sooner was
# made before the cluster's last packets left the bottleneck's queue (up to its depth, 200 ms at tc
# tbf) and may count none of its losses (a 0.5-s cluster at 720 kbit/s on a 500 kbit/s link was
# confirmed by the report that came as it ended: 360p taken, frozen, dropped 2 s later,
# benchmarks/network.py, Chromium subscriber, 2026-12-07)
PROBE_REPORT_WAIT = 2.0  # s after a cluster for the receiver report that judges it (Chromium reports
# about once a second: the first one past PROBE_SETTLE)
PROBE_AFTERMATH = 2.5  # s after a failed cluster whose reports cut nothing: they carry its own loss and
# queue (an RTT 150-180 ms up 2.3 s after a cluster stopped by NACKs cut a 180p subscriber's estimate
# to 125 kbit/s and delayed the next cluster, benchmarks/network.py, Chromium subscriber, 2026-12-07)
PROBE_INTERVAL = 2.0  # s between clusters after a success or a first failure; doubles per failure
MAX_PROBE_INTERVAL = 4.0  # a failed cluster costs a queue and a few packets: probe often enough to be back
# within 15 s (at 6 s, with the quiet time, a limit lifted just after a failed cluster waited ~7 s
# for the next one, and the climb 180p -> 360p -> 720p took 16-17 s in 2 of 6 runs)
SEND_SMOOTHING = 0.25  # weight of each tick's bitrate in the smoothed bitrate sent (~1 s at 0.25 s ticks)


@dataclass(slots=True)
class DownlinkStats:
    congestions: int = 0  # times the estimate was cut
    by_loss: int = 0
    by_queue: int = 0
    by_remb: int = 0
    probes: int = 0  # times the estimate grew past 1.1 x the ceiling
    failed_probes: int = 0
    padding_probes: int = 0  # padding clusters started
    padding_successes: int = 0  # clusters the next report confirmed (the estimate went up)
    padding_failures: int = 0  # clusters met by congestion (or left unjudged)
    padding_nack_stops: int = 0  # of those, clusters stopped by the subscriber's NACKs


class DownlinkEstimator:
    """The estimate of one subscriber's downlink (see the module docstring)."""

    __slots__ = (
        "_ceiling",
        "_congestion_at",
        "_growth",
        "_hold",
        "_hold_base",
        "_last_update",
        "_loss_sum",
        "_loss_weight",
        "_max_bps",
        "_max_hold",
        "_min_rtt",
        "_min_rtt_at",
        "_moderate_at",
        "_pp_end",
        "_pp_failed_at",
        "_pp_interval",
        "_pp_nacked",
        "_pp_next_at",
        "_pp_padding",
        "_pp_rate",
        "_pp_rtt",
        "_pp_start",
        "_prev_rtt",
        "_prev_rtt_at",
        "_probe_at",
        "_queueing",
        "_remb_fresh",
        "_remb_total",
        "_rembs",
        "_rtt_growth",
        "_sent",
        "_was_congested",
        "estimate",
        "loss",
        "padding_probes",
        "rtt",
        "stats",
    )

    def __init__(
        self,
        *,
        growth: float = GROWTH,
        hold: float = HOLD,
        max_hold: float = MAX_HOLD,
        max_bps: float = MAX_BPS,
    ) -> None:
        self._growth = growth
        self._hold_base = self._hold = hold
        self._max_hold = max_hold
        self._max_bps = max_bps
        self.estimate: float | None = None  # bit/s, None: no evidence of a limit
        self.loss = 0.0  # the last evaluated loss fraction
        self.rtt: float | None = None
        self.stats = DownlinkStats()
        self._loss_sum = 0.0
        self._loss_weight = 0.0
        self._min_rtt = -1.0
        self._min_rtt_at = 0.0
        self._queueing = False
        self._prev_rtt = -1.0
        self._prev_rtt_at = 0.0
        self._rtt_growth = 0.0  # s of RTT gained per s since the previous sample (a queue filling)
        self._rembs: dict[int, tuple[float, float]] = {}  # key -> (bitrate, when)
        self._remb_fresh = False
        self._remb_total = float("inf")  # the last REMB sum (inf: none yet, the first one may cut)
        self._sent = -1.0  # smoothed bit/s sent, -1 before the first update
        self._ceiling = -1.0  # bit/s where the last congestion happened
        self._congestion_at = -1e9
        self._moderate_at = -1e9  # last time loss was between LOSS_LOW and LOSS_HIGH
        self._probe_at = -1.0  # when the estimate passed 1.1 x the ceiling (-1: not probing)
        self._last_update = -1.0
        self._was_congested = False  # the previous update cut the estimate
        self.padding_probes = False  # the transport can send padding (RTX negotiated): probe with it
        self._pp_start = -1.0  # the current padding cluster (-1: none)
        self._pp_end = -1.0
        self._pp_rate = 0.0  # bit/s the cluster tests (media + padding)
        self._pp_padding = 0.0  # bit/s of padding in it
        self._pp_interval = PROBE_INTERVAL
        self._pp_next_at = -1e9
        self._pp_nacked = 0  # packets NACKed during the current cluster
        self._pp_rtt = -1.0  # the largest RTT measured since the cluster started
        self._pp_failed_at = -1e9  # when the last cluster failed

    @property
    def hold(self) -> float:
        """Seconds without congestion before the estimate grows (doubles after a failed probe)."""
        return self._hold

    # -- inputs ------------------------------------------------------------------------------

    def on_loss(self, fraction: float, weight: float = 1.0) -> None:
        """One receiver report block of a video stream: ``fraction`` lost (0..1, the block's
        ``fraction_lost / 256``) over ``weight`` packets (sent on it since its previous report)."""
        if weight > 0:
            self._loss_sum += min(1.0, max(0.0, fraction)) * weight
            self._loss_weight += weight

    def on_rtt(self, now: float, rtt: float) -> None:
        """A round-trip time measured from a receiver report (LSR/DLSR)."""
        if rtt <= 0:
            return
        self.rtt = rtt
        if self._pp_start >= 0 and rtt > self._pp_rtt:
            self._pp_rtt = rtt
        if self._prev_rtt >= 0 and now > self._prev_rtt_at:
            self._rtt_growth = max(0.0, (rtt - self._prev_rtt) / (now - self._prev_rtt_at))
        self._prev_rtt = rtt
        self._prev_rtt_at = now
        if self._min_rtt < 0 or rtt <= self._min_rtt or now - self._min_rtt_at > MIN_RTT_WINDOW:
            self._min_rtt = rtt
            self._min_rtt_at = now
        elif rtt > self._min_rtt + QUEUE_DELAY:
            self._queueing = True

    def on_remb(self, now: float, bitrate: float, key: int = 0) -> None:
        """A REMB from the subscriber (``key``: one per estimator on its side, e.g. the first SSRC
        it names; aiortc sends one per track, Chromium one for all; the fresh ones are summed)."""
        self._rembs[key] = (float(bitrate), now)
        self._remb_fresh = True

    # -- padding probes ----------------------------------------------------------------------

    def start_probe(self, now: float, goal_bps: float) -> float:
        """Start a padding cluster towards ``goal_bps`` (the video bitrate the consumers would send
        one layer up) if one may start now: padding probes on, an estimate below the goal (a limit
        was seen), the link quiet for :data:`PROBE_QUIET`, the interval since the last cluster
        over. Returns the padding bit rate to send now (0: no cluster)."""
        if not self.padding_probes or self._pp_start >= 0 or self.estimate is None or self._sent <= 0:
            return 0.0
        if goal_bps <= self.estimate or now < self._pp_next_at:
            return 0.0
        if now - self._congestion_at < PROBE_QUIET or now - self._moderate_at < PROBE_QUIET or self.loss >= LOSS_LOW:
            return 0.0
        rate = goal_bps * PROBE_MARGIN
        padding = rate - self._sent
        if padding <= 0:
            return 0.0
        self._pp_start, self._pp_end = now, now + PROBE_DURATION
        self._pp_nacked = 0
        self._pp_rtt = -1.0
        self._pp_rate, self._pp_padding = rate, padding
        self.stats.padding_probes += 1
        log.debug("cluster %.1f: %.0f kbit/s (padding %.0f, sent %.0f, estimate %.0f)", now, rate / 1000,
                  padding / 1000, self._sent / 1000, self.estimate / 1000)
        return padding

    def on_nack(self, now: float, count: int) -> None:
        """The subscriber NACKed ``count`` packets of a video stream. Outside a cluster nothing (its
        receiver reports carry the loss); during one (or in the report wait after it) they are the
        quickest sign that the probe overflows the link: :data:`PROBE_NACKS` end it as failed."""
        if self._pp_start < 0 or count <= 0:
            return
        self._pp_nacked += count
        if self._pp_nacked >= PROBE_NACKS:
            self._congestion_at = now
            self.stats.padding_nack_stops += 1
            self._end_probe(now, success=False, why="nacks")

    def probe_padding(self, now: float) -> float:
        """The padding bit rate to send now (0 outside a cluster, or once it failed)."""
        if self._pp_start >= 0 and now < self._pp_end:
            return self._pp_padding
        return 0.0

    @property
    def probing(self) -> bool:
        """A cluster is running or waits for the report that judges it."""
        return self._pp_start >= 0

    def _end_probe(self, now: float, success: bool, why: str = "", gentle: bool = False) -> None:
        """``gentle``: a failure that the receiver's REMB alone saw (no loss, no NACK, no queue in
        the RTT): the next cluster comes after :data:`PROBE_INTERVAL`, the back-off unchanged."""
        log.debug("cluster end %.1f: %s %s (nacked %d, rtt %.3f min %.3f, loss %.3f)", now,
                  "ok" if success else "failed", why, self._pp_nacked, self._pp_rtt, self._min_rtt, self.loss)
        self._pp_start = self._pp_end = -1.0
        self._pp_padding = 0.0
        if success:
            self.stats.padding_successes += 1
            self._pp_interval = PROBE_INTERVAL
            est = self.estimate
            if est is not None and self._pp_rate > est:
                self.estimate = self._pp_rate
                self._probe_at = now  # congestion soon after: the step up did not fit (failed probe)
        else:
            self.stats.padding_failures += 1
            self._pp_failed_at = now
            if gentle:
                self._pp_next_at = now + PROBE_INTERVAL
                return
            self._pp_interval = min(MAX_PROBE_INTERVAL, self._pp_interval * 2)
        self._pp_next_at = now + self._pp_interval

    # -- the tick ----------------------------------------------------------------------------

    def update(self, now: float, sent_bps: float) -> float | None:
        """Fold in what arrived since the last call; ``sent_bps``: the video bitrate sent to the
        subscriber since the last call. Returns :attr:`estimate`."""
        dt = 0.0 if self._last_update < 0 else max(0.0, now - self._last_update)
        self._last_update = now
        sent = self._sent = (
            sent_bps if self._sent < 0 else (1 - SEND_SMOOTHING) * self._sent + SEND_SMOOTHING * sent_bps
        )
        cut = -1.0
        remb_only = False  # the cut is the REMB's alone (no loss, no queue)
        reported = self._loss_weight > 0
        queueing = self._queueing
        if reported:
            p = self.loss = self._loss_sum / self._loss_weight
            self._loss_sum = self._loss_weight = 0.0
            if p > LOSS_HIGH:
                # what got through, less what filled the queue meanwhile (the RTT's growth x the
                # capacity: C = sent (1 - p) - growth C)
                cut = sent * (1 - p) * DELIVERED_FACTOR / (1 + self._rtt_growth)
                if self.estimate is not None and self.estimate >= PERSIST_FACTOR * sent:
                    # loss that persists while the estimate is near what is sent (a layer just above
                    # the link, in the selector's dead band) keeps cutting: x (1 - p/2), GCC's rule
                    cut = min(cut, self.estimate * (1 - 0.5 * p))
                cut = max(MIN_BPS, cut)
                self.stats.by_loss += 1
            elif p >= LOSS_LOW:
                self._moderate_at = now
        if self._queueing:
            self._queueing = False
            # the queue grows by (sent - C) / C seconds per second: C = sent / (1 + growth)
            queue_cut = sent * QUEUE_FACTOR / (1 + self._rtt_growth)
            if self.estimate is not None and self._was_congested and self.estimate >= PERSIST_FACTOR * sent:
                queue_cut = min(queue_cut, self.estimate * QUEUE_FACTOR)  # still queueing: lower again
            queue_cut = max(MIN_BPS, queue_cut)
            if cut < 0 or queue_cut < cut:
                cut = queue_cut
            self.stats.by_queue += 1
        if self._remb_fresh:
            self._remb_fresh = False
            total = 0.0
            for key in [k for k, (_, at) in self._rembs.items() if now - at > REMB_MAX_AGE]:
                del self._rembs[key]
            for bitrate, _ in self._rembs.values():
                total += bitrate
            falling = total < REMB_FALL * self._remb_total
            self._remb_total = total
            # a REMB below what is sent is overuse only while it falls: after a step up the
            # receiver's estimate (never above 1.5 x what it receives) climbs from the old layer
            # for seconds, flat or rising, and cutting on it refuted every successful padding probe
            # (Chromium subscriber, benchmarks/network.py, 2026-12-07: 175 kbit/s against 340 sent)
            # Nor is one far below what is sent, outside a cluster: the receiver's estimate climbs
            # back slowly after a limit is lifted (143 -> 341 kbit/s over 18 s while 740 arrived
            # without loss), and a 3% dip on the way cut a layer a cluster had just won
            # (benchmarks/network.py, Chromium subscriber, 2026-12-07); an overuse it saw itself
            # lands near 0.85 x what it receives.
            if (sent > 0 and total < REMB_OVERUSE * sent and falling
                    and (self._pp_start >= 0 or total >= REMB_FLOOR * sent)):
                remb_cut = max(MIN_BPS, total)
                remb_only = cut < 0
                if cut < 0 or remb_cut < cut:
                    cut = remb_cut
                self.stats.by_remb += 1
        self._was_congested = cut >= 0
        if self._pp_start >= 0:
            if cut >= 0 or (reported and self.loss >= LOSS_LOW):
                # congestion while (or just after) padding ran: the probe caused it, nothing to cut.
                # A falling REMB alone failed it before any loss or queue showed: it cost nothing, and
                # such a REMB also comes on a free link (Chromium's estimate halved during a cluster
                # just after a limit was lifted: 307 -> 157 kbit/s, benchmarks/network.py,
                # 2026-12-07), so the next cluster does not wait longer for it.
                gentle = (remb_only and not (reported and self.loss >= LOSS_LOW) and self._pp_nacked == 0
                          and not (self._min_rtt >= 0 and self._pp_rtt > self._min_rtt + PROBE_QUEUE_DELAY))
                self._congestion_at = now
                self._end_probe(now, success=False, why=f"cut {cut:.0f}", gentle=gentle)
                return self.estimate
            if self._min_rtt >= 0 and self._pp_rtt > self._min_rtt + PROBE_QUEUE_DELAY:
                self._congestion_at = now  # the cluster built a queue: failed, nothing to cut
                self._end_probe(now, success=False, why="rtt")
                return self.estimate
            if reported and now >= self._pp_end + PROBE_SETTLE and not queueing:
                self._end_probe(now, success=True)
                self._ceiling = self.estimate if self.estimate is not None else self._ceiling
                return self.estimate
            if now > self._pp_end + PROBE_REPORT_WAIT:
                self._end_probe(now, success=False, why="unjudged")  # no report judged it
        if cut >= 0 and now - self._pp_failed_at <= PROBE_AFTERMATH:
            # the reports after a failed cluster (stopped early by NACKs, or judged by its RTT)
            # still carry its own loss: nothing to cut for it either
            self._congestion_at = now
        elif cut >= 0:
            self._on_congestion(now, cut)
        elif self.estimate is not None:
            self._grow(now, dt)
        return self.estimate

    def _on_congestion(self, now: float, cut: float) -> None:
        log.debug("congestion %.1f: cut %.0f (estimate %s, sent %.0f, loss %.3f, rtt %s min %.3f)", now, cut / 1000,
                  self.estimate, self._sent / 1000, self.loss, self.rtt, self._min_rtt)
        if self.estimate is None:
            # a limit where there was none: the first report saw only the start of it (its interval
            # began on a free link, a receiver's REMB lags), so the cut overstates the link, and a
            # layer chosen just under it froze for 1-3 s while the full queue drained (360p at ~350
            # kbit/s on 500 kbit/s, Chromium subscriber, benchmarks/network.py, 2026-12-07). The
            # padding probes win a layer back within seconds when it fits.
            cut = max(MIN_BPS, cut * FRESH_FACTOR)
        self._congestion_at = now
        if self.estimate is not None and cut >= self.estimate:
            return  # the tail of a congestion already acted upon (reports lag the cut)
        self.stats.congestions += 1
        if self._probe_at >= 0 and now - self._probe_at <= PROBE_WINDOW:
            self.stats.failed_probes += 1
            self._hold = min(self._max_hold, self._hold * 2)
            if self.padding_probes:
                self._pp_interval = MAX_PROBE_INTERVAL  # a padding success the media then refuted
                self._pp_next_at = now + MAX_PROBE_INTERVAL
            cut = min(cut, self._ceiling)  # back to what held before the probe
        self._probe_at = -1.0
        self._ceiling = cut
        self.estimate = cut

    def _grow(self, now: float, dt: float) -> None:
        est = self.estimate
        assert est is not None
        if self._probe_at >= 0 and now - self._probe_at > PROBE_WINDOW:
            self._probe_at = -1.0  # the probe held: the link grew
            self._ceiling = est
            self._hold = self._hold_base
        if now - self._congestion_at < self._hold or now - self._moderate_at < self._hold or self.loss >= LOSS_LOW:
            return
        grown = est * (1 + self._growth) ** dt
        threshold = 1.1 * self._ceiling
        if self.padding_probes and grown > self._ceiling:
            # beyond the last cut only a padding probe goes: growing 10% above it took a 360p layer
            # (340 kbit/s) that no cluster had shown room for on a 500 kbit/s link, and it froze for
            # 1.5 s (benchmarks/network.py, Chromium subscriber, 2026-12-07)
            grown = max(est, self._ceiling)
            if grown == est:
                return
        if self._probe_at < 0 and est <= threshold < grown:
            self._probe_at = now
            self.stats.probes += 1
        if grown > self._max_bps:
            self.estimate = None  # no limit seen for long: follow the subscriber's wish again
            self._probe_at = -1.0
            self._ceiling = -1.0
            self._hold = self._hold_base
            return
        self.estimate = grown

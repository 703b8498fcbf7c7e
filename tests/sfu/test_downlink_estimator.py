"""The bandwidth available towards a subscriber (sfu.downlink_estimator), alone and driving the
layer choice (sfu.layer_selector called as the consumer calls it) on a simulated downlink: the subscriber's
receiver report each second (loss of the last second, RTT with the queue's delay), the transport's
tick every 0.25 s, layers of 150 kbit/s, 600 kbit/s and 1.7 Mbit/s, a bottleneck with a 40 kB
FIFO (tc tbf) whose rate changes. Time is passed in."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sfu.downlink_estimator import (
    FRESH_FACTOR,
    HOLD,
    MAX_HOLD,
    DownlinkEstimator,
)
from sfu.layer_selector import HOLD_AFTER_UP, LayerState, select_layer

LAYERS = (150_000.0, 600_000.0, 1_700_000.0)
UNLIMITED = 50_000_000.0


@dataclass
class Tick:
    t: float
    layer: int | None
    estimate: float | None
    loss: float  # fraction dropped at the bottleneck during the tick
    queue_delay: float


def simulate(
    capacity_at: Callable[[float], float], seconds: float, est: DownlinkEstimator | None = None
) -> tuple[list[Tick], DownlinkEstimator]:
    est = est or DownlinkEstimator()
    layers = [LayerState(True, r) for r in LAYERS]
    dt = 0.05
    queue = 0.0
    qmax = 40_000.0
    current: int | None = None
    changed = 0.0
    last_step = 0
    rr_sent = rr_drop = tick_sent = tick_drop = 0.0
    log: list[Tick] = []
    step = 0
    while step * dt < seconds:
        step += 1
        t = round(step * dt, 6)
        capacity = capacity_at(t)
        sent = LAYERS[current if current is not None else 2] * dt / 8
        queue = queue + sent - min(queue + sent, capacity * dt / 8)
        drop = max(0.0, queue - qmax)
        queue -= drop
        rr_sent += sent
        rr_drop += drop
        tick_sent += sent
        tick_drop += drop
        delay = queue * 8 / capacity
        if step % 20 == 0:  # the subscriber's receiver report, every second
            est.on_loss(rr_drop / rr_sent, rr_sent / 1200)
            est.on_rtt(t, 0.04 + delay)
            rr_sent = rr_drop = 0.0
        if step % 5 == 0:  # the transport's tick
            value = est.update(t, tick_sent * 8 / 0.25)
            # as the consumer calls it with an estimate that is not a REMB
            new = select_layer(2, layers, current, value, t - changed, last_step=last_step, hold_after_up=HOLD_AFTER_UP)
            if new != current:
                last_step = 0 if current is None or new is None else (new > current) - (new < current)
                current, changed = new, t
            log.append(Tick(t, current, value, tick_drop / tick_sent, delay))
            tick_sent = tick_drop = 0.0
    return log, est


def first_time_on(log: list[Tick], after: float, layer: int) -> float:
    return next(x.t for x in log if x.t >= after and x.layer == layer) - after


def up_switches(log: list[Tick]) -> list[float]:
    return [
        b.t for a, b in itertools.pairwise(log) if a.layer is not None and b.layer is not None and b.layer > a.layer
    ]


def test_a_downlink_that_drops_to_500_kbits_is_on_the_low_layer_within_five_seconds() -> None:
    log, est = simulate(lambda t: 500_000.0 if t >= 10 else UNLIMITED, 20.0)
    assert all(x.layer == 2 and x.estimate is None for x in log if x.t < 10)  # no limit seen: the wish
    assert first_time_on(log, 10.0, 0) <= 5.0
    assert est.stats.by_loss >= 1


def test_after_the_limit_is_lifted_the_high_layer_comes_back() -> None:
    log, _est = simulate(lambda t: 500_000.0 if 10 <= t < 30 else UNLIMITED, 60.0)
    assert first_time_on(log, 10.0, 0) <= 5.0
    assert first_time_on(log, 30.0, 2) <= 15.0
    assert all(x.layer == 2 for x in log if x.t >= 45)
    # a failed probe (a step up while the link is still 500 kbit/s) steps back within
    # HOLD_AFTER_UP: the queue never holds half a second of video, nothing is dropped
    assert max(x.queue_delay for x in log if x.t >= 12) < 0.5
    assert all(x.loss < 0.1 for x in log if x.t >= 12)


def test_recovery_waits_at_most_the_longest_hold_plus_the_growth() -> None:
    log, _ = simulate(lambda t: 500_000.0 if 10 <= t < 60 else UNLIMITED, 110.0)
    assert first_time_on(log, 60.0, 2) <= MAX_HOLD + 12


def test_a_steady_link_between_two_layers_is_probed_less_and_less_often() -> None:
    log, est = simulate(lambda t: 1_000_000.0, 120.0)
    ups = up_switches(log)
    gaps = [b - a for a, b in itertools.pairwise(ups)]
    assert all(b >= a for a, b in itertools.pairwise(gaps)), ups  # backoff
    assert len(ups) <= 6, ups
    assert est.stats.failed_probes >= 1 and est.hold > HOLD
    # the layer that fits (600 kbit/s on 1 Mbit/s) is where it spends its time
    on_medium = sum(1 for x in log if x.t >= 10 and x.layer == 1) / sum(1 for x in log if x.t >= 10)
    assert on_medium > 0.7


def test_a_probe_that_holds_resets_the_backoff() -> None:
    log, est = simulate(lambda t: 1_000_000.0 if t < 40 else UNLIMITED, 90.0)
    assert est.stats.failed_probes >= 1
    assert all(x.layer == 2 for x in log if x.t >= 75)
    assert est.hold == HOLD


def test_no_estimate_until_congestion_and_none_again_after_long_growth() -> None:
    est = DownlinkEstimator(max_bps=2_000_000)
    for i in range(20):
        est.on_loss(0.0, 100)
        assert est.update(i * 0.25, 1_000_000) is None
    est.on_loss(0.5, 100)
    cut = est.update(5.25, 1_000_000)
    assert cut is not None and 200_000 < cut < 300_000  # what got through x 0.9 x FRESH_FACTOR (a first limit)
    t = 5.25
    while est.estimate is not None and t < 60:
        t += 0.25
        est.on_loss(0.0, 100)
        est.update(t, 1_000_000)
    assert est.estimate is None and t < 5.25 + HOLD + 20


def test_moderate_loss_holds_the_estimate() -> None:
    est = DownlinkEstimator()
    est.on_loss(0.3, 100)
    first = est.update(0.0, 1_000_000)
    t = 0.0
    for _ in range(40):
        t += 0.25
        est.on_loss(0.05, 100)
        assert est.update(t, 600_000) == first


def test_a_remb_below_what_is_sent_cuts_and_one_above_does_not_raise() -> None:
    est = DownlinkEstimator()
    est.on_remb(0.0, 2_000_000)
    assert est.update(0.0, 1_000_000) is None  # room to spare: no limit
    est.on_remb(0.25, 700_000)
    first = 700_000 * FRESH_FACTOR  # the first limit seen is taken lower (it lags the queue)
    assert est.update(0.25, 1_000_000) == first
    assert est.stats.by_remb == 1
    est.on_remb(0.5, 3_000_000)
    assert est.update(0.5, 700_000) == first
    est.estimate = 600_000
    est.on_remb(0.75, 500_000)  # falling, below what is sent: cut, now as it is
    assert est.update(0.75, 700_000) == 500_000
    est.on_remb(1.0, 500_000)  # flat (a receiver catching up after a step up): no further cut
    est.estimate = 600_000
    assert est.update(1.0, 700_000) == 600_000
    # falling but under REMB_FLOOR x what is sent (~730 kbit/s smoothed): a receiver's estimate
    # still climbing back after a limit, not an overuse it saw (that lands near 0.85 x received)
    est.on_remb(1.25, 300_000)
    assert est.update(1.25, 700_000) == 600_000 and est.stats.by_remb == 2


def test_rembs_of_several_keys_are_summed_and_stale_ones_forgotten() -> None:
    est = DownlinkEstimator()
    est.on_remb(0.0, 300_000, key=1)  # aiortc: one REMB per received track
    est.on_remb(0.0, 400_000, key=2)
    assert est.update(0.0, 600_000) is None  # 700k for 600k sent
    est.on_remb(6.0, 350_000, key=1)  # key 2's is 6 s old now
    assert est.update(6.0, 600_000) == 350_000 * FRESH_FACTOR


def test_a_growing_rtt_is_a_queue_before_any_loss() -> None:
    est = DownlinkEstimator()
    est.on_rtt(0.0, 0.05)
    est.on_rtt(1.0, 0.06)
    assert est.update(1.0, 1_000_000) is None
    est.on_rtt(2.0, 0.35)  # +0.29 s in one second: the queue grows by 0.29 s per s
    cut = est.update(2.0, 1_000_000)
    assert cut is not None and abs(cut - 1_000_000 * 0.85 / 1.29 * FRESH_FACTOR) < 1000
    assert est.stats.by_queue == 1

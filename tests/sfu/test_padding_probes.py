"""Padding probes towards a subscriber (sfu.downlink_estimator's padding clusters, as the transport
runs them): on the simulated downlink of test_downlink_estimator (receiver report each second,
tick every 0.25 s, layers of 150 kbit/s, 600 kbit/s and 1.7 Mbit/s, a 40 kB FIFO whose rate
changes), with the padding the estimator asks for added to what enters the bottleneck. Several
seeds shift the report times and the bitrates. Time is passed in."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sfu.downlink_estimator import (
    MAX_PROBE_INTERVAL,
    PROBE_AFTERMATH,
    PROBE_DURATION,
    PROBE_INTERVAL,
    PROBE_MARGIN,
    PROBE_NACKS,
    PROBE_SETTLE,
    DownlinkEstimator,
)
from sfu.layer_selector import HOLD_AFTER_UP, LayerState, select_layer

LAYERS = (150_000.0, 600_000.0, 1_700_000.0)
UNLIMITED = 50_000_000.0
SEEDS = [1, 2, 3, 4, 5]


@dataclass
class Tick:
    t: float
    layer: int | None
    estimate: float | None
    padding: float  # bit/s of padding during the tick
    loss: float


def simulate(
    capacity_at: Callable[[float], float], seconds: float, seed: int, padding_probes: bool = True
) -> tuple[list[Tick], DownlinkEstimator]:
    rng = random.Random(seed)
    est = DownlinkEstimator()
    est.padding_probes = padding_probes
    layers = [LayerState(True, r * rng.uniform(0.9, 1.1)) for r in LAYERS]
    dt = 0.05
    queue = 0.0
    qmax = 40_000.0
    current: int | None = None
    changed = 0.0
    last_step = 0
    rr_sent = rr_drop = tick_sent = tick_drop = tick_pad = 0.0
    rr_phase = rng.randrange(20)  # when in the second the subscriber's reports come
    log: list[Tick] = []
    step = 0
    padding = 0.0
    while step * dt < seconds:
        step += 1
        t = round(step * dt, 6)
        capacity = capacity_at(t)
        media = layers[current if current is not None else 2].bitrate * rng.uniform(0.8, 1.2) * dt / 8
        pad = est.probe_padding(t) * dt / 8
        sent = media + pad
        queue = queue + sent - min(queue + sent, capacity * dt / 8)
        drop = max(0.0, queue - qmax)
        queue -= drop
        media_drop = drop * media / sent if sent else 0.0  # a FIFO drops both alike
        if media_drop > 0:  # the subscriber NACKs what it misses at once (a gap in the numbers)
            est.on_nack(t, max(1, round(media_drop / 1200)))
        rr_sent += media
        rr_drop += media_drop
        tick_sent += media
        tick_drop += media_drop
        tick_pad += pad
        if step % 20 == rr_phase:  # the subscriber's receiver report (media SSRC), every second
            if rr_sent:
                est.on_loss(rr_drop / rr_sent, rr_sent / 1200)
            est.on_rtt(t, 0.04 + queue * 8 / capacity)
            rr_sent = rr_drop = 0.0
        if step % 5 == 0:  # the transport's tick
            value = est.update(t, tick_sent * 8 / 0.25)
            new = select_layer(2, layers, current, value, t - changed, last_step=last_step, hold_after_up=HOLD_AFTER_UP)
            if new != current:
                last_step = 0 if current is None or new is None else (new > current) - (new < current)
                current, changed = new, t
            # the probe goal: what the consumer would send one layer up (SubscriberCongestion)
            goal = layers[min(2, (current or 0) + 1)].bitrate
            padding = est.start_probe(t, goal)
            assert padding == 0 or padding + tick_sent * 8 / 0.25 <= goal * PROBE_MARGIN * 1.3
            log.append(Tick(t, current, value, tick_pad * 8 / 0.25, tick_drop / tick_sent if tick_sent else 0.0))
            tick_sent = tick_drop = tick_pad = 0.0
    return log, est


def first_time_on(log: list[Tick], after: float, layer: int) -> float:
    return next(x.t for x in log if x.t >= after and x.layer == layer) - after


def layer_changes(log: list[Tick], start: float, end: float) -> int:
    return sum(1 for a, b in itertools.pairwise(log) if start <= b.t < end and a.layer != b.layer)


@pytest.mark.parametrize("seed", SEEDS)
def test_after_a_500_kbits_limit_is_lifted_the_high_layer_is_back_within_15_s_without_flapping(seed: int) -> None:
    log, est = simulate(lambda t: 500_000.0 if 10 <= t < 30 else UNLIMITED, 60.0, seed)
    assert first_time_on(log, 30.0, 2) <= 15.0, [(x.t, x.layer) for x in log if x.t >= 30][:60]
    assert all(x.layer == 2 for x in log if x.t >= 45)
    # never flapping: under the limit the layer goes down to the low one and stays (the padding
    # probes fail, no layer is tried); after the lift it climbs 0 -> 1 -> 2 and stays
    assert all(x.layer == 0 for x in log if 20 <= x.t < 30), [(x.t, x.layer) for x in log]
    assert layer_changes(log, 20.0, 30.0) == 0
    assert layer_changes(log, 30.0, 60.0) <= 2
    assert est.stats.padding_successes >= 1 and est.stats.padding_failures >= 1


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_probe_clusters_are_few_short_and_never_on_a_congested_link(seed: int) -> None:
    log, est = simulate(lambda t: 500_000.0 if t >= 10 else UNLIMITED, 130.0, seed)
    padded = [x.t for x in log if x.padding > 0]
    clusters = [b for a, b in itertools.pairwise([-1.0, *padded]) if b - a > 0.3]
    minute = [c for c in clusters if 70 <= c < 130]
    assert len(minute) <= 60 / MAX_PROBE_INTERVAL + 1, clusters  # a few clusters a minute
    assert all(x.padding <= LAYERS[1] * 1.1 * PROBE_MARGIN for x in log)  # bounded by the goal
    # no padding while the link loses media (the estimator saw congestion: the cluster stops)
    congested = {x.t for x in log if x.loss > 0.1}
    assert not [x.t for x in log if x.padding > 0 and x.t - 0.25 in congested]
    assert est.stats.padding_successes == 0


def test_without_padding_the_estimator_grows_as_before() -> None:
    log, est = simulate(lambda t: 500_000.0 if 10 <= t < 30 else UNLIMITED, 60.0, 1, padding_probes=False)
    assert all(x.padding == 0 for x in log) and est.stats.padding_probes == 0
    assert first_time_on(log, 30.0, 2) <= 30.0


def _estimator_ready_to_probe() -> DownlinkEstimator:
    """A limit seen at t=0 (estimate ~250 kbit/s), then quiet reports: a cluster may start at t=5."""
    est = DownlinkEstimator()
    est.padding_probes = True
    est.on_loss(0.5, 100)
    est.update(0.0, 1_000_000)
    for i in range(1, 21):
        est.on_loss(0.0, 100)
        est.update(i * 0.25, 200_000)
    return est


def test_nacks_during_a_cluster_stop_it_at_once_as_failed() -> None:
    est = _estimator_ready_to_probe()
    assert est.start_probe(5.0, 600_000) > 0 and est.probe_padding(5.1) > 0
    est.on_nack(5.2, 1)  # one lost packet: not yet
    assert est.probe_padding(5.25) > 0
    est.on_nack(5.3, 1)  # a tail-dropping queue: the padding stops before the next receiver report
    assert est.probe_padding(5.35) == 0 and not est.probing
    assert est.stats.padding_nack_stops == 1 and est.stats.padding_failures == 1
    before = est.estimate
    est.on_loss(0.2, 100)  # the report that follows carries the cluster's own loss: no cut
    assert est.update(5.5, 200_000) == before and est.stats.congestions == 1
    est.on_loss(0.3, 100)  # loss after PROBE_AFTERMATH is the link's again
    assert est.update(5.3 + PROBE_AFTERMATH + 0.2, 200_000) < before


def test_a_cluster_that_builds_a_queue_fails_without_loss() -> None:
    est = _estimator_ready_to_probe()
    est.on_rtt(4.0, 0.04)  # the path's own round trip
    assert est.start_probe(5.0, 600_000) > 0
    est.on_rtt(5.6, 0.04 + 0.08)  # 80 ms more during the cluster: a queue (no loss yet)
    est.on_loss(0.0, 100)
    est.update(6.25, 600_000)
    assert not est.probing and est.stats.padding_failures == 1 and est.stats.padding_successes == 0


def test_a_report_right_after_a_cluster_does_not_confirm_it() -> None:
    """A report sent as the cluster ended may not count its last packets' losses (they wait in the
    bottleneck's queue): only one PROBE_SETTLE later judges it."""
    est = _estimator_ready_to_probe()
    assert est.start_probe(5.0, 600_000) > 0
    end = 5.0 + PROBE_DURATION
    est.on_loss(0.0, 100)
    est.update(end + 0.05, 200_000)
    assert est.probing and est.stats.padding_successes == 0
    est.on_loss(0.0, 100)
    assert est.update(end + PROBE_SETTLE + 0.05, 200_000) == 600_000 * PROBE_MARGIN
    assert not est.probing and est.stats.padding_successes == 1


def test_a_failure_the_remb_alone_saw_does_not_lengthen_the_wait() -> None:
    """A cluster failed by NACKs doubles the wait for the next one; one failed by a falling REMB
    alone (no loss, no NACK, no queue) does not: the next comes PROBE_INTERVAL later."""
    est = _estimator_ready_to_probe()
    est.on_remb(4.9, 400_000)
    est.update(4.9, 200_000)
    assert est.start_probe(5.0, 600_000) > 0
    est.on_nack(5.1, PROBE_NACKS)  # failed: the next cluster 2 x PROBE_INTERVAL later
    t = 5.1
    while not est.start_probe(t, 600_000):
        t = round(t + 0.25, 2)
        est.update(t, 200_000)
    assert t >= 5.1 + 2 * PROBE_INTERVAL
    est.on_remb(t + 0.2, 150_000)  # falling, 0.75 x what is sent: the receiver saw the queue grow
    est.update(t + 0.25, 200_000)
    assert not est.probing and est.stats.padding_failures == 2 and est.stats.padding_nack_stops == 1
    failed = t + 0.25
    t = failed
    while not est.start_probe(t, 600_000):
        t = round(t + 0.25, 2)
        est.on_remb(t, 150_000)
        est.update(t, 200_000)
    assert t - failed <= PROBE_INTERVAL + 0.25


def test_with_padding_probes_the_estimate_never_grows_past_its_last_cut() -> None:
    """Growing 10% above the last cut took a layer no cluster had shown room for: with padding
    probes the estimate stays at the cut until a cluster raises it."""
    est = _estimator_ready_to_probe()
    cut = est.estimate
    for i in range(21, 200):  # 45 s of quiet reports, no cluster asked for
        est.on_loss(0.0, 100)
        assert est.update(i * 0.25, 200_000) == cut
    est.padding_probes = False  # without: the probe by growth, as before
    for i in range(200, 240):
        est.on_loss(0.0, 100)
        est.update(i * 0.25, 200_000)
    assert est.estimate is not None and cut is not None and est.estimate > 1.05 * cut


def test_a_remb_failure_with_a_queue_in_the_rtt_lengthens_the_wait() -> None:
    """The REMB fell, and an RTT sample saw the cluster's queue too: a failure like any other."""
    est = _estimator_ready_to_probe()
    est.on_rtt(4.8, 0.04)
    est.on_remb(4.9, 400_000)
    est.update(4.9, 200_000)
    assert est.start_probe(5.0, 600_000) > 0
    est.on_rtt(5.3, 0.04 + 0.08)  # the queue the cluster builds
    est.on_remb(5.35, 150_000)
    est.update(5.5, 200_000)
    assert not est.probing and est.stats.padding_failures == 1
    t = 5.5
    while not est.start_probe(t, 600_000):
        t = round(t + 0.25, 2)
        est.on_remb(t, 150_000)
        est.update(t, 200_000)
    assert t - 5.5 >= 2 * PROBE_INTERVAL - 0.25

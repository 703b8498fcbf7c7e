"""The receive-side estimate of a publisher's uplink (sfu.bandwidth_estimator) on synthetic traces:
a sender that obeys the REMB it gets (as aiortc's does) or that takes the lower of the REMB and its
own loss-based rate (as Chromium without transport-cc), over a bottleneck link with a FIFO queue
(tc tbf's behaviour: a rate, a queue in bytes, drops when it is full) and 20 ms of propagation.
Simulated time is passed in; each trace takes well under a second to run."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from aiortc.rate import RemoteBitrateEstimator

from sfu.bandwidth_estimator import OVERUSING, ReceiveBandwidthEstimator

INITIAL_REMB = 3_000_000  # what the server announces until there is an estimate (remb_bitrate)
TICK = 0.25  # the transport's periodic work


@dataclass
class Link:
    """A bottleneck: ``capacity`` bit/s, a FIFO of ``queue_bytes``, then ``delay`` s."""

    capacity: float
    queue_bytes: int = 60_000
    delay: float = 0.02
    loss: float = 0.0
    free_at: float = 0.0
    rnd: random.Random = field(default_factory=lambda: random.Random(7))

    def send(self, now: float, size: int) -> float | None:
        backlog = max(0.0, self.free_at - now) * self.capacity / 8
        if backlog + size > self.queue_bytes:
            return None
        self.free_at = max(now, self.free_at) + size * 8 / self.capacity
        if self.loss and self.rnd.random() < self.loss:
            return None
        return self.free_at + self.delay


@dataclass
class Trace:
    times: list[float] = field(default_factory=list)
    estimates: list[int | None] = field(default_factory=list)
    sent_rate: list[float] = field(default_factory=list)
    overuses: int = 0

    def between(self, t0: float, t1: float) -> list[int]:
        return [e for t, e in zip(self.times, self.estimates, strict=True) if t0 <= t < t1 and e is not None]

    def rate_between(self, t0: float, t1: float) -> list[float]:
        return [r for t, r in zip(self.times, self.sent_rate, strict=True) if t0 <= t < t1]


def run(
    link: Link,
    seconds: float,
    *,
    chromium_like: bool = False,
    obeys: bool = True,
    max_rate: float = 2_500_000,
    events: dict[float, tuple[str, float]] | None = None,
    est: ReceiveBandwidthEstimator | None = None,
    reference: RemoteBitrateEstimator | None = None,
) -> tuple[Trace, ReceiveBandwidthEstimator, list[int]]:
    """Simulate ``seconds`` of a 30 fps video sender. The server ticks every 0.25 s: it feeds the
    loss of the last second into the estimator once a second and sends a REMB once a second or at
    once when the estimate fell (``should_send``); the REMB reaches the sender 10 ms later."""
    est = est or ReceiveBandwidthEstimator()
    events = dict(events or {})
    trace = Trace()
    remb = float(INITIAL_REMB)
    own = 300_000.0  # a Chromium-like sender's own loss-based rate, its start bitrate
    pending: list[tuple[float, float]] = []  # REMBs on their way (arrives at, bitrate)
    arrivals: list[tuple[float, int, int]] = []  # (arrival, abs-send-time, size), FIFO order
    next_tick = TICK
    last_remb_sent = -10.0
    last_loss = 0.0
    sent_pk = lost_pk = 0
    window_bytes = 0
    reference_out: list[int] = []
    t = 0.0
    frame = 1 / 30
    while t < seconds:
        for when in sorted(events):
            if when <= t:
                attr, setting = events.pop(when)
                setattr(link, attr, setting)
        while pending and pending[0][0] <= t:
            remb = pending.pop(0)[1]
        target = min(remb, max_rate, own if chromium_like else max_rate) if obeys else max_rate
        frame_bytes = max(200, int(target / 8 / 30))
        pace = 2.5 * target / 8  # bytes/s: libwebrtc's pacer factor
        send_t = t
        while frame_bytes > 0:
            size = min(1200, frame_bytes) + 40
            frame_bytes -= size - 40
            ast = int(send_t * (1 << 18)) & 0xFFFFFF
            arrival = link.send(send_t, size)
            sent_pk += 1
            window_bytes += size
            if arrival is None:
                lost_pk += 1
            else:
                arrivals.append((arrival, ast, size))
            send_t += size / pace
        t += frame
        # deliver what arrived by now, in order
        while arrivals and arrivals[0][0] <= t:
            arrival, ast, size = arrivals.pop(0)
            est.on_packet(arrival, ast, size)
            if reference is not None:
                out = reference.add(int(arrival * 1000), ast, size, 1)
                if out is not None:
                    reference_out.append(out[0])
        while next_tick <= t:
            now = next_tick
            next_tick += TICK
            if now - last_loss >= 1.0:
                fraction = lost_pk / sent_pk if sent_pk else 0.0
                est.on_loss(now, fraction)
                if chromium_like:  # Chromium's loss-based rule on the server's receiver report
                    if fraction > 0.10:
                        own *= 1 - 0.5 * fraction
                    elif fraction < 0.02:
                        own = min(own * 1.08, max_rate)
                trace.sent_rate.append(window_bytes * 8 / (now - last_loss))
                trace.times.append(now)
                trace.estimates.append(est.estimate)
                sent_pk = lost_pk = window_bytes = 0
                last_loss = now
            est.update(now)
            value = est.estimate
            if value is not None and (est.should_send() or now - last_remb_sent >= 1.0):
                est.sent(value)
                last_remb_sent = now
                pending.append((now + 0.01, float(value)))
    trace.overuses = est.overuses
    return trace, est, reference_out


def test_an_800_kbits_uplink_settles_near_800_kbits_within_a_few_seconds_and_stays() -> None:
    trace, _, _ = run(Link(capacity=800_000), 60.0)
    first = trace.between(0, 6)
    assert first and min(first) < 900_000  # the queue growing was seen early
    steady = trace.between(6, 60)
    assert all(560_000 <= e <= 960_000 for e in steady), steady
    assert sum(trace.rate_between(6, 60)) / len(trace.rate_between(6, 60)) > 0.7 * 800_000


def test_a_sender_taking_the_lower_of_remb_and_its_own_rate_settles_below_the_capacity() -> None:
    trace, _, _ = run(Link(capacity=800_000), 60.0, chromium_like=True)
    steady = trace.between(15, 60)
    assert all(500_000 <= e <= 1_000_000 for e in steady), steady
    rates = trace.rate_between(15, 60)
    assert sum(rates) / len(rates) > 0.6 * 800_000


def test_no_oscillation_on_a_steady_link_over_60_seconds() -> None:
    trace, _, _ = run(Link(capacity=1_500_000), 60.0)
    steady = trace.between(8, 60)
    # GCC's sawtooth (an overuse every few seconds) stays within a narrow band
    assert max(steady) / min(steady) < 1.6, steady
    assert all(steady[i + 1] / steady[i] > 0.8 for i in range(len(steady) - 1)), steady


def test_a_capacity_drop_is_followed_within_three_seconds_and_a_recovery_within_twenty() -> None:
    trace, _, _ = run(
        Link(capacity=2_500_000),
        60.0,
        events={20.0: ("capacity", 800_000.0), 30.0: ("capacity", 2_500_000.0)},
        max_rate=2_000_000,
    )
    before = trace.between(12, 20)
    assert min(before) > 1_500_000, before
    assert max(trace.between(22.5, 30)) < 900_000, trace.between(20, 30)
    assert max(trace.between(40, 50)) > 1_500_000, trace.between(30, 50)


def test_a_burst_of_random_loss_caps_the_estimate_and_it_recovers_after() -> None:
    trace, _, _ = run(
        Link(capacity=2_000_000),
        45.0,
        events={15.0: ("loss", 0.2), 20.0: ("loss", 0.0)},
        max_rate=1_200_000,
    )
    before = trace.between(10, 15)
    during = trace.between(17, 20)
    assert max(during) < 0.95 * min(before), (before, during)
    after = trace.between(38, 45)
    assert min(after) > 0.9 * min(before), trace.between(15, 45)


def test_a_sender_that_ignores_the_remb_does_not_drive_the_estimate_to_the_floor() -> None:
    # 1.5 Mbit/s into 800 kbit/s whatever the REMB says (an encoder overshooting its target): the
    # loss goes on report after report, the estimate stays near what gets through
    trace, _, _ = run(Link(capacity=800_000), 30.0, obeys=False, max_rate=1_500_000)
    late = trace.between(10, 30)
    assert all(0.8 * 0.85 * 800_000 <= e <= 800_000 for e in late), late


def test_the_estimate_agrees_with_aiortcs_receive_side_estimator_on_the_same_packets() -> None:
    reference = RemoteBitrateEstimator()
    trace, _, theirs = run(Link(capacity=1_000_000), 40.0, reference=reference)
    ours = trace.between(20, 40)
    assert theirs, "aiortc gave no estimate"
    late = theirs[len(theirs) // 2 :]
    mean_ours = sum(ours) / len(ours)
    mean_theirs = sum(late) / len(late)
    assert 0.7 < mean_ours / mean_theirs < 1.4, (mean_ours, mean_theirs)


def test_no_estimate_before_five_seconds_without_overuse_and_remb_throttling() -> None:
    est = ReceiveBandwidthEstimator()
    t = 0.0
    for i in range(120):  # 4 s of 300 kbit/s through an idle path
        t = i / 30
        est.on_packet(t + 0.02, int(t * (1 << 18)) & 0xFFFFFF, 1250)
        est.update(t)
    assert est.estimate is None and not est.should_send()
    for i in range(120, 200):
        t = i / 30
        est.on_packet(t + 0.02, int(t * (1 << 18)) & 0xFFFFFF, 1250)
        est.update(t)
    first = est.estimate
    assert first is not None and 200_000 < first < 500_000
    assert est.should_send()
    est.sent(first)
    assert not est.should_send()


def test_abs_send_time_wraps_every_64_seconds_without_a_false_overuse() -> None:
    est = ReceiveBandwidthEstimator()
    start = 63.0  # abs-send-time wraps at 64 s
    for i in range(300):
        t = start + i / 30
        for k in range(3):
            est.on_packet(t + 0.02 + k * 0.001, int((t + k * 0.001) * (1 << 18)) & 0xFFFFFF, 1200)
        est.update(t)
        assert est.hypothesis != OVERUSING
    assert est.overuses == 0


def test_out_of_order_and_duplicate_send_times_are_harmless() -> None:
    est = ReceiveBandwidthEstimator()
    rnd = random.Random(3)
    for i in range(600):
        t = i / 60
        ast = int(t * (1 << 18)) & 0xFFFFFF
        if rnd.random() < 0.1:
            ast = (ast - 5000) & 0xFFFFFF  # an old send time (a retransmission)
        est.on_packet(t + 0.02 + rnd.random() * 0.002, ast, 1000)
        est.update(t)
    assert est.overuses == 0
    assert est.estimate is not None and est.estimate > 300_000


def test_the_receive_path_allocates_nothing_per_packet() -> None:
    import tracemalloc

    est = ReceiveBandwidthEstimator()
    stamps = [(1.0 + i / 300, int((1.0 + i / 300) * (1 << 18)) & 0xFFFFFF) for i in range(3000)]
    for arrival, ast in stamps[:300]:
        est.on_packet(arrival, ast, 1200)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for arrival, ast in stamps[300:]:
        est.on_packet(arrival, ast, 1200)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "bandwidth_estimator" in str(s.traceback))
    assert grown < 2048

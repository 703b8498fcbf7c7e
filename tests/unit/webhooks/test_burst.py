"""Deliveries yield to a burst of room events, at most max_defer_s at a time (time passed in)."""

from __future__ import annotations

import asyncio

from signaling.webhooks.burst import BurstGate
from signaling.webhooks.delivery import Deliverer
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import Delivery
from tests.unit.webhooks.test_schedule import FakeClock, delivery, hook, run_until


def test_a_burst_is_more_deliveries_made_in_the_window_than_the_threshold_allows() -> None:
    gate = BurstGate(threshold_per_s=200, window_s=0.5, max_defer_s=5)
    for i in range(100):  # 100 in 0.5 s: 200/s, not more
        gate.note(10.0 + i * 0.005, 1)
    assert not gate.busy(10.5) and gate.wait_s(10.5, None) == 0
    gate.note(10.5, 10)  # a 2000-student webinar's joins, ten webhooks
    assert gate.busy(10.5) and gate.wait_s(10.5, None) == 0.1
    assert not gate.busy(11.01)  # the window has passed
    waits = []
    for t in (13.0, 15.45, 15.5):  # a storm that goes on, deferred since 10.5
        gate.note(t, 200)
        waits.append(round(gate.wait_s(t, 10.5), 6))
    assert waits == [0.1, 0.05, 0]  # at most max_defer_s: then it goes however busy


async def test_a_queue_waits_for_the_burst_to_pass_and_then_delivers_in_order() -> None:
    clock = FakeClock()
    gate = BurstGate(threshold_per_s=200, window_s=0.5, max_defer_s=5)
    sent: list[tuple[float, int]] = []

    async def send(webhook: Webhook, d: Delivery) -> int:
        sent.append((clock.now, d.seq))
        return 200

    start = clock.now
    gate.note(start, 1000)  # a burst now; nothing more after it
    w = Deliverer(send, {"WH_a": hook("WH_a")}.get, on_change=lambda d: None, max_backoff_s=60, retry_s=3600,
                  clock=clock, sleep=clock.sleep, gate=gate)
    for seq in range(3):
        w.add(delivery(seq, at=start))
    await run_until(lambda: w.pending() == 0)
    assert [s for _, s in sent] == [0, 1, 2]
    assert start + 0.5 <= sent[0][0] <= start + 0.6 and gate.deferrals == 1  # only while the burst lasted
    await w.close()
    assert not asyncio.all_tasks() - {asyncio.current_task()}

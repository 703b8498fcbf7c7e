"""The join gate (signaling/ws/join_gate.py) on its own: slots, FIFO order, bypass, bound, timeout,
lag-triggered queueing with an injected lag source, the updates a waiter hears."""

from __future__ import annotations

import asyncio
import time

import pytest

from signaling.loop_monitor import LoopMonitor
from signaling.ws.join_gate import JoinGate, JoinRefused, JoinTicket, MonitorLag


class Lag:
    """An injected lag source: seconds, set by the test."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


async def test_below_the_limit_nothing_waits_and_nothing_is_told() -> None:
    gate = JoinGate(max_concurrent=3)
    told: list[tuple[int, float]] = []
    tickets = [gate.enter(on_update=lambda p, e: told.append((p, e))) for _ in range(3)]
    assert all(t.admitted for t in tickets) and gate.active == 3 and gate.queued == 0 and told == []
    for t in tickets:
        t.release()
        t.release()  # idempotent
    assert gate.active == 0
    await gate.close()


async def test_queued_joins_are_admitted_in_arrival_order_as_slots_free() -> None:
    gate = JoinGate(max_concurrent=2)
    first = [gate.enter(), gate.enter()]
    order: list[int] = []
    told: dict[int, list[tuple[int, float]]] = {i: [] for i in range(5)}
    waiting = [gate.enter(on_update=lambda p, e, i=i: told[i].append((p, e))) for i in range(5)]
    assert not any(t.admitted for t in waiting) and gate.queued == 5
    assert [told[i][0][0] for i in range(5)] == [1, 2, 3, 4, 5]  # told their position at once

    async def wait(i: int, t: JoinTicket) -> None:
        await t.wait()
        order.append(i)
        await asyncio.sleep(0.01)
        t.release()

    tasks = [asyncio.create_task(wait(i, t)) for i, t in enumerate(waiting)]
    await asyncio.sleep(0.05)
    assert order == []  # both slots still held
    for t in first:
        t.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3, 4] and gate.active == 0 and gate.queued == 0
    await gate.close()


async def test_hosts_and_reconnects_bypass_the_queue() -> None:
    gate = JoinGate(max_concurrent=1)
    held = gate.enter()
    student = gate.enter()
    assert not student.admitted
    teacher = gate.enter(bypass=True)  # a host, or a participant back to its seat
    assert teacher.admitted and gate.active == 2 and gate.queued == 1
    teacher.release()
    assert not student.admitted  # still one slot, held by the first
    held.release()
    await asyncio.wait_for(student.wait(), 2)
    assert student.admitted
    student.release()
    assert gate.bypassed_total == 1
    await gate.close()


async def test_a_full_queue_refuses_at_once_with_a_retry_hint() -> None:
    gate = JoinGate(max_concurrent=1, max_queue=2)
    gate.enter()
    q = [gate.enter(), gate.enter()]
    with pytest.raises(JoinRefused) as e:
        gate.enter()
    assert e.value.code == "try_again" and 1 <= e.value.retry_after_s <= 60
    assert gate.queued == 2 and gate.refused_total == 1
    assert gate.enter(bypass=True).admitted  # the teacher still gets in
    for t in q:
        t.release()  # the clients went away: out of the queue
    assert gate.queued == 0
    await gate.close()


async def test_a_wait_longer_than_the_timeout_is_refused_and_leaves_the_queue() -> None:
    gate = JoinGate(max_concurrent=1, timeout_s=0.3)
    gate.enter()
    waiting = gate.enter()
    with pytest.raises(JoinRefused) as e:
        await asyncio.wait_for(waiting.wait(), 3)
    assert e.value.code == "try_again" and e.value.retry_after_s >= 1
    assert gate.queued == 0 and gate.refused_total == 1
    waiting.release()  # what the endpoint does afterwards: no effect on the slots
    assert gate.active == 1
    await gate.close()


async def test_while_the_loop_lags_nobody_new_starts_and_the_queue_moves_when_it_recovers() -> None:
    """A lag is either the joins in flight (it passes when they are done) or the worker full with
    what it carries: either way a new join would add to it; hosts still pass."""
    lag = Lag()
    gate = JoinGate(max_concurrent=10, lag_limit_s=0.1, lag_s=lag)
    lag.value = 0.3
    a, b = gate.enter(), gate.enter()
    assert not a.admitted and not b.admitted  # far below 10, nothing in flight, but the loop lags
    assert gate.enter(bypass=True).admitted  # the teacher does not wait for the loop
    await asyncio.sleep(0.35)
    assert not a.admitted and gate.active == 1  # ticks passed: still nobody (the worker is full)
    lag.value = 0.0  # the loop recovered: the ticker admits the rest, in order
    await asyncio.wait_for(asyncio.gather(a.wait(), b.wait()), 2)
    assert a.admitted and b.admitted
    await gate.close()


async def test_a_full_worker_tells_the_waiting_to_try_again() -> None:
    lag = Lag()
    gate = JoinGate(max_concurrent=10, lag_limit_s=0.1, lag_s=lag, timeout_s=0.3)
    lag.value = 0.3
    waiting = gate.enter()
    with pytest.raises(JoinRefused, match="try again"):
        await asyncio.wait_for(waiting.wait(), 2)
    assert gate.queued == 0 and gate.refused_total == 1
    await gate.close()


async def test_the_window_halves_while_the_loop_lags_and_grows_back_one_slot_a_second() -> None:
    """AIMD: a lag seen while joins wait cuts the slots by half (at most every CUT_EVERY_S); a loop
    keeping up gets one more a second, so a recovered worker is not handed max_concurrent at once."""
    lag = Lag()
    gate = JoinGate(max_concurrent=16, lag_limit_s=0.1, lag_s=lag)
    held = [gate.enter() for _ in range(16)]
    lag.value = 0.3
    waiting = [gate.enter() for _ in range(40)]
    await asyncio.sleep(1.15)  # ~11 ticks lagging: cut at 0, 0.5 and 1.0 s
    assert gate.window == 2.0, gate.window
    lag.value = 0.0
    for t in held:
        t.release()
    await asyncio.sleep(0.05)
    assert gate.active <= 3, gate.active  # not 16 at once
    await asyncio.sleep(1.2)
    assert 3 <= gate.window <= 5, gate.window
    admitted = [t for t in waiting if t.admitted]
    assert len(admitted) == gate.active <= gate.window
    for t in waiting:
        t.release()
    await gate.close()


async def test_updates_come_when_the_position_changed_at_most_every_interval() -> None:
    gate = JoinGate(max_concurrent=1, update_interval_s=0.4)
    held = gate.enter()
    ahead = gate.enter()
    told: list[tuple[int, float]] = []
    me = gate.enter(on_update=lambda p, e: told.append((p, e)))
    assert [p for p, _ in told] == [2]
    await asyncio.sleep(0.6)
    assert [p for p, _ in told] == [2]  # nothing changed: nothing sent
    held.release()  # `ahead` gets the slot: I am next
    await asyncio.sleep(0.2)
    assert [p for p, _ in told] == [2, 1]  # the last update is older than the interval: told now
    assert told[-1][1] >= 0
    ahead.release()
    await asyncio.wait_for(me.wait(), 2)
    me.release()
    await gate.close()


async def test_monitor_lag_reads_the_loop_monitors_recent_mean() -> None:
    monitor = LoopMonitor(interval_s=0.01)
    monitor.start()
    try:
        lag = MonitorLag(monitor, window_s=0.2)
        await asyncio.sleep(0.25)
        assert lag() < 0.1  # a quiet loop
        time.sleep(0.6)  # noqa: ASYNC251 -- holds the loop on purpose: the probe wakes ~600 ms late
        await asyncio.sleep(0.015)
        assert lag() > 0.1
    finally:
        await monitor.close()


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        JoinGate(max_concurrent=0)


async def test_a_worker_over_its_cpu_limit_admits_nobody_new_but_the_teacher() -> None:
    cpu = Lag()  # the same kind of injected source: a CPU share here
    gate = JoinGate(max_concurrent=10, cpu_limit=0.85, cpu=cpu)
    assert gate.enter().admitted
    cpu.value = 0.9
    waiting = gate.enter()
    assert not waiting.admitted and gate.enter(bypass=True).admitted
    cpu.value = 0.8  # under the limit, not under it by the hysteresis: still full
    await asyncio.sleep(0.3)
    assert not waiting.admitted
    cpu.value = 0.5
    await asyncio.wait_for(waiting.wait(), 2)
    await gate.close()

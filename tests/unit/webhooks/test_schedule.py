"""The delivery rules with time passed in: back-off, dead after the retry period, strict order per
(webhook, room), and the worker on a fake clock (a receiver down for 10 minutes gets everything, in
order, afterwards; a dead or hanging receiver holds up nobody else)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from signaling.webhooks.delivery import Deliverer, Failure
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import (
    DEAD,
    DELIVERED,
    PENDING,
    Delivery,
    DeliveryQueue,
    backoff_s,
    failed,
    retried,
    succeeded,
)

HOUR = 3600.0


def delivery(seq: int, *, webhook_id: str = "WH_a", room_id: str = "R1", at: float = 0.0) -> Delivery:
    return Delivery(delivery_id=f"WD_{webhook_id}_{room_id}_{seq}", webhook_id=webhook_id, room_id=room_id, seq=seq,
                    event_id=f"EV_{seq}", event="participant_joined", body=b"{}", created_at=at, retry_since=at,
                    next_attempt_at=at)


def test_back_off_doubles_from_one_second_up_to_the_cap() -> None:
    assert [backoff_s(n, 60) for n in range(0, 10)] == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_s(10_000, 1.0) == 1.0  # no overflow however many attempts


def test_a_failure_schedules_the_next_attempt_and_the_last_one_at_the_deadline() -> None:
    d = delivery(0, at=100.0)
    failed(d, 100.0, status=503, error="HTTP 503", max_backoff_s=60, retry_s=HOUR)
    assert (d.state, d.attempts, d.next_attempt_at, d.last_status) == (PENDING, 1, 101.0, 503)
    d.attempts = 10  # back-off at its cap (60 s) now
    failed(d, 100.0 + HOUR - 10, status=None, error="refused", max_backoff_s=60, retry_s=HOUR)
    assert d.next_attempt_at == 100.0 + HOUR  # not past the deadline: one last try there
    failed(d, 100.0 + HOUR, status=None, error="refused", max_backoff_s=60, retry_s=HOUR)
    assert (d.state, d.finished_at, d.last_error) == (DEAD, 100.0 + HOUR, "refused")


def test_a_success_delivers_and_a_manual_retry_starts_a_new_period_at_the_end_of_the_queue() -> None:
    d = delivery(0)
    succeeded(d, 5.0, 204)
    assert (d.state, d.attempts, d.finished_at, d.last_status) == (DELIVERED, 1, 5.0, 204)
    retried(d, 50.0, seq=99)
    assert (d.state, d.seq, d.attempts, d.retry_since, d.next_attempt_at, d.finished_at) == (
        PENDING, 99, 0, 50.0, 50.0, None)


def test_a_queue_tries_only_its_head_in_seq_order_even_when_older_rows_are_resumed_late() -> None:
    q = DeliveryQueue()
    q.add(delivery(5))
    q.add(delivery(2))  # a pending row loaded at start after a live event queued
    q.add(delivery(7))
    assert [d.seq for d in q.items()] == [2, 5, 7]
    head = q.head()
    assert head is not None and head.seq == 2 and q.settle() is None  # pending: stays
    failed(head, 0.0, status=500, error="x", max_backoff_s=60, retry_s=HOUR)
    assert q.due_at() == 1.0 and q.settle() is None
    succeeded(head, 1.0, 200)
    assert q.settle() is head and [d.seq for d in q.items()] == [5, 7]


# --- the worker on a fake clock ------------------------------------------------------------------

@dataclass
class FakeClock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class Receiver:
    """A journal that is down (503, or no connection) until ``up_at``; records every attempt."""

    clock: FakeClock
    up_at: float
    hang: set[str] = field(default_factory=set)  # webhooks whose receiver never answers
    attempts: list[tuple[float, str, str, int]] = field(default_factory=list)  # (at, webhook, room, seq)
    got: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    async def __call__(self, webhook: Webhook, d: Delivery) -> int:
        self.attempts.append((self.clock.now, d.webhook_id, d.room_id, d.seq))
        if webhook.webhook_id in self.hang:
            await asyncio.Event().wait()  # never answers (the real sender's timeout is a Failure)
        if self.clock.now < self.up_at:
            raise Failure("HTTP 503", 503)
        self.got.setdefault(d.key, []).append(d.seq)
        return 200


def hook(webhook_id: str) -> Webhook:
    return Webhook(webhook_id=webhook_id, url="http://127.0.0.1:9/", events=("*",), room_id=None, lesson_id=None,
                   secret="s" * 32, created_at=0.0)


async def run_until(done: Callable[[], bool], *, steps: int = 200_000) -> None:
    for _ in range(steps):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the worker did not finish")


def worker(clock: FakeClock, send: Callable[[Webhook, Delivery], Awaitable[int]], changed: list[Delivery], *,
           max_backoff_s: float = 60.0, retry_s: float = 24 * HOUR) -> Deliverer:
    hooks = {w: hook(w) for w in ("WH_a", "WH_b")}
    return Deliverer(send, hooks.get, on_change=changed.append, max_backoff_s=max_backoff_s, retry_s=retry_s,
                     clock=clock, sleep=clock.sleep)


async def test_a_receiver_down_for_ten_minutes_gets_every_event_in_order_per_room_afterwards() -> None:
    clock = FakeClock()
    t0 = clock.now
    rx = Receiver(clock, up_at=t0 + 600)
    changed: list[Delivery] = []
    w = worker(clock, rx, changed)
    for seq in range(40):  # a lesson's joins and leaves in two rooms, all while the journal is down
        w.add(delivery(seq, room_id="R1" if seq % 3 else "R2", at=t0))
    await run_until(lambda: w.pending() == 0)
    assert rx.got == {("WH_a", "R1"): [s for s in range(40) if s % 3], ("WH_a", "R2"): list(range(0, 40, 3))}
    assert w.delivered == 40 and w.dead == 0
    # while down, only each room's head was tried, 1, 2, 4, ... 60 s apart: a handful of attempts
    down = [a for a in rx.attempts if a[0] < t0 + 600]
    assert {a[3] for a in down} == {0, 1} and len(down) <= 2 * 16
    # back up: the first delivery within one back-off cap, the rest right behind it
    first_up = min(a[0] for a in rx.attempts if a[0] >= t0 + 600)
    assert first_up <= t0 + 600 + 60
    assert all(a[0] == pytest.approx(first_up, abs=60) for a in rx.attempts if a[0] >= t0 + 600)
    assert all(d.state == DELIVERED for d in changed[-40:]) and len(changed) == len(rx.attempts)


async def test_after_the_retry_period_the_head_dies_and_the_next_one_goes() -> None:
    clock = FakeClock()
    rx = Receiver(clock, up_at=clock.now + 2 * HOUR)
    changed: list[Delivery] = []
    w = worker(clock, rx, changed, retry_s=HOUR)
    first, second = delivery(0, at=clock.now), delivery(1, at=clock.now + 1.5 * HOUR)
    w.add(first)
    w.add(second)
    await run_until(lambda: w.pending() == 0)
    assert first.state == DEAD and first.finished_at == pytest.approx(first.created_at + HOUR)
    assert second.state == DELIVERED and rx.got == {("WH_a", "R1"): [1]} and w.dead == 1


async def test_a_hanging_receiver_and_a_dead_one_hold_up_only_their_own_queues() -> None:
    clock = FakeClock()
    rx = Receiver(clock, up_at=clock.now, hang={"WH_b"})
    changed: list[Delivery] = []
    w = worker(clock, rx, changed)
    for seq in range(10):
        w.add(delivery(seq, webhook_id="WH_b", room_id="R1"))
        w.add(delivery(100 + seq, webhook_id="WH_a", room_id="R1"))
        w.add(delivery(200 + seq, webhook_id="WH_a", room_id="R2"))
    await run_until(lambda: w.delivered == 20)
    assert rx.got == {("WH_a", "R1"): list(range(100, 110)), ("WH_a", "R2"): list(range(200, 210))}
    assert [a[3] for a in rx.attempts if a[1] == "WH_b"] == [0]  # its head hangs; the rest wait behind it
    await w.close()
    assert w.pending() == 0

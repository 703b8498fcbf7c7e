"""Several workers on one outbox (signaling/webhooks/claims.py), in one test process on one store:
each pending delivery is sent by one worker at a time, a dead worker's are taken over (at once by
the worker started in its place, else when its lease is over), a retry by hand goes out once, and a
worker that stalled past its lease stops sending what another took over.  The store's side of the
claims runs on SQLite and PostgreSQL in tests/unit/store/test_webhook_store.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from signaling.events import RoomEvent
from signaling.webhooks.claims import Lease, predecessor
from signaling.webhooks.delivery import Failure
from signaling.webhooks.outbox_store import MemoryWebhookStore
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import DELIVERED, PENDING, Delivery
from signaling.webhooks.service import Webhooks

LEASE_S = 1.0  # short, so that a takeover after the lease fits a unit test


class Worker:
    """One worker's webhooks on the shared store; its receiver answers, or is down."""

    def __init__(self, slot: str, pid: int, store: MemoryWebhookStore, *, shared: bool = True) -> None:
        self.worker_id = f"host-1/{slot}/{pid}"
        self.sent: list[str] = []
        self.tried: list[str] = []
        self.down = False

        async def send(w: Webhook, d: Delivery) -> int:
            self.tried.append(d.delivery_id)
            if self.down:
                raise Failure("HTTP 500", 500)
            self.sent.append(d.delivery_id)
            return 204

        self.hooks = Webhooks(store, issuer="k", timeout_s=0.1, max_backoff_s=0.2, retry_hours=1.0, send=send,
                              claimer=self.worker_id, predecessor=predecessor(self.worker_id), shared=shared,
                              lease_s=LEASE_S)

    def emit(self, name: str, room_id: str = "RM_1") -> None:
        self.hooks.outbox.on_event(RoomEvent(name=name, room_id=room_id, external_id=None, room_name="r", at=1.0))

    async def die(self) -> None:
        """kill -9 as the store sees it: what it marked is written, nothing is let go."""
        self.hooks.outbox.release_on_close = False
        await self.hooks.close()


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def registered(store: MemoryWebhookStore) -> None:
    await store.add_webhook(Webhook(webhook_id="WH_1", url="http://127.0.0.1:1/hook", events=("*",), room_id=None,
                                    lesson_id=None, secret="s", created_at=0.0))


async def pending_of(store: MemoryWebhookStore) -> list[str]:
    return [d.delivery_id for d in await store.pending()]


async def test_a_killed_workers_deliveries_go_to_its_successor_at_once_and_a_live_ones_stay_its_own() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    live, killed = Worker("0", 100, store), Worker("1", 101, store)
    for w in (live, killed):
        await w.hooks.start()
        w.down = True  # the receiver answers 500: every delivery stays pending, retried
    live.emit("room_started", "RM_a")
    killed.emit("participant_joined", "RM_b")
    killed.emit("participant_left", "RM_b")
    await until(lambda: len(live.tried) >= 2 and len(killed.tried) >= 2)
    await live.hooks.outbox.flush()
    await killed.die()
    theirs = [d for d in await pending_of(store) if d not in set(live.tried)]
    assert len(theirs) == 2

    successor, other = Worker("1", 102, store), Worker("2", 103, store)  # the supervisor's restart; another worker
    for w in (successor, other):
        await w.hooks.start()
    assert await other.hooks.tend() == 0  # the successor was first; the live worker's are never anyone else's
    live.down = successor.down = other.down = False
    await until(lambda: set(successor.sent) == set(theirs) and len(live.sent) == 1)
    await asyncio.sleep(0.5)  # a second sending would come now (back-off is at most 0.2 s)
    assert sorted(live.sent + successor.sent) == sorted(set(live.sent + successor.sent))  # each once
    assert other.tried == [] and set(live.sent).isdisjoint(successor.tried)
    assert await pending_of(store) == []
    for w in (live, successor, other):
        await w.hooks.close()


async def test_a_dead_workers_deliveries_are_taken_over_by_one_survivor_after_the_lease() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    a, b, gone = Worker("0", 100, store), Worker("1", 101, store), Worker("2", 102, store)
    for w in (a, b, gone):
        await w.hooks.start()
    gone.down = True
    gone.emit("room_started")
    await until(lambda: len(gone.tried) >= 1)
    await gone.die()  # its machine is lost: nobody starts in its place
    assert await a.hooks.tend() == 0 and await b.hooks.tend() == 0  # its lease runs
    await asyncio.sleep(LEASE_S + 0.2)
    took = await asyncio.gather(a.hooks.tend(), b.hooks.tend())
    assert sorted(took) == [0, 1]
    await until(lambda: len(a.sent) + len(b.sent) == 1)
    await asyncio.sleep(0.3)
    assert a.sent + b.sent == gone.tried[:1] and a.hooks.taken_over + b.hooks.taken_over == 1
    for w in (a, b):
        await w.hooks.close()


async def test_a_retry_by_hand_goes_out_once_and_survives_the_death_of_the_worker_asked() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    maker, asked, third = Worker("0", 100, store), Worker("1", 101, store), Worker("2", 102, store)
    for w in (maker, asked, third):
        await w.hooks.start()
    maker.emit("room_started")
    await until(lambda: len(maker.sent) == 1)
    await maker.hooks.outbox.flush()
    [d_id] = maker.sent
    asked.down = True
    retried = await asked.hooks.retry("WH_1", d_id)
    assert retried.state == PENDING
    again = asyncio.gather(asked.hooks.retry("WH_1", d_id), third.hooks.retry("WH_1", d_id),
                           return_exceptions=True)
    assert all(isinstance(e, ValueError) for e in await again)  # DeliveryPending: asked already sends it
    await until(lambda: d_id in asked.tried)
    assert await maker.hooks.tend() == 0 and await third.hooks.tend() == 0  # asked holds it
    await asked.die()  # mid-retry
    await asyncio.sleep(LEASE_S + 0.2)
    took = await maker.hooks.tend() + await third.hooks.tend()
    assert took == 1
    await until(lambda: (maker.sent + third.sent).count(d_id) == 2)  # the first delivery, then the retry, once
    await asyncio.sleep(0.3)
    assert (maker.sent + third.sent).count(d_id) == 2
    got = await store.get_delivery("WH_1", d_id)
    assert got is not None and got.state == DELIVERED
    for w in (maker, third):
        await w.hooks.close()


async def test_a_worker_that_stalled_past_its_lease_stops_sending_what_another_took_over() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    stalled, other = Worker("0", 100, store), Worker("1", 101, store)
    for w in (stalled, other):
        await w.hooks.start()
    stalled.down = True
    stalled.emit("room_started")
    await until(lambda: len(stalled.tried) >= 1)
    await stalled.hooks.outbox.flush()
    # no renewal meanwhile (a stall): its attempts wait once its lease is short; the rows are free a
    # lease after its last write (a row written is a row renewed)
    await asyncio.sleep(2 * LEASE_S)
    tried = len(stalled.tried)
    assert stalled.hooks.lease is not None and not stalled.hooks.lease.covers()
    assert await other.hooks.tend() == 1
    stalled.down = False
    await until(lambda: len(other.sent) == 1)
    assert len(stalled.tried) == tried  # paused while its lease did not cover an attempt
    await stalled.hooks.tend()  # back: it learns the row is another's
    assert stalled.hooks.dropped == 1 and stalled.hooks.deliverer.pending() == 0
    await asyncio.sleep(0.3)
    assert stalled.sent == [] and len(other.sent) == 1
    for w in (stalled, other):
        await w.hooks.close()


async def test_a_graceful_stop_lets_the_others_take_its_deliveries_at_once() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    leaving, staying = Worker("0", 100, store), Worker("1", 101, store)
    for w in (leaving, staying):
        await w.hooks.start()
    leaving.down = True
    leaving.emit("room_started")
    await until(lambda: len(leaving.tried) >= 1)
    await leaving.hooks.close()
    assert await staying.hooks.tend() == 1
    await until(lambda: len(staying.sent) == 1)
    await staying.hooks.close()


async def test_one_process_alone_resumes_everything_pending() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    first = Worker("0", 100, store, shared=False)
    await first.hooks.start()
    first.down = True
    first.emit("room_started")
    first.emit("room_ended")
    await until(lambda: len(first.tried) >= 1)
    await first.die()
    second = Worker("0", 100, store, shared=False)  # the same claimer as a stand-in: it takes all anyway
    second.hooks.outbox.claimer = "another-process"
    await second.hooks.start()
    await until(lambda: len(second.sent) == 2)
    assert second.hooks.lease is None and second.hooks.deliverer.ready is None
    await second.hooks.close()


def test_a_predecessor_is_the_same_node_and_index_with_another_pid() -> None:
    is_before = predecessor("host-1234/1/500")
    assert is_before("host-1234/1/499")
    assert not is_before("host-1234/1/500") and not is_before("host-1234/11/499")
    assert not is_before("host-9999/1/499")  # another `urok serve` (another supervisor PID or machine)


async def test_the_lease_covers_an_attempt_only_with_its_time_to_spare() -> None:
    now = [100.0]
    lease = Lease(15.0, attempt_s=10.0, clock=lambda: now[0])
    assert not lease.covers()
    lease.renewed(100.0)
    assert lease.covers()
    now[0] = 104.9
    assert lease.covers()
    now[0] = 105.0
    assert not lease.covers()

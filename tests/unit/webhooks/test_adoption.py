"""Several workers on one outbox table (signaling/webhooks/adoption.py): a worker starting beside
others sends the pending deliveries of a gone worker, once among them, and never those of a live
worker (which sends them itself); with one process everything pending is resumed as before."""

from __future__ import annotations

import asyncio

from signaling.cluster.directory import WorkerInfo
from signaling.cluster.memory_directory import MemoryDirectory
from signaling.events import RoomEvent
from signaling.webhooks.adoption import cluster_adopt, origin_of, origin_of_worker
from signaling.webhooks.delivery import Failure
from signaling.webhooks.outbox_store import MemoryWebhookStore
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import Delivery
from signaling.webhooks.service import Webhooks


class Worker:
    """One worker's webhooks on the shared store and directory; its receiver answers or is down."""

    def __init__(self, name: str, store: MemoryWebhookStore, directory: MemoryDirectory | None) -> None:
        self.worker_id = f"host-1/{name}/100"
        self.sent: list[str] = []
        self.down = False
        self.directory = directory

        async def send(w: Webhook, d: Delivery) -> int:
            if self.down:
                raise Failure("refused")
            self.sent.append(d.delivery_id)
            return 204

        cluster = directory is not None
        self.hooks = Webhooks(store, issuer="k", timeout_s=1.0, max_backoff_s=60.0, retry_hours=1.0, send=send,
                              origin=origin_of_worker(self.worker_id) if cluster else None,
                              adopt=cluster_adopt(directory, self.worker_id) if directory is not None else None)

    async def start(self) -> None:
        if self.directory is not None:
            await self.directory.heartbeat(WorkerInfo(self.worker_id, "http://x"), 60.0)
        await self.hooks.start()

    def emit(self, name: str) -> None:
        self.hooks.outbox.on_event(RoomEvent(name=name, room_id="RM_1", external_id=None, room_name="r", at=1.0))

    async def die(self) -> None:
        """kill -9 as the store sees it: its rows written, its attempts stopped, its heartbeat gone."""
        await self.hooks.outbox.flush()
        await self.hooks.close()
        if self.directory is not None:
            await self.directory.remove_worker(self.worker_id)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def sent(w: Worker, n: int) -> None:
    """A resumed delivery failed once before: its next attempt is after the first back-off (1 s)."""
    for _ in range(60):
        if len(w.sent) >= n:
            return
        await asyncio.sleep(0.05)


async def registered(store: MemoryWebhookStore) -> None:
    await store.add_webhook(Webhook(webhook_id="WH_1", url="http://127.0.0.1:1/hook", events=("*",), room_id=None,
                                    lesson_id=None, secret="s", created_at=0.0))


async def test_a_gone_workers_pending_deliveries_are_sent_once_and_a_live_ones_never() -> None:
    store, directory = MemoryWebhookStore(), MemoryDirectory()
    await registered(store)
    live, gone = Worker("0", store, directory), Worker("1", store, directory)
    await live.start()
    await gone.start()
    live.down = gone.down = True  # the receiver is down: both workers' deliveries stay pending
    live.emit("room_started")
    gone.emit("participant_joined")
    await settle()
    await live.hooks.outbox.flush()
    await gone.die()
    pending = {origin_of(d.delivery_id): d.delivery_id for d in await store.pending()}
    assert set(pending) == {origin_of_worker(live.worker_id), origin_of_worker(gone.worker_id)}

    again, third = Worker("1b", store, directory), Worker("2", store, directory)  # the restarted one, another
    await again.start()
    await third.start()
    await sent(again, 1)
    await sent(third, 1)  # nothing comes: 3 s
    assert again.sent == [pending[origin_of_worker(gone.worker_id)]]  # the gone worker's, by one of them
    assert third.sent == []
    assert again.hooks.adopted == {origin_of_worker(gone.worker_id)}
    assert await third.hooks.adopt_orphans() == 0 and await again.hooks.adopt_orphans() == 0  # once
    for w in (live, again, third):
        await w.hooks.close()


async def test_a_machine_gone_later_is_adopted_by_a_running_worker() -> None:
    store, directory = MemoryWebhookStore(), MemoryDirectory()
    await registered(store)
    running, other = Worker("0", store, directory), Worker("1", store, directory)
    await running.start()
    await other.start()
    other.down = True
    other.emit("room_started")
    await settle()
    await other.die()  # nobody restarts it: a running worker's periodic look takes its deliveries
    assert await running.hooks.adopt_orphans() == 1
    await sent(running, 1)
    assert len(running.sent) == 1 and origin_of(running.sent[0]) == origin_of_worker(other.worker_id)
    await running.hooks.close()


async def test_one_process_resumes_everything_pending() -> None:
    store = MemoryWebhookStore()
    await registered(store)
    first = Worker("0", store, None)
    await first.start()
    first.down = True
    first.emit("room_started")
    first.emit("room_ended")
    await settle()
    await first.die()
    second = Worker("0", store, None)
    await second.start()
    await sent(second, 2)
    assert len(second.sent) == 2
    await second.hooks.close()


def test_origins_in_delivery_ids() -> None:
    assert origin_of("WD_ab12.xyz-_Q") == "ab12"
    assert origin_of("WD_old_style-id") == ""  # made before origins: one gone origin

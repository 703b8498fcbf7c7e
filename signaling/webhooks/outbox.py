"""The outbox: room events become delivery rows, written behind in batches.

``on_event`` is the event bus's subscriber: synchronous, no I/O.  For every registration that wants
the event it makes one pending ``Delivery`` (one body for all of them, encoded once), marks it for
the writer and hands it to the worker at once (delivery.py; the worker does not wait for the row).
The worker's results (delivered, a failed attempt, dead) come back through ``mark`` the same way.

The writer is the room store's (signaling/store/write_behind.py): a task woken by the first mark
writes every marked row, its newest state only, in one transaction (an upsert per row), then
pauses ``batch_gap_s`` before the next round so a burst of events costs few transactions; it also
runs every ``flush_s`` to retry a failed write (counted, logged; the rows stay marked).

What a ``kill -9`` loses: the rows marked since the last committed round, i.e. events of the last
``batch_gap_s`` (50 ms) plus the round in flight, and up to ``flush_s`` (0.5 s) if the database was
failing.  A lost *new* row is an event never delivered; a lost *state* change (delivered, an
attempt) only means the restarted server sends that delivery again (at least once: receivers
deduplicate on ``X-Urok-Delivery``).  A graceful stop writes everything (``close``).

Every row is written as this process's claim (``claimer``, leased ``lease_s``; outbox_store.py,
claims.py): a row another process has taken over since is not overwritten.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from signaling.events import RoomEvent
from signaling.store.write_behind import WriteBehind
from signaling.webhooks.burst import BurstGate
from signaling.webhooks.outbox_store import WebhookStore
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import Delivery, new_id, payload

log = logging.getLogger("urok.webhooks")


class Outbox:
    def __init__(self, store: WebhookStore, *, clock: Callable[[], float] = time.time,
                 on_new: Callable[[Delivery], None] = lambda d: None, batch_gap_s: float = 0.05,
                 flush_s: float = 0.5, keep_s: float = 0.0, purge_every_s: float = 3600.0,
                 refresh_s: float = 10.0, gate: BurstGate | None = None, claimer: str | None = None,
                 lease_s: float = 60.0, release_on_close: bool = False) -> None:
        self.store = store
        self.claimer = claimer if claimer is not None else new_id("P")  # this process, in its rows' claims
        self.lease_s = lease_s
        self.release_on_close = release_on_close  # one worker among others: they take its pending rows at once
        self.clock = clock
        self.on_new = on_new  # the worker's queue
        self.gate = gate  # told how many deliveries each event made (the worker yields to bursts)
        self.batch_gap_s = batch_gap_s
        self.flush_s = flush_s
        self.keep_s = keep_s  # delivered and dead rows are deleted this long after they finished (0: kept)
        self.purge_every_s = purge_every_s
        # several processes on one PostgreSQL: a registration made or deleted through another one
        # is seen here within refresh_s (ours at once)
        self.refresh_s = refresh_s
        self._next_refresh = 0.0
        self._changes = 0  # registrations changed here: a refresh read before one is stale
        self.webhooks: dict[str, Webhook] = {}  # the registrations, read on every event (no I/O)
        self.writes = 0
        self.write_failures = 0
        self._seq = itertools.count()
        self._dirty: dict[str, Delivery] = {}
        self._lock = asyncio.Lock()  # one writer
        self._writer = WriteBehind(self._round, flush_s=flush_s, name="urok-webhook-outbox")
        self._open = False
        self._next_purge = 0.0

    async def open(self, *, take_all: bool = True, free: Callable[[str], bool] = lambda claimer: False,
                   ) -> list[Delivery]:
        """Load the registrations; start the writer; returns the pending deliveries claimed to
        resume (by seq): all of them (``take_all``: one process alone resumes what the last run had
        not sent), or those nobody holds, after letting go of the claims of dead predecessors
        (``free``: a worker started again takes what its killed predecessor held, without waiting
        for the lease)."""
        await self.store.open()
        loaded = await self.store.list_webhooks()
        self.webhooks.clear()  # the same dict: the worker reads it by reference
        self.webhooks.update((w.webhook_id, w) for w in loaded)
        self._seq = itertools.count(await self.store.max_seq() + 1)
        if not take_all:
            for claimer in await self.store.claimers():
                if claimer != self.claimer and free(claimer):
                    await self.store.release(claimer)
        now = self.clock()
        pending = await self.store.claim(self.claimer, now=now, lease_until=now + self.lease_s, force=take_all)
        self._open = True
        self._writer.start()
        return pending

    async def close(self) -> None:
        """Write everything marked; later events are not queued (the restarted server emits the
        leaves of whoever does not come back)."""
        self._open = False
        await self._writer.stop()
        await self.flush()
        if self.release_on_close:
            try:
                await self.store.release(self.claimer)
            except Exception:  # the others take them when the lease runs out
                log.exception("letting go of this process's pending webhook deliveries failed")
        await self.store.close()

    # --- the subscriber ----------------------------------------------------------------------
    def on_event(self, event: RoomEvent) -> None:
        if not self._open:
            return
        wanted = [w for w in self.webhooks.values() if w.wants(event)]
        if not wanted:
            return
        event_id = new_id("EV")
        body = payload(event, event_id)
        now = self.clock()
        if self.gate is not None:
            self.gate.note(now, len(wanted))
        for w in wanted:
            d = Delivery(delivery_id=new_id("WD"), webhook_id=w.webhook_id, room_id=event.room_id,
                         seq=self.next_seq(), event_id=event_id, event=event.name, body=body, created_at=now,
                         retry_since=now, next_attempt_at=now)
            self.mark(d)
            self.on_new(d)

    def next_seq(self) -> int:
        return next(self._seq)

    def mark(self, d: Delivery) -> None:
        """The row changed: the writer writes its state as of its next round."""
        self._dirty[d.delivery_id] = d
        self._writer.wake()

    # --- registrations -----------------------------------------------------------------------
    async def add_webhook(self, w: Webhook) -> None:
        self._changes += 1
        await self.store.add_webhook(w)
        self.webhooks[w.webhook_id] = w

    async def refresh(self) -> None:
        """Read the registrations again (another process's); dropped if ours changed meanwhile."""
        changes = self._changes
        loaded = {w.webhook_id: w for w in await self.store.list_webhooks()}
        if changes != self._changes:
            return  # the next round reads them again
        for gone in set(self.webhooks) - set(loaded):
            del self.webhooks[gone]  # the worker drops its queues when it next looks
        self.webhooks.update(loaded)

    async def delete_webhook(self, webhook_id: str) -> bool:
        self._changes += 1
        async with self._lock:  # not between the writer's read of the marks and its write
            self.webhooks.pop(webhook_id, None)
            for did in [k for k, d in self._dirty.items() if d.webhook_id == webhook_id]:
                del self._dirty[did]
            return await self.store.delete_webhook(webhook_id)

    # --- the writer --------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write every mark now (REST reads that must see the latest state; close).  A failed write
        is logged and counted, never raised: the rows stay marked for the next round."""
        async with self._lock:
            await self._write_locked()

    async def renew(self, lease_until: float) -> tuple[set[str], set[str]]:
        """Write every mark, then extend this process's claims: returns the ids of the pending
        rows it still holds, and those of the rows it could not write (not yet claimed in the
        store: not lost either).  Under the writer's lock: no round writes in between."""
        async with self._lock:
            await self._write_locked()
            held = await self.store.renew(self.claimer, lease_until=lease_until)
            return held, set(self._dirty)

    async def _write_locked(self) -> None:
        if not self._dirty:
            return
        batch = self._dirty
        self._dirty = {}
        rows = [d for d in batch.values() if d.webhook_id in self.webhooks]
        try:
            await self.store.save_deliveries(rows, claimer=self.claimer, lease_until=self.clock() + self.lease_s)
        except Exception:
            self.write_failures += 1
            for k, d in batch.items():  # marked again meanwhile: that mark is as new
                self._dirty.setdefault(k, d)
            log.exception("writing %d webhook deliveries failed; retrying on the next round", len(rows))
            return
        self.writes += 1

    async def _round(self) -> float:
        """One round of the writer (write_behind.py); returns the pause before the next one."""
        try:
            await self.flush()
            now = self.clock()
            if now >= self._next_refresh:
                self._next_refresh = now + self.refresh_s
                await self.refresh()
            if self.keep_s > 0 and now >= self._next_purge:
                self._next_purge = now + self.purge_every_s
                async with self._lock:
                    gone = await self.store.purge(now - self.keep_s)
                if gone:
                    log.info("webhooks: deleted %d finished deliveries older than the keep period", gone)
        except Exception:  # never stops the writer: later rows would be lost
            log.exception("the webhook outbox's refresh or retention job failed; it goes on")
        return self.batch_gap_s

    def counters(self) -> dict[str, float]:
        return {"store_writes": float(self.writes), "store_write_failures": float(self.write_failures)}

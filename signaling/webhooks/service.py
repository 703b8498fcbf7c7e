"""The webhooks service: registrations, the outbox and the worker together, for the REST edge and
the app's lifecycle (feature.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from signaling.webhooks import schedule
from signaling.webhooks.burst import BurstGate
from signaling.webhooks.claims import Lease, lease_s_for
from signaling.webhooks.delivery import Deliverer, HttpSender, Send
from signaling.webhooks.outbox import Outbox
from signaling.webhooks.outbox_store import WebhookStore
from signaling.webhooks.registration import Webhook, parse_registration
from signaling.webhooks.schedule import PENDING, Delivery, new_id

log = logging.getLogger("urok.webhooks")


class UnknownWebhook(LookupError):
    pass


class UnknownDelivery(LookupError):
    pass


class DeliveryPending(ValueError):
    """A retry asked for a delivery that is still pending (it is retried anyway)."""


class Webhooks:
    def __init__(self, store: WebhookStore, *, issuer: str, timeout_s: float, max_backoff_s: float,
                 retry_hours: float, keep_days: float = 0.0, clock: Callable[[], float] = time.time,
                 send: Send | None = None, claimer: str | None = None,
                 predecessor: Callable[[str], bool] | None = None, shared: bool = False,
                 lease_s: float | None = None) -> None:
        """``shared``: one worker among others on the outbox (claims.py): it resumes only what
        nobody holds (``predecessor``'s rows freed first), renews its claims (``tend``) and attempts
        only under its lease.  Not shared: one process, which resumes every pending delivery when
        it starts.  ``claimer``: this process in the rows' claims (a worker's id)."""
        self.clock = clock
        self.shared = shared
        self.predecessor = predecessor if predecessor is not None else (lambda claimer: False)
        lease = lease_s if lease_s is not None else lease_s_for(timeout_s)
        self.lease = Lease(lease, attempt_s=timeout_s, clock=clock) if shared else None
        self.taken_over = 0  # pending deliveries taken from processes gone since this one started
        self.dropped = 0  # queued deliveries another process took over (this one had stalled)
        self._http = HttpSender(issuer=issuer, timeout_s=timeout_s, clock=clock) if send is None else None
        self.gate = BurstGate()
        self.outbox = Outbox(store, clock=clock, keep_s=keep_days * 86_400.0, gate=self.gate, claimer=claimer,
                             lease_s=lease, release_on_close=shared)
        self.deliverer = Deliverer(send if send is not None else self._sender(), self.outbox.webhooks.get,
                                   on_change=self.outbox.mark, max_backoff_s=max_backoff_s,
                                   retry_s=retry_hours * 3600.0, clock=clock, gate=self.gate,
                                   ready=self.lease.ready if self.lease is not None else None)
        self.outbox.on_new = self.deliverer.add

    def _sender(self) -> Send:
        assert self._http is not None
        return self._http

    @property
    def tend_every_s(self) -> float:
        return self.outbox.lease_s / 4

    async def start(self) -> None:
        """Registrations loaded, pending deliveries claimed and resumed in their order."""
        started = self.clock()
        resumed = await self.outbox.open(take_all=not self.shared, free=self.predecessor)
        if self.lease is not None:
            self.lease.renewed(started)
        for d in resumed:
            self.deliverer.add(d)
        if resumed:
            log.info("webhooks: %d pending deliveries resumed", len(resumed))

    async def tend(self) -> int:
        """A worker among others, every ``tend_every_s``: renew this process's claims (and drop
        from its queues what another process took over while this one stalled), then take the
        pending deliveries that nobody holds any more (a gone process's).  Returns how many."""
        if self.lease is None:
            return 0
        started = self.clock()
        queued = self.deliverer.queued_ids()  # before the renewal: a delivery made since is not in the store yet
        held, unwritten = await self.outbox.renew(started + self.lease.lease_s)
        lost = queued - held - unwritten
        if lost:
            dropped = self.deliverer.drop(lost)
            self.dropped += dropped
            if dropped:
                log.warning("webhooks: %d pending deliveries were taken over by another process while this one "
                            "stalled; it stops sending them", dropped)
        self.lease.renewed(started)
        now = self.clock()
        taken = await self.outbox.store.claim(self.outbox.claimer, now=now, lease_until=now + self.lease.lease_s)
        for d in taken:
            if not self.deliverer.queued(d.delivery_id):
                self.deliverer.add(d)
        if taken:
            self.taken_over += len(taken)
            log.info("webhooks: %d pending deliveries of a gone process taken over", len(taken))
        return len(taken)

    async def close(self) -> None:
        await self.deliverer.close()
        if self._http is not None:
            await self._http.close()
        await self.outbox.close()  # a worker among others lets its pending rows go: the others take them

    # --- registrations -----------------------------------------------------------------------
    async def create(self, body: Mapping[str, Any]) -> Webhook:
        """Raises InvalidWebhook (registration.py)."""
        w = parse_registration(body, webhook_id=new_id("WH"), now=self.clock())
        await self.outbox.add_webhook(w)
        return w

    def registrations(self) -> list[Webhook]:
        return sorted(self.outbox.webhooks.values(), key=lambda w: (w.created_at, w.webhook_id))

    def get(self, webhook_id: str) -> Webhook:
        w = self.outbox.webhooks.get(webhook_id)
        if w is None:
            raise UnknownWebhook(webhook_id)
        return w

    async def delete(self, webhook_id: str) -> None:
        self.get(webhook_id)
        await self.outbox.delete_webhook(webhook_id)
        await self.deliverer.drop_webhook(webhook_id)

    # --- deliveries --------------------------------------------------------------------------
    async def deliveries(self, webhook_id: str, *, state: str | None, offset: int,
                         limit: int) -> tuple[list[Delivery], int]:
        self.get(webhook_id)
        await self.outbox.flush()
        return await self.outbox.store.list_deliveries(webhook_id, state=state, offset=offset, limit=limit)

    async def retry(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a dead (or delivered) delivery again, behind its queue's pending ones."""
        self.get(webhook_id)
        await self.outbox.flush()
        d = await self.outbox.store.get_delivery(webhook_id, delivery_id)
        if d is None:
            raise UnknownDelivery(delivery_id)
        if d.state == PENDING or self.deliverer.queued(delivery_id):
            raise DeliveryPending(delivery_id)
        now = self.clock()
        schedule.retried(d, now, self.outbox.next_seq())
        # claimed for this process in the same statement that makes it pending: a retry asked of two
        # workers at once is sent by one
        if not await self.outbox.store.reopen(d, claimer=self.outbox.claimer, lease_until=now + self.outbox.lease_s):
            raise DeliveryPending(delivery_id)
        self.deliverer.add(d)
        return d

    # --- metrics -----------------------------------------------------------------------------
    def counters(self) -> dict[str, dict[str, float]]:
        return {k: {"": v} for k, v in {**self.deliverer.counters(), **self.outbox.counters(),
                                        "burst_deferrals": float(self.gate.deferrals),
                                        "taken_over": float(self.taken_over)}.items()}

    def gauges(self) -> dict[str, float]:
        return {"pending": float(self.deliverer.pending()), "registrations": float(len(self.outbox.webhooks))}

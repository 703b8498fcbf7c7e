"""The webhooks service: registrations, the outbox and the worker together, for the REST edge and
the app's lifecycle (feature.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from signaling.webhooks import schedule
from signaling.webhooks.adoption import Adopt, origin_of
from signaling.webhooks.burst import BurstGate
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
                 send: Send | None = None, origin: str | None = None, adopt: Adopt | None = None) -> None:
        """``origin``/``adopt``: one worker among others (adoption.py); None: one process, which
        resumes every pending delivery when it starts."""
        self.clock = clock
        self.adopt = adopt
        self.adopted: set[str] = set()  # origins of gone processes whose deliveries this one sends
        self._http = HttpSender(issuer=issuer, timeout_s=timeout_s, clock=clock) if send is None else None
        self.gate = BurstGate()
        self.outbox = Outbox(store, clock=clock, keep_s=keep_days * 86_400.0, gate=self.gate, origin=origin)
        self.deliverer = Deliverer(send if send is not None else self._sender(), self.outbox.webhooks.get,
                                   on_change=self.outbox.mark, max_backoff_s=max_backoff_s,
                                   retry_s=retry_hours * 3600.0, clock=clock, gate=self.gate)
        self.outbox.on_new = self.deliverer.add

    def _sender(self) -> Send:
        assert self._http is not None
        return self._http

    async def start(self) -> None:
        """Registrations loaded, pending deliveries resumed in their order (a worker among others:
        those of gone processes that it adopts)."""
        await self._resume(await self.outbox.open())

    async def adopt_orphans(self) -> int:
        """A worker among others, now and then: the pending deliveries of processes gone since
        (another machine's workers) are sent by one live worker; the origins adopted stay held.
        Returns how many deliveries were taken over."""
        if self.adopt is None:
            return 0
        if self.adopted:
            self.adopted &= await self.adopt(set(self.adopted))  # renewed (lost only after a long stall)
        await self.outbox.flush()
        return await self._resume(await self.outbox.store.pending())

    async def _resume(self, pending: list[Delivery]) -> int:
        if self.adopt is None:
            for d in pending:
                self.deliverer.add(d)
            return len(pending)
        origins = {origin_of(d.delivery_id) for d in pending} - self.adopted - {self.outbox.origin}
        new = await self.adopt(origins) if origins else set()
        self.adopted |= new
        taken = [d for d in pending if origin_of(d.delivery_id) in new and not self.deliverer.queued(d.delivery_id)]
        for d in taken:
            self.deliverer.add(d)
        if taken:
            log.info("webhooks: %d pending deliveries of gone workers taken over", len(taken))
        return len(taken)

    async def close(self) -> None:
        await self.deliverer.close()
        if self._http is not None:
            await self._http.close()
        await self.outbox.close()

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
        schedule.retried(d, self.clock(), self.outbox.next_seq())
        self.outbox.mark(d)
        self.deliverer.add(d)
        return d

    # --- metrics -----------------------------------------------------------------------------
    def counters(self) -> dict[str, dict[str, float]]:
        return {k: {"": v} for k, v in {**self.deliverer.counters(), **self.outbox.counters(),
                                        "burst_deferrals": float(self.gate.deferrals)}.items()}

    def gauges(self) -> dict[str, float]:
        return {"pending": float(self.deliverer.pending()), "registrations": float(len(self.outbox.webhooks))}

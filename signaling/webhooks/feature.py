"""Wires webhooks into the app (app keys, event subscriptions, the delivery task's lifecycle)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from signaling.app_keys import CLOCK, CLUSTER, EVENTS, METRICS, SETTINGS, STORE
from signaling.store.sql_store import SqlStore
from signaling.webhooks.claims import predecessor
from signaling.webhooks.outbox_store import MemoryWebhookStore, WebhookStore
from signaling.webhooks.service import Webhooks
from signaling.webhooks.sql_outbox_store import SqlWebhookStore

WEBHOOKS = web.AppKey("webhooks", Webhooks)
log = logging.getLogger("urok.webhooks")


def webhook_store(app: web.Application) -> WebhookStore:
    """On the room store's database (its engine, opened and migrated by it), or in memory."""
    store = app[STORE]
    if isinstance(store, SqlStore):
        return SqlWebhookStore(lambda: store.engine)
    return MemoryWebhookStore()


def setup_webhooks(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""
    settings = app[SETTINGS]
    node = app.get(CLUSTER)  # one worker among others: each delivery claimed by one of them (claims.py)
    hooks = app[WEBHOOKS] = Webhooks(
        webhook_store(app), issuer=settings.api_key, timeout_s=settings.webhook_timeout_s,
        max_backoff_s=settings.webhook_max_backoff_s, retry_hours=settings.webhook_retry_hours,
        keep_days=settings.webhook_keep_days, clock=app[CLOCK],
        claimer=node.worker_id if node is not None else None,
        predecessor=predecessor(node.worker_id) if node is not None else None, shared=node is not None)
    app[EVENTS].subscribe(hooks.outbox.on_event)  # before start: no registrations yet, nothing queued
    app[METRICS].add_counters(hooks.counters, "urok_webhook")  # delivered, failed attempts, dead, writes
    app[METRICS].add_gauges(hooks.gauges, "urok_webhook", "webhook deliveries now")

    async def tending() -> None:
        while True:
            await asyncio.sleep(hooks.tend_every_s)
            try:
                await hooks.tend()
            except Exception:  # the database away: attempts pause when the lease runs short (claims.py)
                log.exception("renewing this worker's webhook delivery claims failed; it goes on")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hooks.start()  # the store is open: registrations loaded, pending deliveries resumed
        loop = asyncio.get_running_loop().create_task(tending(), name="urok-webhook-claims") if node else None
        yield
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await hooks.close()  # before the store closes: every mark written, a worker's claims let go

    app.cleanup_ctx.append(lifecycle)

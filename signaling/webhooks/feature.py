"""Wires webhooks into the app (app keys, event subscriptions, the delivery task's lifecycle)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from signaling.app_keys import CLOCK, EVENTS, METRICS, SETTINGS, STORE
from signaling.store.sql_store import SqlStore
from signaling.webhooks.outbox_store import MemoryWebhookStore, WebhookStore
from signaling.webhooks.service import Webhooks
from signaling.webhooks.sql_outbox_store import SqlWebhookStore

WEBHOOKS = web.AppKey("webhooks", Webhooks)


def webhook_store(app: web.Application) -> WebhookStore:
    """On the room store's database (its engine, opened and migrated by it), or in memory."""
    store = app[STORE]
    if isinstance(store, SqlStore):
        return SqlWebhookStore(lambda: store.engine)
    return MemoryWebhookStore()


def setup_webhooks(app: web.Application) -> None:
    """Called by create_app after the store's lifecycle is registered."""
    settings = app[SETTINGS]
    hooks = app[WEBHOOKS] = Webhooks(
        webhook_store(app), issuer=settings.api_key, timeout_s=settings.webhook_timeout_s,
        max_backoff_s=settings.webhook_max_backoff_s, retry_hours=settings.webhook_retry_hours,
        keep_days=settings.webhook_keep_days, clock=app[CLOCK])
    app[EVENTS].subscribe(hooks.outbox.on_event)  # before start: no registrations yet, nothing queued
    app[METRICS].add_counters(hooks.counters, "urok_webhook")  # delivered, failed attempts, dead, writes
    app[METRICS].add_gauges(hooks.gauges, "urok_webhook", "webhook deliveries now")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hooks.start()  # the store is open: registrations loaded, pending deliveries resumed
        yield
        await hooks.close()  # before the store closes: every mark written

    app.cleanup_ctx.append(lifecycle)

"""Where webhook registrations and deliveries live: the ``WebhookStore`` interface and its in-memory
twin (``store = "memory"``: nothing survives a restart).  The SQL one (sql_outbox_store.py) shares the
room store's engine.  Both pass one suite (tests/unit/store/test_webhook_store.py).

Deliveries are saved by upsert (``save_deliveries``): the outbox writes a new row and its later
states the same way, in batches, the newest state of each row once (outbox.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import PENDING, Delivery


class WebhookStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add_webhook(self, webhook: Webhook) -> None: ...

    async def delete_webhook(self, webhook_id: str) -> bool:
        """The registration and all its deliveries; False if there was none."""
        ...

    async def list_webhooks(self) -> list[Webhook]:
        """Oldest first."""
        ...

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Insert or update each row, in one transaction (rows of a deleted webhook are skipped)."""
        ...

    async def pending(self) -> list[Delivery]:
        """Every pending delivery, by seq (what a restart resumes)."""
        ...

    async def max_seq(self) -> int:
        """The highest seq stored (-1 when none): a restart numbers new rows after it."""
        ...

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(self, webhook_id: str, *, state: str | None, offset: int,
                              limit: int) -> tuple[list[Delivery], int]:
        """By seq, oldest first; and how many match in all."""
        ...

    async def purge(self, before: float) -> int:
        """Delete delivered and dead rows finished before ``before``; how many."""
        ...


def _copy(d: Delivery) -> Delivery:
    return dataclasses.replace(d)


class MemoryWebhookStore:
    """Copies in and out, so it behaves like a database (a caller's later change is not stored)."""

    def __init__(self) -> None:
        self._webhooks: dict[str, Webhook] = {}
        self._deliveries: dict[str, Delivery] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add_webhook(self, webhook: Webhook) -> None:
        if webhook.webhook_id in self._webhooks:
            raise ValueError(f"webhook {webhook.webhook_id} exists")
        self._webhooks[webhook.webhook_id] = webhook

    async def delete_webhook(self, webhook_id: str) -> bool:
        if self._webhooks.pop(webhook_id, None) is None:
            return False
        for did in [k for k, d in self._deliveries.items() if d.webhook_id == webhook_id]:
            del self._deliveries[did]
        return True

    async def list_webhooks(self) -> list[Webhook]:
        return sorted(self._webhooks.values(), key=lambda w: (w.created_at, w.webhook_id))

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            if d.webhook_id in self._webhooks:
                self._deliveries[d.delivery_id] = _copy(d)

    async def pending(self) -> list[Delivery]:
        return [_copy(d) for d in sorted(self._deliveries.values(), key=lambda d: d.seq) if d.state == PENDING]

    async def max_seq(self) -> int:
        return max((d.seq for d in self._deliveries.values()), default=-1)

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        d = self._deliveries.get(delivery_id)
        return _copy(d) if d is not None and d.webhook_id == webhook_id else None

    async def list_deliveries(self, webhook_id: str, *, state: str | None, offset: int,
                              limit: int) -> tuple[list[Delivery], int]:
        rows = sorted((d for d in self._deliveries.values()
                       if d.webhook_id == webhook_id and (state is None or d.state == state)), key=lambda d: d.seq)
        return [_copy(d) for d in rows[offset:offset + limit]], len(rows)

    async def purge(self, before: float) -> int:
        gone = [k for k, d in self._deliveries.items()
                if d.state != PENDING and d.finished_at is not None and d.finished_at < before]
        for k in gone:
            del self._deliveries[k]
        return len(gone)

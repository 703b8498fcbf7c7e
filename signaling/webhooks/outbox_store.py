"""Where webhook registrations and deliveries live: the ``WebhookStore`` interface and its in-memory
twin (``store = "memory"``: nothing survives a restart).  The SQL one (sql_outbox_store.py) shares the
room store's engine.  Both pass one suite (tests/unit/store/test_webhook_store.py).

Deliveries are saved by upsert (``save_deliveries``): the outbox writes a new row and its later
states the same way, in batches, the newest state of each row once (outbox.py).

Each pending delivery is claimed by the process that sends it (``claimed_by``) until its lease runs
out (``claim_until``): several workers and machines on one outbox send each delivery from one of
them at a time (claims.py).  A row is written only by its claimer; a new row is its maker's; a
pending row whose claimer let it go or stopped renewing is taken by the next process that looks
(``claim``); a finished row (delivered, dead) is never claimed again, only reopened by a retry."""

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

    async def save_deliveries(self, deliveries: Sequence[Delivery], *, claimer: str, lease_until: float) -> None:
        """In one transaction: insert each new row, claimed by ``claimer`` until ``lease_until``;
        update an existing one only while ``claimer`` holds its claim (its lease extended): a
        process whose claim was taken over writes nothing more.  Rows of a deleted webhook are skipped."""
        ...

    async def claim(self, claimer: str, *, now: float, lease_until: float, force: bool = False) -> list[Delivery]:
        """Take for ``claimer`` until ``lease_until`` every pending row that nobody holds at ``now``
        (never claimed, let go, or its lease over; ``force``: every pending row not ``claimer``'s
        already: one process alone); returns the rows taken, by seq.  Finished rows are never taken."""
        ...

    async def renew(self, claimer: str, *, lease_until: float) -> set[str]:
        """Extend ``claimer``'s claims on its pending rows; returns their ids (what it still holds)."""
        ...

    async def release(self, claimer: str) -> int:
        """``claimer``'s pending rows are free to take now (its lease ended); how many."""
        ...

    async def claimers(self) -> set[str]:
        """Who holds pending rows (a worker started again frees its dead predecessor's at once)."""
        ...

    async def reopen(self, d: Delivery, *, claimer: str, lease_until: float) -> bool:
        """A finished row pending again, as ``d`` has it (schedule.retried), claimed by ``claimer``;
        False when it is pending already (another retry was first) or gone."""
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
        self._claims: dict[str, tuple[str, float]] = {}  # delivery id -> (claimer, lease until)

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
            self._claims.pop(did, None)
        return True

    async def list_webhooks(self) -> list[Webhook]:
        return sorted(self._webhooks.values(), key=lambda w: (w.created_at, w.webhook_id))

    async def save_deliveries(self, deliveries: Sequence[Delivery], *, claimer: str, lease_until: float) -> None:
        for d in deliveries:
            if d.webhook_id not in self._webhooks:
                continue
            held = self._claims.get(d.delivery_id)
            if d.delivery_id in self._deliveries and (held is None or held[0] != claimer):
                continue  # another process's now
            self._deliveries[d.delivery_id] = _copy(d)
            self._claims[d.delivery_id] = (claimer, lease_until)

    async def claim(self, claimer: str, *, now: float, lease_until: float, force: bool = False) -> list[Delivery]:
        taken = []
        for d in sorted(self._deliveries.values(), key=lambda d: d.seq):
            if d.state != PENDING:
                continue
            held = self._claims.get(d.delivery_id)
            if held is None or (held[0] != claimer and (force or held[1] <= now)):
                self._claims[d.delivery_id] = (claimer, lease_until)
                taken.append(_copy(d))
        return taken

    async def renew(self, claimer: str, *, lease_until: float) -> set[str]:
        mine = {k for k, (c, _) in self._claims.items() if c == claimer and self._deliveries[k].state == PENDING}
        for k in mine:
            self._claims[k] = (claimer, lease_until)
        return mine

    async def release(self, claimer: str) -> int:
        mine = [k for k, (c, _) in self._claims.items() if c == claimer and self._deliveries[k].state == PENDING]
        for k in mine:
            self._claims[k] = (claimer, 0.0)
        return len(mine)

    async def claimers(self) -> set[str]:
        return {c for k, (c, _) in self._claims.items() if self._deliveries[k].state == PENDING}

    async def reopen(self, d: Delivery, *, claimer: str, lease_until: float) -> bool:
        stored = self._deliveries.get(d.delivery_id)
        if stored is None or stored.webhook_id != d.webhook_id or stored.state == PENDING:
            return False
        self._deliveries[d.delivery_id] = _copy(d)
        self._claims[d.delivery_id] = (claimer, lease_until)
        return True

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
            self._claims.pop(k, None)
        return len(gone)

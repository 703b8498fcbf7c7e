"""The WebhookStore on SQLite or PostgreSQL, on the room store's engine (one pool; SQLite has one
writer at a time: every write here is one short transaction).

A claim is one conditional UPDATE (or the upsert's ``ON CONFLICT ... DO UPDATE ... WHERE``): the
database decides which of two processes gets a row (PostgreSQL re-checks the condition on the row
another transaction has just changed; SQLite has one writer at a time), so two claimers never both
win, whichever machines they run on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from signaling.store import schema as t
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import PENDING, Delivery

W, D = t.webhooks, t.webhook_deliveries
_COLUMNS = ("delivery_id", "webhook_id", "room_id", "seq", "event_id", "event", "body", "created_at", "retry_since",
            "state", "attempts", "next_attempt_at", "last_attempt_at", "last_status", "last_error", "finished_at")
_KEYS = frozenset({"delivery_id", "webhook_id", "room_id", "event_id", "event", "body", "created_at"})
CHUNK = 500  # rows per statement (PostgreSQL's 32767 bind parameters; SQLite's 32766)


def _row(d: Delivery) -> dict[str, Any]:
    return {c: getattr(d, c) for c in _COLUMNS}


def _delivery(r: sa.Row[Any]) -> Delivery:
    return Delivery(**{c: getattr(r, c) for c in _COLUMNS})


def _webhook(r: sa.Row[Any]) -> Webhook:
    return Webhook(webhook_id=r.webhook_id, url=r.url, events=tuple(r.events), room_id=r.room_id,
                   lesson_id=r.lesson_id, secret=r.secret, created_at=r.created_at)


class SqlWebhookStore:
    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        """``engine``: the room store's (read when used: it exists once that store is open)."""
        self._engine = engine

    async def open(self) -> None:
        return None  # the room store opened the engine and migrated the schema (r0003)

    async def close(self) -> None:
        return None  # the room store disposes of the engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine()

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert(table) if self.engine.dialect.name == "postgresql" else sqlite.insert(table))

    async def add_webhook(self, webhook: Webhook) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(W).values(
                webhook_id=webhook.webhook_id, url=webhook.url, events=list(webhook.events), room_id=webhook.room_id,
                lesson_id=webhook.lesson_id, secret=webhook.secret, created_at=webhook.created_at))

    async def delete_webhook(self, webhook_id: str) -> bool:
        async with self.engine.begin() as conn:
            # deliveries first: the cascade needs foreign keys on, which is true here but costs a
            # lookup per row; one DELETE is plainer
            await conn.execute(sa.delete(D).where(D.c.webhook_id == webhook_id))
            res = await conn.execute(sa.delete(W).where(W.c.webhook_id == webhook_id))
        return bool(res.rowcount)

    async def list_webhooks(self) -> list[Webhook]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(W).order_by(W.c.created_at, W.c.webhook_id))
            return [_webhook(r) for r in rows]

    async def save_deliveries(self, deliveries: Sequence[Delivery], *, claimer: str, lease_until: float) -> None:
        if not deliveries:
            return
        async with self.engine.begin() as conn:
            known = set((await conn.scalars(sa.select(W.c.webhook_id).where(
                W.c.webhook_id.in_({d.webhook_id for d in deliveries})))).all())
            rows = [{**_row(d), "claimed_by": claimer, "claim_until": lease_until}
                    for d in deliveries if d.webhook_id in known]
            stmt = self._insert(D)
            upsert = stmt.on_conflict_do_update(
                index_elements=["delivery_id"],
                set_={c: stmt.excluded[c] for c in (*_COLUMNS, "claim_until") if c not in _KEYS},
                where=D.c.claimed_by == stmt.excluded.claimed_by)  # only the claimer writes a row
            for i in range(0, len(rows), CHUNK):
                await conn.execute(upsert, rows[i:i + CHUNK])

    async def claim(self, claimer: str, *, now: float, lease_until: float, force: bool = False) -> list[Delivery]:
        free = D.c.claimed_by.is_(None) | ((D.c.claimed_by != claimer)
                                           & (sa.true() if force else sa.func.coalesce(D.c.claim_until, 0.0) <= now))
        stmt = (sa.update(D).where(D.c.state == PENDING, free).values(claimed_by=claimer, claim_until=lease_until)
                .returning(*(D.c[c] for c in _COLUMNS)))
        async with self.engine.begin() as conn:
            rows = [_delivery(r) for r in await conn.execute(stmt)]
        return sorted(rows, key=lambda d: d.seq)

    async def renew(self, claimer: str, *, lease_until: float) -> set[str]:
        stmt = (sa.update(D).where(D.c.claimed_by == claimer, D.c.state == PENDING)
                .values(claim_until=lease_until).returning(D.c.delivery_id))
        async with self.engine.begin() as conn:
            return set((await conn.scalars(stmt)).all())

    async def release(self, claimer: str) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(sa.update(D).where(D.c.claimed_by == claimer, D.c.state == PENDING)
                                     .values(claim_until=0.0))
        return int(res.rowcount or 0)

    async def claimers(self) -> set[str]:
        async with self.engine.connect() as conn:
            return {c for c in (await conn.scalars(sa.select(D.c.claimed_by).distinct().where(
                D.c.state == PENDING))).all() if c is not None}

    async def reopen(self, d: Delivery, *, claimer: str, lease_until: float) -> bool:
        values = {c: getattr(d, c) for c in _COLUMNS if c not in _KEYS}
        async with self.engine.begin() as conn:
            res = await conn.execute(sa.update(D).where(
                D.c.delivery_id == d.delivery_id, D.c.webhook_id == d.webhook_id, D.c.state != PENDING)
                .values(**values, claimed_by=claimer, claim_until=lease_until))
        return bool(res.rowcount)

    async def pending(self) -> list[Delivery]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(D).where(D.c.state == PENDING).order_by(D.c.seq))
            return [_delivery(r) for r in rows]

    async def max_seq(self) -> int:
        async with self.engine.connect() as conn:
            seq = await conn.scalar(sa.select(sa.func.max(D.c.seq)))
        return -1 if seq is None else int(seq)

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(D).where(D.c.delivery_id == delivery_id,
                                                      D.c.webhook_id == webhook_id))).first()
        return None if r is None else _delivery(r)

    async def list_deliveries(self, webhook_id: str, *, state: str | None, offset: int,
                              limit: int) -> tuple[list[Delivery], int]:
        where = [D.c.webhook_id == webhook_id]
        if state is not None:
            where.append(D.c.state == state)
        async with self.engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(D).where(*where))
            rows = await conn.execute(sa.select(D).where(*where).order_by(D.c.seq).offset(offset).limit(limit))
            return [_delivery(r) for r in rows], int(total or 0)

    async def purge(self, before: float) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(sa.delete(D).where(D.c.state != PENDING, D.c.finished_at < before))
        return int(res.rowcount or 0)

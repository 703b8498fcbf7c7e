"""The delivery worker: one task per (webhook, room) queue with something pending, so a slow or dead
receiver holds up only its own queues; the rules (order, back-off, dead) are schedule.py's.

An attempt is one HTTP POST of the delivery's body, signed (signing.py), within ``timeout_s``
(connecting included); 2xx is delivered, anything else (another status, a redirect, a refused
connection, a timeout) is a failed attempt.  Every result goes back to the outbox (``on_change``)
to be written behind.  Stopping cancels attempts in flight: those deliveries stay pending and a
restart sends them again (at least once).

Several workers on one outbox: an attempt starts only while this process's claims are surely
still its own (``ready``, claims.py), and deliveries another process has taken over are dropped
from the queues (``drop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from signaling.webhooks import schedule
from signaling.webhooks.burst import BurstGate
from signaling.webhooks.registration import Webhook
from signaling.webhooks.schedule import DEAD, DELIVERED, Delivery, DeliveryQueue
from signaling.webhooks.signing import Signer

log = logging.getLogger("urok.webhooks")

CONTENT_TYPE = "application/webhook+json"
MAX_RESPONSE = 64 * 1024  # read (and ignore) at most this much of a receiver's answer
PER_HOST = 100  # connections to one receiver at once (the others never wait for them)


class Failure(Exception):
    """A failed attempt: ``status`` is the receiver's answer, or None when there was none."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# sends one attempt; returns the 2xx status or raises Failure
Send = Callable[[Webhook, Delivery], Awaitable[int]]


class HttpSender:
    def __init__(self, *, issuer: str, timeout_s: float, clock: Callable[[], float] = time.time,
                 user_agent: str = "urok-webhooks") -> None:
        self.issuer = issuer
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.clock = clock
        self.user_agent = user_agent
        self.signer = Signer()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # no proxies from the environment, no cookies kept between receivers
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=PER_HOST),
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
        return self._session

    async def __call__(self, webhook: Webhook, d: Delivery) -> int:
        headers = {"Authorization": self.signer.sign(d.body, secret=webhook.secret, issuer=self.issuer,
                                                     now=self.clock()),
                   "Content-Type": CONTENT_TYPE, "X-Urok-Event": d.event, "X-Urok-Delivery": d.delivery_id,
                   "User-Agent": self.user_agent}
        try:
            async with self._http().post(webhook.url, data=d.body, headers=headers, timeout=self.timeout,
                                         allow_redirects=False) as r:
                read = 0
                while read <= MAX_RESPONSE and (chunk := await r.content.readany()):
                    read += len(chunk)
                status = r.status
        except TimeoutError:
            raise Failure(f"no answer within {self.timeout.total:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise Failure(f"{type(e).__name__}: {e}") from None
        if not 200 <= status < 300:
            raise Failure(f"HTTP {status}", status)
        return status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Deliverer:
    def __init__(self, send: Send, webhook: Callable[[str], Webhook | None], *,
                 on_change: Callable[[Delivery], None], max_backoff_s: float, retry_s: float,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, gate: BurstGate | None = None,
                 ready: Callable[[], Awaitable[None]] | None = None) -> None:
        self.send = send
        self.ready = ready  # waits until this process's lease covers an attempt (None: one process alone)
        self.gate = gate  # deliveries yield to a burst of room events (burst.py); None: never
        self.webhook = webhook  # the registration by id (None: deleted)
        self.on_change = on_change
        self.max_backoff_s = max_backoff_s
        self.retry_s = retry_s
        self.clock = clock
        self.sleep = sleep
        self.delivered = 0
        self.failed_attempts = 0
        self.dead = 0
        self._queues: dict[tuple[str, str], DeliveryQueue] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._closed = False

    def add(self, d: Delivery) -> None:
        """Queue a pending delivery behind the others of its (webhook, room)."""
        if self._closed:
            return
        q = self._queues.get(d.key)
        if q is None:
            q = self._queues[d.key] = DeliveryQueue()
        q.add(d)
        if d.key not in self._tasks:
            self._tasks[d.key] = asyncio.create_task(self._drain(d.key, q), name=f"urok-webhook-{d.key[0]}")

    def queued(self, delivery_id: str) -> bool:
        return any(d.delivery_id == delivery_id for q in self._queues.values() for d in q.items())

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def queued_ids(self) -> set[str]:
        return {d.delivery_id for q in self._queues.values() for d in q.items()}

    def drop(self, delivery_ids: set[str]) -> int:
        """Forget deliveries another process sends now (an attempt in flight ends; its result is
        not written: the row is not this process's).  Returns how many were queued."""
        return sum(q.remove(delivery_ids) for q in self._queues.values()) if delivery_ids else 0

    async def _drain(self, key: tuple[str, str], q: DeliveryQueue) -> None:
        try:
            while (d := q.head()) is not None:
                wait = (q.due_at() or 0.0) - self.clock()
                if wait > 0:
                    await self.sleep(wait)
                await self._yield_to_burst()
                if self.ready is not None:
                    await self.ready()
                    if q.head() is not d:
                        continue  # dropped meanwhile (taken over), or a resumed older one came first
                webhook = self.webhook(d.webhook_id)
                if webhook is None:
                    return  # deleted: its rows are gone too
                await self._attempt(webhook, d)
                self.on_change(d)
                q.settle()
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]
                if self._queues.get(key) is q and (not len(q) or self._closed or self.webhook(key[0]) is None):
                    del self._queues[key]

    async def _yield_to_burst(self) -> None:
        if self.gate is None:
            return
        since: float | None = None
        while (wait := self.gate.wait_s(self.clock(), since)) > 0:
            if since is None:
                since = self.clock()
                self.gate.deferrals += 1
            await self.sleep(wait)

    async def _attempt(self, webhook: Webhook, d: Delivery) -> None:
        try:
            status = await self.send(webhook, d)
        except Exception as e:  # Failure; anything else is a bug here, and still only a failed attempt
            if not isinstance(e, Failure):
                log.exception("webhook delivery %s: the attempt failed unexpectedly", d.delivery_id)
            self.failed_attempts += 1
            schedule.failed(d, self.clock(), status=getattr(e, "status", None), error=str(e) or type(e).__name__,
                            max_backoff_s=self.max_backoff_s, retry_s=self.retry_s)
            if d.state == DEAD:
                self.dead += 1
                log.warning("webhook delivery %s to %s is dead after %d attempts: %s", d.delivery_id,
                            webhook.webhook_id, d.attempts, e)
            return
        schedule.succeeded(d, self.clock(), status)
        if d.state == DELIVERED:
            self.delivered += 1

    async def drop_webhook(self, webhook_id: str) -> None:
        """Stop the queues of a deleted registration."""
        keys = [k for k in self._queues if k[0] == webhook_id]
        tasks = [t for k in keys if (t := self._tasks.pop(k, None)) is not None]
        for k in keys:
            del self._queues[k]
        await self._cancel(tasks)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        await self._cancel(tasks)
        self._queues.clear()

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def counters(self) -> dict[str, float]:
        return {"delivered": float(self.delivered), "failed_attempts": float(self.failed_attempts),
                "dead": float(self.dead)}

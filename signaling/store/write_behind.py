"""The write-behind writer's task, shared by the room store (sql_store.py) and the webhook outbox
(signaling/webhooks/outbox.py).

The owner marks what changed and calls ``wake``; the task, woken by the first mark, runs the owner's
round (write every mark in one transaction, then the owner's periodic jobs) and pauses the gap the
round returns, so a burst of changes costs few transactions.  It also runs every ``flush_s`` with no
mark, to retry a failed write.  The round must not raise: it logs and counts its own failures.

``stop`` stops the task between rounds rather than cancelling it inside a transaction (a cancel in
the middle of a driver call leaves SQLAlchemy's pooled connection to be cleaned up under the
owner's last write and dispose); it is cancelled only if a round hangs for ``STOP_WAIT_S``.  The
owner writes what is still marked itself after ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

STOP_WAIT_S = 10.0


class WriteBehind:
    def __init__(self, run_round: Callable[[], Awaitable[float]], *, flush_s: float, name: str) -> None:
        self._round = run_round  # returns the pause before the next round, in seconds
        self.flush_s = flush_s
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Something was marked: a round runs at once, or after the pause if one is running."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop between rounds (no-op when not started); ``start`` may be called again."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._stopping = False

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            if self._stopping:
                return  # the owner writes the rest itself
            await asyncio.sleep(await self._round())

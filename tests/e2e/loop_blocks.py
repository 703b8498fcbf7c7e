"""How long the event loop's callbacks hold the loop, in CPU time (test support).

Every ready callback (a task step, a protocol's data_received, a timer) runs through
``asyncio.events.Handle._run``; timing each one with the thread's CPU clock gives the longest
stretch the loop could answer nobody else.  CPU time, not wall time: on a loaded test machine the
process may wait for a core, which says nothing about the code; a callback's CPU time is what it
would block an idle machine for.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import events
from types import TracebackType
from typing import Any


def _where(handle: events.Handle) -> str:
    """What a callback runs: for a task's step, the coroutines it is suspended in, innermost last."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(handle)[:200]
    chain = []
    coro: Any = task.get_coro()
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        chain.append(f"{coro.cr_frame.f_code.co_name}:{coro.cr_frame.f_lineno}")
        coro = coro.cr_await
    return " > ".join(chain) or repr(task)[:200]


class LoopBlocks:
    """Within the block, records the CPU time of every loop callback in this process."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, str]] = []
        self._original: Any = None

    def __enter__(self) -> LoopBlocks:
        original = events.Handle._run
        samples = self.samples
        longest = [0.0]

        def timed(handle: events.Handle) -> None:
            start = _where(handle)  # where a task's step starts (outside the time taken)
            t0 = time.thread_time()
            try:
                original(handle)
            finally:
                spent = time.thread_time() - t0
                if spent > 0.001 or spent > longest[0]:  # keep the ones worth a look (and cheap)
                    longest[0] = max(longest[0], spent)
                    samples.append((spent, f"{start} ... {_where(handle)}"))

        self._original = original
        events.Handle._run = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        events.Handle._run = self._original  # type: ignore[method-assign]

    @property
    def longest(self) -> float:
        """Seconds of CPU of the longest callback."""
        return max((s for s, _ in self.samples), default=0.0)

    def top(self, n: int = 5) -> list[tuple[float, str]]:
        """The ``n`` longest callbacks: (milliseconds of CPU, what ran)."""
        return [(round(s * 1000, 2), what) for s, what in sorted(self.samples, reverse=True)[:n]]

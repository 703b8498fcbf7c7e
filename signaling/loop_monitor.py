"""How long the event loop was held, and by what: loop lag and garbage-collector pauses, for /metrics.

A task sleeps ``interval`` and measures how late it wakes (the loop's lag: a callback that held the
loop, or the process waiting for a core); for the worst lag so far it keeps how much CPU the loop's
thread and the whole process spent meanwhile, which tells the three causes apart on a loaded
machine: the loop's own work (thread CPU ~ the lag), another thread holding the GIL (process CPU >>
thread CPU: the database driver's thread), or no core (both small).  ``gc.callbacks`` time every
collection by generation: a full collection walks every object of a 2000-person room's process.

Why: issue 11's signalling benchmark showed one ~250 ms stall in most SQLite runs and none on
memory; the client's own pauses and the server's could not be told apart from outside
(docs/benchmarks.md, "Again at the end of the next session").  uvloop runs the server, so the
loop's callbacks cannot be timed one by one (tests/e2e/loop_blocks.py patches asyncio's Handle);
a sleeping probe works on any loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Any

LAG_BUCKETS_MS = (20, 50, 100, 250, 1000)


@dataclass(slots=True)
class LagRecord:
    lag_s: float = 0.0
    thread_cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    at: float = 0.0  # time.time() when it ended


@dataclass(slots=True)
class LoopStats:
    samples: int = 0
    lag_total_s: float = 0.0
    over: dict[int, int] = field(default_factory=lambda: dict.fromkeys(LAG_BUCKETS_MS, 0))
    worst: LagRecord = field(default_factory=LagRecord)
    gc_collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    gc_pause_total_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    gc_pause_max_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


class LoopMonitor:
    # 10 wake-ups a second, not 50: an idle server spent 7-9 ms CPU/s at 20 ms (the wake-ups, not the
    # clocks read), 3 ms/s at 100 ms; that idle cost is ~1 us per forwarded packet at the Janus
    # comparison's 8,200 packets/s (docs/benchmarks.md, "Issue 12"). A hold of the loop of 100 ms or
    # more always delays a wake-up; a shorter one is caught in proportion to its length.
    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.stats = LoopStats()
        self._task: asyncio.Task[None] | None = None
        self._gc_started = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-monitor")
            gc.callbacks.append(self._on_gc)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        gen = min(2, int(info.get("generation", 0)))
        spent = time.perf_counter() - self._gc_started
        st = self.stats
        st.gc_collections[gen] += 1
        st.gc_pause_total_s[gen] += spent
        st.gc_pause_max_s[gen] = max(st.gc_pause_max_s[gen], spent)

    async def _run(self) -> None:
        st = self.stats
        interval = self.interval_s
        while True:
            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            await asyncio.sleep(interval)
            lag = max(0.0, time.perf_counter() - t0 - interval)
            st.samples += 1
            st.lag_total_s += lag
            ms = lag * 1000
            for bucket in LAG_BUCKETS_MS:
                if ms >= bucket:
                    st.over[bucket] += 1
            if lag > st.worst.lag_s:
                st.worst = LagRecord(lag, time.thread_time() - c0, time.process_time() - p0, time.time())

    # --- /metrics -----------------------------------------------------------------------------------
    def counters(self) -> dict[str, dict[str, float]]:
        st = self.stats
        return {
            "loop_lag_over_total": {f"ms={b}": float(n) for b, n in st.over.items()},
            "loop_lag_seconds_total": {"": st.lag_total_s},
            "gc_collections_total": {f"generation={g}": float(n) for g, n in enumerate(st.gc_collections)},
            "gc_pause_seconds_total": {f"generation={g}": s for g, s in enumerate(st.gc_pause_total_s)},
        }

    def gauges(self) -> dict[str, float]:
        st = self.stats
        return {
            "loop_lag_max_seconds": st.worst.lag_s,
            "loop_lag_max_thread_cpu_seconds": st.worst.thread_cpu_s,
            "loop_lag_max_process_cpu_seconds": st.worst.process_cpu_s,
            "loop_lag_max_at": st.worst.at,
            "gc_pause_max_seconds": max(st.gc_pause_max_s),
        }

"""How busy this worker process's CPU is: the share of the CPU it may use that it used lately.

The join gate (join_gate.py) stops admitting joins above ``join_cpu_limit``.  Why CPU and not only
the loop's lag: a viewer admitted stays, and its packets cost the worker for the rest of the
lesson; the lag shows only once the worker is already past what it can carry, and then no gate can
help those already in (measured: a worker limited to a quarter core admitted viewers until its loop
lagged, and by then forwarding to them took all of its CPU; the host's consent checks went
unanswered and the lesson fell; docs/benchmarks.md, "Overload").  The CPU share rises steadily as
viewers are added and says so before the loop falls behind.

What the process may use: one core (one event loop), or less where a CPU quota says so (a
container's or cgroup's: cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, v2 ``cpu.max``),
re-read every ``QUOTA_EVERY_S`` (a process can be moved into a group while it runs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

QUOTA_EVERY_S = 5.0
CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cores(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores, or None if it has none (or none is known)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = path.lstrip("/")
        if "cpu" in controllers.split(","):  # v1
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                with contextlib.suppress(OSError, ValueError):
                    quota = int((mount / rel / "cpu.cfs_quota_us").read_text())
                    period = int((mount / rel / "cpu.cfs_period_us").read_text())
                    return quota / period if quota > 0 and period > 0 else None
        elif controllers == "":  # v2 (or the unified hierarchy beside v1)
            for mount in (root, root / "unified"):
                with contextlib.suppress(OSError, ValueError):
                    quota_text, period_text = (mount / rel / "cpu.max").read_text().split()
                    if quota_text != "max":
                        return int(quota_text) / int(period_text)
    return None


class CpuLoad:
    """Callable: the share (0..1+) of its usable CPU this process used over the last ``window_s``."""

    def __init__(self, *, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 cpu_time: Callable[[], float] = time.process_time,
                 quota: Callable[[], float | None] = quota_cores) -> None:
        self._window_s = window_s
        self._clock = clock
        self._cpu_time = cpu_time
        self._quota = quota
        self._at = clock()
        self._cpu = cpu_time()
        self._value = 0.0
        self._quota_at = -QUOTA_EVERY_S
        self.cores = 1.0

    def __call__(self) -> float:
        now = self._clock()
        if now - self._quota_at >= QUOTA_EVERY_S:
            q = self._quota()
            self.cores = 1.0 if q is None else min(1.0, q)
            self._quota_at = now
        if now - self._at >= self._window_s:
            cpu = self._cpu_time()
            self._value = (cpu - self._cpu) / (now - self._at) / self.cores
            self._at, self._cpu = now, cpu
        return self._value

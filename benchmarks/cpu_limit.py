"""A CPU quota per server process for the load benchmarks (Linux cgroups, v1 `cpu` or v2).

On this 2-core machine the load generator shares the cores with the server, so "one worker's
capacity" and "1.5x of it" (issue 19) cannot be shown by adding load until a core is full: the
generator would run out first.  Instead each worker process gets a fixed share of a core (CFS
bandwidth control: ``cores`` x 10 ms of CPU per 10 ms), which makes a worker as small as the
benchmark needs; two workers then get two such shares.  Needs root (CI and this machine run as
root); the cgroups are removed when the processes have gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
# A short period: a process over its quota is stopped for at most 7.5 ms at 0.25 core (10 ms
# periods), as a slower core would be, not 75 ms at a time (the default 100 ms periods), which
# reads as loop lag of its own (signaling/ws/join_gate.py measures lag)
PERIOD_US = 10_000


class CpuLimitUnavailable(RuntimeError):
    """No writable cgroup CPU controller here."""


def _root() -> tuple[Path, bool]:
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, True
    if (V2 / "cgroup.controllers").exists() and "cpu" in (V2 / "cgroup.controllers").read_text().split():
        return V2, False
    unified = V2 / "unified"
    if (unified / "cgroup.controllers").exists() and "cpu" in (unified / "cgroup.controllers").read_text().split():
        return unified, False
    raise CpuLimitUnavailable("no cgroup cpu controller (cgroup v1 /sys/fs/cgroup/cpu or v2 with cpu)")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the workers of `urok serve --workers N`)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(name))
    return sorted(out)


@contextlib.contextmanager
def cpu_quota(pids: Sequence[int], cores: float) -> Iterator[list[Path]]:
    """Each of ``pids`` (with its threads, and children it starts later) limited to ``cores`` of CPU."""
    root, v1 = _root()
    made: list[Path] = []
    try:
        for pid in pids:
            group = root / f"urok-bench-{os.getpid()}-{pid}"
            try:
                group.mkdir()
            except OSError as e:
                raise CpuLimitUnavailable(f"cannot make a cgroup under {root}: {e}") from None
            made.append(group)
            quota = max(1000, int(cores * PERIOD_US))
            if v1:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            (group / "cgroup.procs").write_text(str(pid))
        yield made
    finally:
        for group in made:
            for _ in range(50):  # empty once its processes exited (the server is stopped first)
                with contextlib.suppress(OSError):
                    group.rmdir()
                    break
                time.sleep(0.1)


def throttled_s(groups: Sequence[Path]) -> float:
    """Seconds the groups' processes waited for their quota so far (the limit at work)."""
    total = 0.0
    for group in groups:
        with contextlib.suppress(OSError, ValueError):
            for line in (group / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                if key == "throttled_time":  # v1: ns
                    total += int(value) / 1e9
                elif key == "throttled_usec":  # v2
                    total += int(value) / 1e6
    return total

"""The CPU share the join gate reads (signaling/ws/cpu_load.py): a process's CPU time over the wall
clock, against one core or its cgroup's quota, read from real cgroup files of both versions (a
temporary tree laid out as /sys/fs/cgroup is)."""

from __future__ import annotations

from pathlib import Path

from signaling.ws.cpu_load import CpuLoad, quota_cores


def test_the_share_is_cpu_time_over_wall_time_against_the_quota() -> None:
    now, cpu = [0.0], [0.0]
    load = CpuLoad(window_s=1.0, clock=lambda: now[0], cpu_time=lambda: cpu[0], quota=lambda: 0.25)
    assert load() == 0.0
    now[0], cpu[0] = 1.0, 0.2  # 0.2 CPU-s in 1 s of a quarter core: 80%
    assert abs(load() - 0.8) < 1e-9
    now[0], cpu[0] = 1.5, 0.45  # within the window: the last value stands
    assert abs(load() - 0.8) < 1e-9


def test_without_a_quota_the_share_is_of_one_core() -> None:
    now, cpu = [0.0], [0.0]
    load = CpuLoad(window_s=1.0, clock=lambda: now[0], cpu_time=lambda: cpu[0], quota=lambda: None)
    now[0], cpu[0] = 2.0, 1.0
    assert abs(load() - 0.5) < 1e-9 and load.cores == 1.0


def test_the_quota_is_read_from_cgroup_v1_and_v2_files(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    group = v1 / "cpu" / "urok-bench-1"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("2500\n")
    (group / "cpu.cfs_period_us").write_text("10000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("7:cpu:/urok-bench-1\n4:memory:/\n")
    assert quota_cores(proc, v1) == 0.25
    (group / "cpu.cfs_quota_us").write_text("-1\n")  # no limit
    assert quota_cores(proc, v1) is None

    v2 = tmp_path / "v2"
    (v2 / "school").mkdir(parents=True)
    (v2 / "school" / "cpu.max").write_text("150000 100000\n")
    proc.write_text("0::/school\n")
    assert quota_cores(proc, v2) == 1.5
    (v2 / "school" / "cpu.max").write_text("max 100000\n")
    assert quota_cores(proc, v2) is None
    assert quota_cores(tmp_path / "missing", v2) is None

"""The forwarding benchmark in small: a real server subprocess, one publisher, two subscribers, a 2 s
window.  It proves the benchmark's whole path works (signalling, media, counting, /proc figures) so
that `python -m benchmarks.forwarding` keeps running; the real figures come from the full run
(docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.forwarding import BenchConfig, PointResult, format_table, parse_subs, run_point


async def test_two_subscribers_receive_everything_and_the_table_is_sane(tmp_path: Path) -> None:
    """What cannot be noise: both subscribers connected and got packets without gaps in the sequence
    numbers, subscriber 0 decoded video, the figures are consistent with each other and the table
    says what the result says.  Rates, throughput and CPU are the benchmark's to measure (issue 20,
    item 10: a +-3% packet-rate window over 2 s flaked on a loaded machine)."""
    cfg = BenchConfig(window_s=2.0, warmup_s=2.5, log_dir=tmp_path)
    r = await run_point(2, cfg)
    assert r.connected == 2, r.failures
    assert r.pub_pps > 0 and abs(r.expected_pps - 2 * r.pub_pps) < 1e-6, r
    assert r.min_sub_pps > 0, r  # each subscriber received packets in the window
    assert r.seq_loss_pct < 1.0, r  # no gaps in the sequence numbers on loopback (a forwarding bug: far more)
    assert r.decoded_fps > 0, r  # subscriber 0 really decodes the VP8
    assert r.server_us_per_pkt is not None and 0 <= r.server_sys_pct <= 100, r  # /proc was read
    assert r.server_procs >= 1 and r.server_threads >= 1 and r.gen_procs == 1, r
    assert (tmp_path / "server-N2.log").read_text()  # the server's own log is kept

    table = format_table([r])
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["N", "conn", "fwd"] and "us/fwd pkt" in header
    assert row.split()[:5] == ["2", "2", f"{r.fwd_pps:.0f}", f"{r.expected_pps:.0f}", f"{r.loss_pct:.2f}"]
    assert ("disturbed (rerun these)" in table) == bool(r.disturbances()), table


def test_table_marginal_cost_and_subs_parsing() -> None:
    def result(n: int, cpu: float) -> PointResult:
        return PointResult(
            subs=n, connected=n, window_s=10, pub_pps=165, fwd_pps=165 * n, expected_pps=165 * n, loss_pct=0,
            seq_loss_pct=0, max_gap_ms=40, min_sub_pps=165, max_sub_pps=165, fwd_mbps=1.05 * n, decoded_fps=30,
            server_cpu_s_per_s=cpu, server_us_per_pkt=cpu * 1e6 / (165 * n), server_sys_pct=50, server_rss_mb=90,
            server_threads=5, server_procs=1, gen_cpu_s_per_s=0.1, gen_procs=1, other_cpu_s_per_s=0,
            udp_drops_per_s=0, join_s=1)

    table = format_table([result(10, 0.02), result(1, 0.01)])
    assert "N    1 ->   10: 6.7 us/pkt" in table
    assert parse_subs("1,10, 50") == [1, 10, 50]

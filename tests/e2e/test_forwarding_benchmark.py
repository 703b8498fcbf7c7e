"""The forwarding benchmark in small: a real server subprocess, one publisher, two subscribers, a 2 s
window.  It proves the benchmark's whole path works (signalling, media, counting, /proc figures) so
that `python -m benchmarks.forwarding` keeps running; the real figures come from the full run
(docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.forwarding import BenchConfig, PointResult, format_table, parse_subs, run_point


async def test_two_subscribers_receive_everything_and_the_table_is_sane(tmp_path: Path) -> None:
    cfg = BenchConfig(window_s=2.0, warmup_s=2.5, log_dir=tmp_path)
    r = await run_point(2, cfg)
    assert r.connected == 2, r.failures
    assert 120 < r.pub_pps < 220, r  # ~110 VP8 + 50 Opus packets per second
    assert abs(r.expected_pps - 2 * r.pub_pps) < 1e-6
    assert r.loss_pct < 3.0, r
    assert r.seq_loss_pct < 1.0, r  # no gaps in the sequence numbers on loopback
    assert 0.97 * r.expected_pps < r.fwd_pps < 1.03 * r.expected_pps, r
    assert 0.9 * r.pub_pps < r.min_sub_pps <= r.max_sub_pps < 1.1 * r.pub_pps, r  # both subscribers got it all
    assert 0.8 < r.fwd_mbps / 2 < 1.5, r  # ~1.05 Mbit/s per subscriber
    assert r.decoded_fps > 10, r  # subscriber 0 really decodes the VP8 (a keyframe every 2 s)
    assert r.server_cpu_s_per_s > 0 and r.server_us_per_pkt is not None and r.server_us_per_pkt > 0, r
    assert 0 <= r.server_sys_pct <= 100, r
    assert 20 < r.server_rss_mb < 2000 and r.server_procs >= 1 and r.server_threads >= 1, r
    assert r.gen_cpu_s_per_s > 0 and r.gen_procs == 1, r
    assert (tmp_path / "server-N2.log").read_text()  # the server's own log is kept

    table = format_table([r])
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["N", "conn", "fwd"] and "us/fwd pkt" in header
    assert row.split()[:2] == ["2", "2"]


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

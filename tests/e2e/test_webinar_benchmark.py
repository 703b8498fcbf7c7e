"""The webinar benchmark in small: a real server subprocess, a webinar room, one host publishing the
low layer, five viewers in one generator process, a 2 s window.  It proves the benchmark's whole
path works (REST room and viewer tokens, subscribe, ICE + DTLS, counting, /proc figures) so that
`python -m benchmarks.webinar` keeps running; the real figures come from the full run
(docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.webinar import WebinarConfig, format_table, parse_viewers, run_point


@pytest.mark.timeout(60)
async def test_five_viewers_receive_the_low_layer_and_audio(tmp_path: Path) -> None:
    cfg = WebinarConfig(window_s=2.0, warmup_s=0.5, procs=1, join_timeout_s=15, log_dir=tmp_path)
    r = await run_point(5, cfg)
    assert r.connected == 5 and r.alive_end == 5, r.failures
    assert r.gen_procs == 1
    assert 60 < r.pub_pps < 120, r  # ~35 VP8 (320x180 15 fps ~300 kbit/s) + 50 Opus packets per second
    assert 20 < r.pub_video_pps < 60, r
    assert r.loss_pct < 3.0 and r.seq_loss_pct < 1.0, r
    assert 0.9 * r.pub_pps < r.min_viewer_pps <= r.max_viewer_pps < 1.1 * r.pub_pps, r  # audio and video each
    assert 0.25 < r.video_share < 0.6, r
    assert 0 < r.join_s < 10 and r.join_p50_s <= r.join_p95_s <= r.join_max_s, r
    assert 0.2 < r.recv_mbps / 5 < 0.6, r  # ~0.35 Mbit/s per viewer
    assert r.server_cpu_s_per_s > 0 and 20 < r.server_rss_idle_mb <= r.server_rss_mb + 1 < 2000, r
    assert r.gen_cpu_s_per_s > 0 and r.gen_rss_mb > 10, r
    assert r.server_log_problems == 0, (tmp_path / "server-webinar-N5.log").read_text()[-3000:]

    table = format_table([r])
    header, row = table.splitlines()[:2]
    assert header.split()[:4] == ["N", "conn", "alive", "join"] and "KB/viewer" in header
    assert row.split()[:3] == ["5", "5", "5"]
    # the summary names N only when the run held (< 1% loss counted in the window); on a loaded
    # machine a 2 s window may count a generator backlog (seq loss stays 0): the line then is absent
    summary = "largest N with every viewer connected and < 1% loss: 5"
    assert (summary in table) == r.holds(), (r.loss_pct, table)


def test_viewer_counts() -> None:
    assert parse_viewers("100,500, 1000") == [100, 500, 1000]
    assert parse_viewers("2000") == [1999]  # the room holds 2000 with the host

"""The webinar benchmark in small: a real server subprocess, a webinar room, one host publishing the
low layer, five viewers in one generator process, a 2 s window.  It proves the benchmark's whole
path works (REST room and viewer tokens, subscribe, ICE + DTLS, counting, /proc figures) so that
`python -m benchmarks.webinar` keeps running, with the viewers counting at the socket (``--count
raw``, the default) and after SRTP (``--count srtp``); the real figures come from the full run
(docs/benchmarks.md).  Offline: the socket-level count equals the count after SRTP."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest

from benchmarks.webinar import (
    SRTP_TAG_BYTES,
    ViewerCounter,
    WebinarConfig,
    format_table,
    parse_viewers,
    raw_rtp_tap,
    run_point,
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("count", ["raw", "srtp"])
async def test_five_viewers_receive_the_low_layer_and_audio(tmp_path: Path, count: str) -> None:
    cfg = WebinarConfig(window_s=2.0, warmup_s=0.5, procs=1, join_timeout_s=15, log_dir=tmp_path, count=count)
    r = await run_point(5, cfg)
    assert r.connected == 5 and r.alive_end == 5, r.failures
    assert r.gen_procs == 1
    assert r.count == count and r.tapped == (5 if count == "raw" else 0) and not r.tap_errors, r
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


def test_the_socket_count_equals_the_count_after_srtp() -> None:
    """raw_rtp_tap on SRTP datagrams (clear header, payload, tag) counts what ViewerCounter.count
    counts on the same packets decrypted; STUN, DTLS and SRTCP go on to the protocol's handler."""
    rng = random.Random(7)
    tag = SRTP_TAG_BYTES[b"SRTP_AES128_CM_SHA1_80"]
    after_srtp, raw = ViewerCounter(video_pts={96, 97}), ViewerCounter(video_pts={96, 97})
    forwarded: list[bytes] = []

    def forward(data: bytes, addr: Any) -> None:
        forwarded.append(data)

    tap = raw_rtp_tap(raw, forward, tag)
    seqs = {0x1111: 65500, 0x22222222: 10}  # audio wraps its sequence number
    others = [b"\x00\x01" + bytes(18), b"\x01\x01" + bytes(18),  # STUN request / response (consent)
              b"\x17\xfe\xfd" + bytes(30),  # DTLS
              b"\x80\xc8" + bytes(40), b"\x81\xc9" + bytes(40), b"\x8f\xcd" + bytes(30)]  # SRTCP SR, RR, NACK
    for i in range(400):
        ssrc = rng.choice(list(seqs))
        pt = 111 if ssrc == 0x1111 else 96 | (0x80 if rng.random() < 0.2 else 0)  # video, marker sometimes
        seqs[ssrc] = (seqs[ssrc] + (2 if rng.random() < 0.05 else 1)) & 0xFFFF  # some gaps
        seq = seqs[ssrc] if rng.random() > 0.03 else (seqs[ssrc] - 3) & 0xFFFF  # some reordered
        rtp = struct.pack("!BBHII", 0x80, pt, seq, i * 3000, ssrc) + rng.randbytes(rng.randint(20, 1100))
        after_srtp.count(rtp, 1000 + i)
        tap(rtp + rng.randbytes(tag), ("127.0.0.1", 5000))
        if i % 50 == 0:
            tap(others[i // 50 % len(others)], ("127.0.0.1", 5000))
    assert len(forwarded) == 8 and all(not 127 < d[0] < 192 or 191 < d[1] < 224 for d in forwarded)
    assert raw.rtp == after_srtp.rtp == 400 and raw.rtp_bytes == after_srtp.rtp_bytes
    assert raw.streams == after_srtp.streams and raw.seq_span() == after_srtp.seq_span() > 400
    assert raw.video == after_srtp.video > 100
    assert raw.first_audio_t and raw.first_video_t and raw.rtcp == 0


def test_viewer_counts() -> None:
    assert parse_viewers("100,500, 1000") == [100, 500, 1000]
    assert parse_viewers("2000") == [1999]  # the room holds 2000 with the host

"""The webinar benchmark in small: a real server subprocess, a webinar room, one host publishing the
low layer, five viewers in one generator process, a 2 s window.  It proves the benchmark's whole
path works (REST room and viewer tokens, subscribe, ICE + DTLS, counting, /proc figures) so that
`python -m benchmarks.webinar` keeps running, with the viewers counting at the socket in C
(``--count batch``, the default), at the socket in Python (``--count raw``) and after SRTP
(``--count srtp``); the real figures come from the full run (docs/benchmarks.md).  Offline: the
socket-level counts (Python and C, through real UDP sockets) equal the count after SRTP."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.webinar import (
    SRTP_TAG_BYTES,
    BatchDrainer,
    ViewerCounter,
    WebinarConfig,
    format_table,
    parse_viewers,
    raw_rtp_tap,
    run_point,
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("count", ["batch", "raw", "srtp"])
async def test_five_viewers_receive_the_low_layer_and_audio(tmp_path: Path, count: str) -> None:
    cfg = WebinarConfig(window_s=2.0, warmup_s=0.5, procs=1, join_timeout_s=15, log_dir=tmp_path, count=count)
    r = await run_point(5, cfg)
    # what cannot be noise: every viewer connected and stayed, counted where it was asked to, received
    # audio and video without gaps in the sequence numbers, and the server logged no problem.  Rates,
    # join times, CPU and memory are the benchmark's figures (issue 20, item 10)
    assert r.connected == 5 and r.alive_end == 5 and r.lost == 0, r.failures
    assert r.gen_procs == 1
    assert r.count == count and r.tapped == (0 if count == "srtp" else 5) and not r.tap_errors, r
    assert r.batched == (5 if count == "batch" else 0), r
    if count == "batch":  # the drainer read the sockets, counted SRTCP (sender reports), passed STUN on
        assert r.batch_stats["datagrams"] > r.batch_stats["srtcp"] > 0 and r.batch_stats["drains"] > 0, r
    assert r.gen_us_per_pkt is not None, r
    assert r.pub_pps > r.pub_video_pps > 0 and r.min_viewer_pps > 0, r  # each viewer got packets in the window
    assert 0 < r.video_share < 1, r  # audio and video both arrived
    assert r.seq_loss_pct < 1.0, r  # no gaps in the sequence numbers on loopback (a forwarding bug: far more)
    assert 0 < r.join_p50_s <= r.join_p95_s <= r.join_max_s, r
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


def _stream(rng: random.Random, n: int) -> list[bytes]:
    """``n`` RTP packets (decrypted) of an audio SSRC whose sequence number wraps and a video SSRC
    (marker bit sometimes), with gaps, reordered and repeated packets."""
    seqs = {0x1111: 65500, 0x22222222: 10}
    out = []
    for i in range(n):
        ssrc = rng.choice(list(seqs))
        pt = 111 if ssrc == 0x1111 else 96 | (0x80 if rng.random() < 0.2 else 0)
        seqs[ssrc] = (seqs[ssrc] + (2 if rng.random() < 0.05 else 1)) & 0xFFFF
        seq = (seqs[ssrc] - 3) & 0xFFFF if rng.random() < 0.03 else seqs[ssrc]  # some reordered
        out.append(struct.pack("!BBHII", 0x80, pt, seq, i * 3000, ssrc) + rng.randbytes(rng.randint(20, 1100)))
        if rng.random() < 0.02:
            out.append(out[-1])  # repeated
    return out


class _Proto:
    """What the drainer needs of aioice's protocol: a transport, datagram_received, connection_lost."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.received: list[tuple[bytes, Any]] = []
        self.lost = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost += 1


class _LoopTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.closed, self.protocol = sock, False, None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "sockname": self.sock.getsockname()}.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def close(self) -> None:
        self.closed = True
        self.sock.close()


async def test_the_c_batch_count_equals_the_count_after_srtp() -> None:
    """benchmarks._rxbatch through real UDP sockets on 127.0.0.1: SRTP datagrams read with recvmmsg
    and counted in C give what ViewerCounter.count gives on the same packets decrypted (packets,
    bytes, per-SSRC span across a wrap, gaps, reordering and repeats, video, first arrivals), with
    the state the Python count had before the take-over carried on; SRTCP is counted and dropped;
    STUN and DTLS reach the protocol's own datagram_received with the sender's address, and the
    protocol can still send."""
    rng = random.Random(11)
    tag = SRTP_TAG_BYTES[b"SRTP_AEAD_AES_128_GCM"]
    drainer = BatchDrainer(tick_s=3600)  # drained by hand below
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    dest = rx.getsockname()
    packets = _stream(rng, 1500)
    after_srtp, batch = ViewerCounter(video_pts={96, 97}), ViewerCounter(video_pts={96, 97})
    # the first 100 are counted in Python (before DTLS is up), as the viewer does
    for p in packets[:100]:
        after_srtp.count(p, 1000)
        batch.count(p, 1000)
    notified: list[float] = []
    batch.notify = lambda: notified.append(time.monotonic())
    old = _LoopTransport(rx)
    proto = _Proto(old)
    slot = drainer.take_over(proto, tag, batch)
    try:
        assert old.closed and old.protocol is not None and proto.transport is not old
        others = [b"\x00\x01" + bytes(18), b"\x01\x01" + bytes(18),  # STUN request / response (consent)
                  b"\x17\xfe\xfd" + bytes(30),  # DTLS
                  b"\x80\x60" + bytes(12 + tag - 3)]  # too short for an RTP header and the tag
        srtcp = [b"\x80\xc8" + bytes(40), b"\x81\xc9" + bytes(40), b"\x8f\xcd" + bytes(30)]  # SR, RR, NACK
        sent_others = []
        for i, p in enumerate(packets[100:]):
            after_srtp.count(p, 1000)
            tx.sendto(p + rng.randbytes(tag), dest)
            if i % 60 == 0:
                sent_others.append(others[len(sent_others) % len(others)])
                tx.sendto(sent_others[-1], dest)
            if i % 90 == 0:
                tx.sendto(srtcp[(i // 90) % len(srtcp)], dest)
            if i % 200 == 199:
                drainer.drain()  # several drains, with packets still queued in between
        await asyncio.sleep(0.05)
        drainer.drain()
        assert [d for d, _ in proto.received] == sent_others
        n_srtcp = len(range(0, len(packets) - 100, 90))
        assert drainer.c.stats()["srtcp"] == n_srtcp
        assert all(addr == tx.getsockname() for _, addr in proto.received)
        # a late packet of the Python path (queued before the take-over) goes to the C slot too
        late = struct.pack("!BBHII", 0x80, 111, 3, 0, 0x1111) + bytes(50)
        after_srtp.count(late, 1000)
        proto.transport.sendto(b"consent", tx.getsockname())  # the protocol sends through the dup
        assert tx.recv(100) == b"consent"
        drainer.c.count(slot, late)
        drainer.sync_all()
        assert batch.rtp == after_srtp.rtp == len(packets) + 1 and batch.rtp_bytes == after_srtp.rtp_bytes
        assert batch.streams == after_srtp.streams and batch.seq_span() == after_srtp.seq_span() > len(packets)
        assert batch.video == after_srtp.video > 300 and batch.first_audio_t and batch.first_video_t
        assert batch.max_gap_ms >= 0 and drainer.c.read(slot)[4] == 0  # the gap restarted
        stats = drainer.c.stats()
        assert stats["datagrams"] == len(packets) - 100 + len(sent_others) + n_srtcp
        assert stats["others"] == len(sent_others)
        # a slot whose first packets come in C notifies
        fresh, fresh_rx = ViewerCounter(video_pts={96}), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fresh_rx.bind(("127.0.0.1", 0))
        fresh_dest = fresh_rx.getsockname()
        fresh.notify = lambda: notified.append(time.monotonic())
        fresh_proto = _Proto(_LoopTransport(fresh_rx))
        drainer.take_over(fresh_proto, tag, fresh)
        tx.sendto(packets[0] + bytes(tag), fresh_dest)
        await asyncio.sleep(0.02)
        drainer.drain()
        assert fresh.rtp == 1 and (fresh.first_audio_t or fresh.first_video_t) and notified
        fresh_proto.transport.close()
    finally:
        proto.transport.close()
        drainer.close()
        tx.close()
    assert proto.transport.is_closing()
    tx2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx2.sendto(packets[0] + bytes(tag), dest)  # closed: nobody reads it, nothing changes
    tx2.close()
    drainer.drain()
    drainer.sync_all()
    assert batch.rtp == len(packets) + 1

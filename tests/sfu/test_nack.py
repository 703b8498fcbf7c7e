"""NACK answering limits (sfu.nack, issue 10): window, once per round trip, byte budget, RTT from
receiver reports; and the amplification factor of a NACK flood, on the offline packet path with
real SRTP/SRTCP sessions (both fan-outs) and over the wire with a real aiortc subscriber."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket
from pylibsrtp import Policy, Session

import sfu.consumer
from sfu import Consumer, WebRtcTransport, Worker, WorkerSettings, nack, rtcp
from sfu.rtp import parse_header

from .helpers import SubscriberClient, connect_publisher, dtls_transport, wait_for
from .offline import FAN_OUTS, CapturePath, load_packets, offline_publisher, offline_subscriber, offline_worker

VP8 = load_packets("rtp_vp8.hex")
KEY = 10  # VP8[10] starts a keyframe


def stream(n: int, first_seq: int = 40000) -> list[bytes]:
    """``n`` VP8 packets with consecutive sequence numbers from a keyframe (the captured ones,
    repeated; their sizes vary from 82 to 1324 bytes)."""
    base = VP8[KEY:]
    return [d[:2] + struct.pack("!H", (first_seq + i) & 0xFFFF) + d[4:]
            for i, d in ((i, base[i % len(base)]) for i in range(n))]


class Clock:
    """The consumer's clock (sfu.consumer.time), moved by the test; starts at the real time so the
    packet history's ages (real time) still hold."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sfu.consumer, "time", c)
    return c


Setup = tuple[WebRtcTransport, WebRtcTransport, Consumer, CapturePath, list[bytes]]


async def video_setup(worker: Worker, n: int = 40) -> Setup:
    """A publisher, one subscriber of its video, ``n`` packets forwarded; returns (pub, sub,
    consumer, capture, the subscriber's packets as sent)."""
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    sub, (consumer,), path, _ = await offline_subscriber(router, [producers["video"]])
    for data in stream(n):
        pub._on_rtp(data)
    out = path.rtp()
    assert len(out) == n and consumer.fast is worker.fast_path
    path.clear()
    return pub, sub, consumer, path, out


def seq_of(packet: bytes) -> int:
    return parse_header(packet).sequence_number


@pytest.fixture(params=FAN_OUTS)
async def make_worker(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Worker]]:
    """Offline workers of one fan-out (the test's parameter) with the settings the test asks for."""
    made: list[Worker] = []

    def make(**settings: object) -> Worker:
        w = offline_worker(request.param, **settings)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


async def test_nacks_ahead_of_or_far_behind_the_newest_sent_packet_are_ignored(
        make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(nack_window=8)
    _pub, sub, consumer, path, out = await video_setup(worker)
    newest = seq_of(out[-1])
    asked = [(newest - 9) & 0xFFFF, (newest - 8) & 0xFFFF, (newest + 1) & 0xFFFF, (newest + 300) & 0xFFFF]
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    assert path.rtp() == [out[-9]]  # 8 behind: inside the window, identical to what was sent
    assert consumer.stats.nack_dropped == {"far": 3} and worker.stats.nack_dropped == {"far": 3}
    assert (consumer.stats.nack_received, consumer.stats.retransmitted) == (4, 1)
    assert consumer.stats.retransmitted_bytes == worker.stats.retransmitted_bytes == len(out[-9])


async def test_a_packet_is_resent_at_most_once_per_round_trip(make_worker: Callable[..., Worker],
                                                              clock: Clock) -> None:
    worker = make_worker()
    _pub, sub, consumer, path, out = await video_setup(worker)
    asked = [seq_of(out[-3]), seq_of(out[-2])]
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    assert path.rtp() == [out[-3], out[-2]]
    clock.now += nack.DEFAULT_RTT / 2
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))  # the first repair cannot have arrived
    assert path.rtp() == []
    assert consumer.stats.nack_dropped == {"recent": 2} and consumer.stats.retransmitted == 2
    clock.now += nack.DEFAULT_RTT  # one round trip since: lost again, re-sent again
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    assert path.rtp() == [out[-3], out[-2]] and consumer.stats.retransmitted == 4


async def test_retransmitted_bytes_stay_within_the_token_bucket(make_worker: Callable[..., Worker],
                                                                clock: Clock) -> None:
    worker = make_worker(retransmit_rate=2000, retransmit_burst=4000)
    _pub, sub, consumer, path, out = await video_setup(worker)
    asked = [seq_of(p) for p in out[-30:]]
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    first = path.rtp()
    sent = sum(len(p) for p in first)
    assert 4000 - 1324 < sent <= 4000 and first == [p for p in out[-30:] if p in first]
    assert consumer.stats.retransmitted_bytes == sent
    assert consumer.stats.nack_dropped == {"rate": 30 - len(first)}
    clock.now += 0.5  # 1000 bytes more; the packets already re-sent are not asked again
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [s for s, p in zip(asked, out[-30:], strict=True)
                                                    if p not in first]))
    again = path.rtp()
    assert 0 < sum(len(p) for p in again) <= (4000 - sent) + 1000  # what was left, plus 1000
    assert consumer.stats.retransmitted_bytes == sent + sum(len(p) for p in again) <= 5000


async def test_round_trip_time_comes_from_receiver_reports(make_worker: Callable[..., Worker], clock: Clock) -> None:
    worker = make_worker()
    pub, sub, consumer, path, out = await video_setup(worker)
    video = consumer.producer
    assert consumer.rtt is None
    ntp = 0x0102030405060708
    before = time.monotonic()
    pub._on_rtcp(rtcp.build_sr(video.ssrc or 0, ntp, 1234, 10, 1000))  # translated to the consumer now
    after = time.monotonic()
    clock.now = after + 0.55
    lsr = (ntp >> 16) & 0xFFFFFFFF
    blocks = [RtcpReceiverInfo(ssrc=0x5EED, fraction_lost=0, packets_lost=0, highest_sequence=0, jitter=0,
                               lsr=lsr, dlsr=65536),  # another SSRC: ignored
              RtcpReceiverInfo(ssrc=consumer.ssrc, fraction_lost=0, packets_lost=0, highest_sequence=1, jitter=0,
                               lsr=lsr, dlsr=65536 // 4)]  # held 0.25 s by the subscriber
    report = bytes(RtcpRrPacket(ssrc=1, reports=blocks))  # aiortc's own serializer
    assert nack.report_blocks(report, 0, len(report), 2) == [(0x5EED, lsr, 65536), (consumer.ssrc, lsr, 16384)]
    sub._on_rtcp(report)
    assert consumer.rtt is not None and clock.now - after - 0.25 <= consumer.rtt <= clock.now - before - 0.25
    rtt = consumer.rtt  # about 0.3 s: the once-per-round-trip rule waits that long now
    # a report echoing no SR of ours (or none at all) changes nothing
    unknown = bytes(RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(
        ssrc=consumer.ssrc, fraction_lost=0, packets_lost=0, highest_sequence=1, jitter=0, lsr=lsr + 1, dlsr=0)]))
    sub._on_rtcp(unknown)
    assert consumer.rtt == rtt
    asked = [seq_of(out[-1])]
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    clock.now += rtt - 0.05
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    assert len(path.rtp()) == 1
    clock.now += 0.1
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    assert len(path.rtp()) == 2
    assert worker.stats.rtcp_dropped == {}


def test_a_measured_round_trip_is_clamped_and_smoothed() -> None:
    guard = nack.RetransmitGuard(10, 1000, 512)
    assert guard.round_trip() == nack.DEFAULT_RTT
    guard.on_rtt_sample(0.001)
    assert guard.round_trip() == nack.MIN_RTT  # a duplicate NACK from a jittery client still waits
    guard.on_rtt_sample(-1.0)  # a bad DLSR: ignored
    assert guard.rtt == 0.001
    for _ in range(100):
        guard.on_rtt_sample(5.0)
    assert guard.round_trip() == nack.MAX_RTT
    guard.on_rtt_sample(0.5)
    assert 4.0 < (guard.rtt or 0) < 5.0  # smoothed: one sample moves it by an eighth
    # the bucket: the burst at once, then the rate; a long pause refills to the burst, not beyond
    guard.refill(100.0)
    assert guard.admit(1, 1000, 100.0) is None and guard.admit(2, 1, 100.0) == nack.NACK_RATE
    guard.refill(101.0)
    assert guard.admit(3, 10, 101.0) is None and guard.admit(4, 1, 101.0) == nack.NACK_RATE
    guard.refill(1000.0)
    assert guard.admit(5, 600, 1000.0) is None and guard.admit(6, 400, 1000.0) is None
    assert guard.admit(7, 1, 1000.0) == nack.NACK_RATE


def srtcp_pair() -> tuple[Session, Session]:
    key = os.urandom(30)
    return (Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
            Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)))


def flood(consumer_ssrc: int, newest: int, runs: int = 30) -> bytes:
    """The issue's NACK: ``runs`` FCI items, each asking for a run of 17 packets (PID and all 16
    BLP bits), together the last ``17 * runs`` sequence numbers."""
    items = b"".join(struct.pack("!HH", (newest - 17 * (k + 1) + 1) & 0xFFFF, 0xFFFF) for k in range(runs))
    return struct.pack("!BBHII", 0x80 | rtcp.RTPFB_NACK, rtcp.RTCP_RTPFB, 2 + runs, 1, consumer_ssrc) + items


async def test_nack_flood_amplification_is_capped_per_consumer(make_worker: Callable[..., Worker]) -> None:
    """20 NACK packets of 30 runs each (about 2.9 KB of SRTCP, as in the issue), all asking for the
    same 510 packets: what goes back is bounded by the consumer's byte budget, not by the NACKs."""
    worker = make_worker()
    settings = worker.settings
    _pub, sub, consumer, path, out = await video_setup(worker, 600)
    newest = seq_of(out[-1])
    tx, rx = srtcp_pair()
    wanted = sum(len(p) for p in out[-510:])  # what answering every request once would send
    nack_bytes = 0
    started = time.monotonic()
    for _ in range(20):
        wire = bytes(tx.protect_rtcp(flood(consumer.ssrc, newest)))
        nack_bytes += len(wire)
        sub._on_rtcp(bytes(rx.unprotect_rtcp(wire)))
    elapsed = time.monotonic() - started
    back = path.sent
    back_bytes = sum(len(d) for d in back)  # SRTP datagrams, as on the wire
    assert consumer.stats.nack_received == 20 * 510
    assert back_bytes <= settings.retransmit_burst + settings.retransmit_rate * elapsed + 10 * len(back)
    # each packet at most once per round trip (100 ms until a receiver report gives one)
    seqs = [seq_of(p) for p in path.rtp()]
    assert max(seqs.count(s) for s in set(seqs)) <= 1 + elapsed / nack.DEFAULT_RTT
    print(f"\nNACK flood ({'compiled' if worker.fast_path else 'python'} fan-out): {nack_bytes} B of NACKs, "
          f"{len(back)} retransmissions, {back_bytes} B back: factor {back_bytes / nack_bytes:.1f} "
          f"(unlimited: {20 * wanted} B, factor {20 * wanted / nack_bytes:.0f})")
    assert back_bytes / nack_bytes < 20 * wanted / nack_bytes / 10


@pytest.mark.timeout(60)
async def test_nack_flood_from_a_real_subscriber_over_the_wire() -> None:
    """A real aiortc subscriber on 127.0.0.1: its receiver reports give the consumer an RTT, and
    20 SRTCP NACK packets asking for the last 510 packets again and again get at most the byte
    budget back."""
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",), retransmit_rate=20_000, retransmit_burst=20_000))
    router = worker.create_router("room")
    pub_t = router.create_transport("pub")
    pub_pc, mids = await connect_publisher(pub_t, audio=False)
    video = pub_t.produce(mids["video"], "camera")
    client = SubscriberClient()
    sub_t = router.create_transport("sub")
    consumer = sub_t.consume(video)
    try:
        await client.negotiate(sub_t)
        # aiortc's publisher sends an SR about every second, its subscriber an RR echoing ours
        assert await wait_for(lambda: consumer.rtt is not None, 20)
        assert consumer.rtt is not None and 0 <= consumer.rtt < 1.0  # loopback
        assert consumer.last_sent_seq is not None
        client_dtls = dtls_transport(client.pc)
        stats = consumer.stats
        before = stats.retransmitted_bytes
        started = time.monotonic()
        nack_bytes = 0
        for _ in range(20):
            data = flood(consumer.ssrc, consumer.last_sent_seq)
            nack_bytes += len(data) + 14  # SRTCP: index and 80-bit tag
            await client_dtls._send_rtp(data)
        assert await wait_for(lambda: stats.nack_received >= 20 * 510, 10)
        elapsed = time.monotonic() - started
        back = stats.retransmitted_bytes - before
        assert back <= 20_000 + 20_000 * elapsed
        assert stats.nack_dropped.get("recent", 0) > 0  # the same runs again and again
        print(f"\nNACK flood over the wire: {nack_bytes} B of NACKs, {stats.retransmitted} retransmissions, "
              f"{back} B back in {elapsed:.2f} s: factor {back / nack_bytes:.1f}; dropped {stats.nack_dropped}, "
              f"missed {stats.retransmit_missed}, rtt {consumer.rtt * 1000:.1f} ms")
        assert client.frames("video") > 0
    finally:
        await client.close()
        await pub_pc.close()
        await worker.close()
        await asyncio.sleep(0)

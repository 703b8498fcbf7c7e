"""A publisher's sequence-number jumps (RFC 3550 appendix A.1, issue 10): a lone packet far from the
stream is dropped and moves nothing; a jump that the next packet continues (the sender restarted its
numbering) is forwarded, and every consumer's output goes on without a gap, on both fan-outs.

Before: the consumers copied the jump into their own numbers, and libsrtp refused the following
in-order packets as too old (``srtp_error``) until the numbers caught up (up to ~32k packets).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import AsyncIterator

import pytest

from sfu import Worker
from sfu.producer import RTP_BAD_SEQ
from sfu.rtp import parse_header

from .offline import FAN_OUTS, load_packets, offline_publisher, offline_subscriber, offline_worker
from .test_fuzz_transport import OutReader, _renumber
from .test_simulcast_forwarding import SEQ_BASE, SSRCS, TS_BASE, Layers, simulcast_publisher, wrap
from .test_simulcast_forwarding import subscriber as simulcast_subscriber

VP8 = load_packets("rtp_vp8.hex") * 8  # 240 packets (the capture has 30: looped)


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


def _continuous(seqs: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


async def test_a_restarted_sequence_is_forwarded_with_continuous_output_numbers(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    video = producers["video"]
    _sub, consumers, path, _ = await offline_subscriber(router, [video])
    _sub2, consumers2, path2, _ = await offline_subscriber(router, [video], name="sub2")
    readers = [OutReader(path), OutReader(path2)]
    before = _renumber(VP8[:60], 1000, 3000, 0x1000)
    after = _renumber(VP8[60:], 1000 + 60 + 20000, 3000, 0x1000 + 3000 * 20)  # the sender restarted
    for data in before:
        pub._on_rtp(data)
    if worker.fast_path:
        assert all(c.fast for c in consumers + consumers2)
    for data in after:
        pub._on_rtp(data)
    assert worker.stats.rtp_dropped.get(RTP_BAD_SEQ) == 1  # the first packet of the jump
    assert worker.stats.rtp_dropped.get("srtp_error", 0) == 0, worker.stats.rtp_dropped
    for reader, consumer in zip(readers, consumers + consumers2, strict=True):
        seqs = [h.sequence_number for h in map(parse_header, reader.read()) if h.ssrc == consumer.ssrc]
        assert len(seqs) == len(before) + len(after) - 1
        assert _continuous(seqs)
    if worker.fast_path:  # back on the compiled fan-out with the new offsets
        assert all(c.fast for c in consumers + consumers2)
    # the receiver reports go on: the jump is not reported as ~20,000 lost packets
    block = video.streams[0].report_block(0.0)
    assert block is not None and 0 <= block[2] <= 1


async def test_lone_far_and_very_late_packets_are_dropped_and_late_ones_forwarded(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    _sub, (consumer,), path, _ = await offline_subscriber(router, [producers["video"]])
    reader = OutReader(path)
    packets = _renumber(VP8, 5000, 3000, 0x1000)
    for data in packets[:150] + packets[151:200]:  # packet 150 comes late, below
        pub._on_rtp(data)
    strays: list[bytes] = []
    for seq in (5000 + 200 + 3000, 5000 + 200 - 150, 5000 - 30000):  # ahead, too late, far behind
        buf = bytearray(packets[200])
        struct.pack_into("!H", buf, 2, seq & 0xFFFF)
        strays.append(bytes(buf))
    for stray in strays:
        pub._on_rtp(stray)
    pub._on_rtp(packets[150])  # 50 late (within RFC 3550's MAX_MISORDER): forwarded
    for data in packets[200:]:
        pub._on_rtp(data)
    assert worker.stats.rtp_dropped.get(RTP_BAD_SEQ) == len(strays)
    seqs = [h.sequence_number for h in map(parse_header, reader.read()) if h.ssrc == consumer.ssrc]
    assert len(seqs) == len(packets)
    assert worker.stats.rtp_dropped.get("srtp_error", 0) == 0


async def test_a_simulcast_layer_that_restarts_keeps_its_consumers_output_continuous(worker: Worker) -> None:
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([1])  # learn the three layers
    _, consumer, path = await simulcast_subscriber(worker, producer)
    layers.all(range(10, 16))  # keyframe at 10: the consumer starts on "f"
    assert consumer.current_layer == 2 and consumer.fast is worker.fast_path
    ts0 = parse_header(VP8[0]).timestamp
    far = SEQ_BASE["f"] + 16 + 20000
    for n, i in enumerate(range(16, 24)):  # "f" restarts its numbering
        ts = TS_BASE["f"] + parse_header(VP8[i]).timestamp - ts0
        pub._on_rtp(wrap(VP8[i], SSRCS["f"], far + n, ts))
    assert worker.stats.rtp_dropped.get(RTP_BAD_SEQ) == 1
    out = [parse_header(p) for p in path.rtp()]
    seqs = [h.sequence_number for h in out]
    assert len(seqs) == 6 + 8 - 1 and _continuous(seqs)
    assert consumer.current_layer == 2 and consumer.fast is worker.fast_path

"""Repair towards publishers for simulcast layers: each layer's NACK generator asks for what that
layer lost, on that layer's SSRC; the layer's RTX stream (Chromium announces no RTX SSRC for rid
simulcast) is bound through the repaired-rtp-stream-id extension and unwrapped into the layer.

Offline like tests/sfu/test_simulcast_forwarding.py (a captured Chromium simulcast offer, real SRTP,
the socket a recorder), on both fan-outs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket

from sfu import Worker, rtx
from sfu.rtp import parse_header

from .helpers import wait_for
from .offline import FAN_OUTS, CapturePath, offline_worker
from .test_simulcast_forwarding import (
    MID_ID,
    RRID_ID,
    SEQ_BASE,
    SSRCS,
    VP8,
    Layers,
    payload_of,
    sent,
    simulcast_publisher,
    subscriber,
    wrap,
)

RTX_PT = 97  # the offer's rtx for VP8 (apt=96)
RTX_SSRC = 0x7777
LOST = (12, 13)  # packets of layer "f" lost on the way to the server


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


def nacks(path: CapturePath) -> list[RtcpRtpfbPacket]:
    return [p for d in path.rtcp() for p in RtcpPacket.parse(d) if isinstance(p, RtcpRtpfbPacket) and p.fmt == 1]


async def test_a_layer_that_loses_packets_is_nacked_on_its_own_ssrc_and_repaired_by_its_rtx(worker: Worker) -> None:
    pub, producer, pub_path = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])  # binds the three layers
    _sub, consumer, path = await subscriber(worker, producer)  # the highest layer, "f"
    for i in range(1, 20):
        for rid in SSRCS:
            if rid == "f" and i in LOST:
                layers.sent[rid] += 1
                continue
            layers.send(rid, [i])
    assert consumer.current_layer == 2
    stats = producer.nack_stats
    assert stats is not None and stats.missing == 2  # only "f" lost anything
    assert [s.nack.pending if s.nack else None for s in producer.streams] == [0, 0, 2]
    # the transport's NACK timer asks after the reorder delay, for f's numbers on f's SSRC
    assert await wait_for(lambda: bool(nacks(pub_path)), 1.0, step=0.005)
    (nack,) = nacks(pub_path)
    lost_seqs = [(SEQ_BASE["f"] + i) & 0xFFFF for i in LOST]
    assert nack.media_ssrc == SSRCS["f"] and sorted(nack.lost) == lost_seqs
    # Chromium answers on the layer's RTX stream: a new SSRC, the RTX payload type, the MID and
    # repaired-rtp-stream-id extensions in its first packets
    before = {p.sequence_number for p in sent(path)}
    for n, i in enumerate(LOST):
        original = layers.packet("f", i, with_rid=False)
        exts = ((MID_ID, b"0"), (RRID_ID, b"f"))
        h = parse_header(original)
        packet = rtx.wrap(wrap(VP8[i], SSRCS["f"], h.sequence_number, h.timestamp, exts), RTX_PT, RTX_SSRC, 500 + n)
        assert packet is not None
        pub._on_rtp(packet)
    assert producer.rtx_received == 2 and producer.streams[2].rtx_ssrc == RTX_SSRC
    total = producer.nack_stats  # summed over the layers
    assert total is not None and total.recovered == 2
    out = sent(path)
    repaired = [p for p in out if p.sequence_number not in before]
    assert [p.payload for p in repaired] == [payload_of(i) for i in LOST]
    assert {p.ssrc for p in out} == {consumer.ssrc}
    # the subscriber has every number from the keyframe (10) on, without a hole
    got = sorted(p.sequence_number for p in out)
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(got)) and len(got) == 10
    assert producer.streams[2].history.get(lost_seqs[0]) is not None  # answerable to subscribers
    await asyncio.sleep(0.15)
    assert len(nacks(pub_path)) == 1  # nothing more is asked
    assert worker.stats.rtp_dropped.get("bad_seq", 0) == 0


async def test_an_rtx_packet_naming_no_layer_is_dropped_and_learned_rtx_ssrcs_stay_bounded(worker: Worker) -> None:
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    for n in range(20):  # fresh RTX SSRCs: each names layer "q"; only the newest 2 per layer stay
        h = parse_header(layers.packet("q", 1, with_rid=False))
        packet = rtx.wrap(wrap(VP8[1], SSRCS["q"], h.sequence_number, h.timestamp,
                               ((MID_ID, b"0"), (RRID_ID, b"q"))), RTX_PT, 0x10000 + n, n)
        assert packet is not None
        pub._on_rtp(packet)
    assert producer.streams[0].rtx_ssrc == 0x10000 + 19
    assert len(producer._learned_rtx) == 2 * producer.layers
    unnamed = rtx.wrap(wrap(VP8[1], 0x5151, 1, 1, ((MID_ID, b"0"),)), RTX_PT, 0x9191, 1)
    assert unnamed is not None
    dropped = worker.stats.rtp_dropped.get("rtx", 0)
    pub._on_rtp(unnamed)  # no repaired-rid: nothing to unwrap into
    assert worker.stats.rtp_dropped["rtx"] == dropped + 1

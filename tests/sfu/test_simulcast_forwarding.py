"""Simulcast packet path: rid learning, layer choice, seamless switches, per-layer NACK/PLI/SR, REMB.

The publisher transport answers a real Chromium simulcast offer; packets are captured aiortc VP8
packets re-wrapped as three layers (own SSRC, sequence and timestamp bases, Chromium's extension
ids: mid 9, rid 10, repaired-rid 11). SRTP is real; only the socket is a recorder.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpSrPacket, RtpPacket

from sfu import Consumer, Producer, WebRtcTransport, Worker, rtcp
from sfu.rtp import parse_header
from sfu.vp8_munger import vp8_picture_ids

from .offline import FAN_OUTS, CapturePath, attach, load_packets, offline_subscriber, offline_worker
from .test_simulcast_sdp import CHROMIUM_OFFER

VP8 = load_packets("rtp_vp8.hex")  # keyframes start at packets 0 and 10
MID_ID, RID_ID, RRID_ID = 9, 10, 11
SSRCS = {"q": 0x1111, "h": 0x2222, "f": 0x3333}
SEQ_BASE = {"q": 100, "h": 30000, "f": 65500}  # "f" wraps around 65535
TS_BASE = {"q": 1000, "h": 2_000_000_000, "f": 4_294_000_000}  # "f" wraps around 2^32


def wrap(src: bytes, ssrc: int, seq: int, ts: int, exts: tuple[tuple[int, bytes], ...] = (), pt: int = 96) -> bytes:
    """A new RTP packet with the payload (and marker) of ``src`` and one-byte extensions."""
    h = parse_header(src)
    block = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in exts)
    block += bytes(-len(block) % 4)
    first = 0x90 if exts else 0x80
    header = struct.pack("!BBHII", first, (0x80 if h.marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    if exts:
        header += struct.pack("!HH", 0xBEDE, len(block) // 4) + block
    return header + src[h.payload_start : h.payload_end]


class Layers:
    """Sends fixture packet ``i`` on each layer, as Chromium would (rid in the first packets)."""

    def __init__(self, transport: WebRtcTransport) -> None:
        self.t = transport
        self.sent = {rid: 0 for rid in SSRCS}

    def packet(self, rid: str, i: int, with_rid: bool | None = None) -> bytes:
        n = self.sent[rid]
        src = VP8[i]
        ts = TS_BASE[rid] + parse_header(src).timestamp - parse_header(VP8[0]).timestamp
        exts = ((MID_ID, b"0"), (RID_ID, rid.encode())) if (n < 3 if with_rid is None else with_rid) else ()
        return wrap(src, SSRCS[rid], SEQ_BASE[rid] + i, ts, exts)

    def send(self, rid: str, indexes: range | list[int], with_rid: bool | None = None) -> None:
        for i in indexes:
            self.t._on_rtp(self.packet(rid, i, with_rid))
            self.sent[rid] += 1

    def all(self, indexes: range | list[int]) -> None:
        for i in indexes:
            for rid in SSRCS:
                self.send(rid, [i])


def plis(path: CapturePath) -> list[int]:
    out = []
    for data in path.rtcp():
        for p in RtcpPacket.parse(data):
            if isinstance(p, RtcpPsfbPacket) and p.fmt == 1:
                out.append(p.media_ssrc)
    return out


def sent(path: CapturePath) -> list[RtpPacket]:
    return [RtpPacket.parse(d) for d in path.rtp()]


def payload_of(i: int) -> bytes:
    h = parse_header(VP8[i])
    return VP8[i][h.payload_start : h.payload_end]


def vp8_body(payload: bytes) -> bytes:
    """A VP8 payload with its PictureID zeroed: a consumer renumbers it at a switch (sfu.vp8_munger)."""
    pos, bits, _, _ = vp8_picture_ids(payload, 0, len(payload))
    return payload if pos < 0 else payload[:pos] + bytes(bits // 8 + 1) + payload[pos + bits // 8 + 1 :]


def vp8_pids(payloads: list[bytes]) -> list[int]:
    out = []
    for payload in payloads:
        pos, bits, _, _ = vp8_picture_ids(payload, 0, len(payload))
        out.append(((payload[pos] & 0x7F) << 8 | payload[pos + 1]) if bits == 15 else payload[pos] & 0x7F)
    return out


def pids_continue(payloads: list[bytes]) -> bool:
    """Each packet's picture id is its predecessor's or the next one (a new frame): what a
    receiver's VP8 frame buffer orders frames by, across a layer switch too."""
    return all((b - a) & 0x7FFF in (0, 1) for a, b in itertools.pairwise(vp8_pids(payloads)))


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


async def simulcast_publisher(worker: Worker) -> tuple[WebRtcTransport, Producer, CapturePath]:
    t = worker.create_router("r").create_transport("pub")
    await t.accept_offer(CHROMIUM_OFFER)
    producer = t.produce("0", "camera")
    return t, producer, attach(t)


async def subscriber(
    worker: Worker, producer: Producer, name: str = "sub"
) -> tuple[WebRtcTransport, Consumer, CapturePath]:
    t, (consumer,), path, _ = await offline_subscriber(worker.routers[0], [producer], name=name)
    return t, consumer, path


async def test_rid_learning_from_first_packets_and_rtx(worker: Worker) -> None:
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.send("h", [1])  # not a keyframe; binds "h"
    assert [la["ssrc"] for la in producer.layer_stats()] == [None, SSRCS["h"], None]
    assert producer.ssrc == SSRCS["h"]
    layers.send("f", [1, 2, 3, 4])  # rid in the first 3 packets only: later ones still map
    layers.send("q", [1])
    assert [la["ssrc"] for la in producer.layer_stats()] == [SSRCS["q"], SSRCS["h"], SSRCS["f"]]
    assert [la["packets"] for la in producer.layer_stats()] == [1, 1, 4]
    # an unknown SSRC without rid (its first packets were lost) is dropped, not guessed
    pub._on_rtp(wrap(VP8[1], 0x9999, 1, 1, ((MID_ID, b"0"),)))
    # RTX (pt 97) is recognised by its payload type and bound to the layer its repaired-rid names
    # (test_simulcast_repair.py); this one's "original sequence number" (the payload's first
    # bytes) is far from q's numbers: dropped as bad_seq; another payload type on it as rtx
    pub._on_rtp(wrap(VP8[1], 0x4444, 1, 1, ((MID_ID, b"0"), (RRID_ID, b"q")), pt=97))
    pub._on_rtp(wrap(VP8[1], 0x4444, 2, 1))
    assert producer.streams[0].rtx_ssrc == 0x4444
    # a rid that was not offered is not a layer
    pub._on_rtp(wrap(VP8[1], 0x5555, 1, 1, ((MID_ID, b"0"), (RID_ID, b"x"))))
    assert worker.stats.rtp_dropped == {"unknown_ssrc": 2, "rtx": 1, "bad_seq": 1}
    # receiver reports (and so the REMB, which names the reported SSRCs) cover every layer
    blocks = producer._report_blocks(1e9)
    assert [b[0] for b in blocks] == [SSRCS["q"], SSRCS["h"], SSRCS["f"]]
    assert [b[3] & 0xFFFF for b in blocks] == [(SEQ_BASE["q"] + 1), SEQ_BASE["h"] + 1, (SEQ_BASE["f"] + 4) & 0xFFFF]


async def test_layer_choice_and_seamless_switch_down_and_up(worker: Worker) -> None:
    pub, producer, pub_path = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([1])  # learn the three layers (no keyframe yet)
    _, consumer, path = await subscriber(worker, producer)
    assert consumer.preferred_layer == 2 and consumer.target_layer == 2 and consumer.current_layer is None
    assert plis(pub_path) == [SSRCS["f"]]  # a PLI for the target layer only
    layers.all(range(2, 10))  # delta frames: nothing forwarded before the keyframe of "f"
    assert path.rtp() == []
    layers.all(range(10, 16))  # keyframe at 10 on every layer: the consumer starts on "f"
    out = sent(path)
    assert consumer.current_layer == 2 and len(out) == 6
    assert consumer.fast is worker.fast_path
    assert [p.payload for p in out] == [payload_of(i) for i in range(10, 16)]

    # switch down: target "q" at once (PLI on q's SSRC); "f" keeps flowing until q's keyframe
    pub_path.clear()
    consumer.set_quality("low")
    assert (consumer.target_layer, consumer.current_layer) == (0, 2)
    assert plis(pub_path) == [SSRCS["q"]]
    layers.all(range(16, 20))
    layers.send("q", range(0, 4))  # a keyframe of "q" (its packet 0): the switch
    layers.send("f", range(20, 22))  # no longer forwarded
    layers.send("q", range(4, 8))
    out = sent(path)
    assert consumer.current_layer == 0 and consumer.layer_switches == 2
    assert consumer.fast is worker.fast_path  # back on the fan-out, of the new layer
    assert [vp8_body(p.payload) for p in out[6:]] == [vp8_body(payload_of(i)) for i in [*range(16, 20), *range(0, 8)]]
    # q's keyframe carries the picture id of packet 0, older than f's last one: renumbered after it
    pids = vp8_pids([p.payload for p in out])
    assert pids_continue([p.payload for p in out]) and pids[10] == pids[9] + 1
    assert {p.ssrc for p in out} == {consumer.ssrc}
    seqs = [p.sequence_number for p in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # no gap, no repeat
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(out)]
    assert all(s < 0x80000000 for s in steps)  # never backwards
    switch = 10  # out[10] is q's keyframe
    assert steps[switch - 1] > 0  # a new frame: strictly after the last forwarded one
    # within the new layer the timestamps keep the publisher's spacing
    in_ts = [parse_header(VP8[i]).timestamp for i in range(0, 8)]
    assert [(t - out[switch].timestamp) & 0xFFFFFFFF for t in (p.timestamp for p in out[switch:])] == [
        (t - in_ts[0]) & 0xFFFFFFFF for t in in_ts
    ]

    # switch up again (medium): only at a keyframe of "h"; its delta frames are skipped meanwhile
    path.clear()
    consumer.set_preferred_layer(1)
    layers.send("h", range(2, 6))
    layers.send("q", range(8, 10))
    assert consumer.current_layer == 0 and len(path.rtp()) == 2
    layers.send("h", range(10, 13))
    assert consumer.current_layer == 1
    out2 = sent(path)
    assert [vp8_body(p.payload) for p in out2] == [vp8_body(payload_of(i)) for i in [8, 9, 10, 11, 12]]
    assert pids_continue([p.payload for p in out + out2])
    assert (out2[0].sequence_number - seqs[-1]) & 0xFFFF == 1
    assert all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in itertools.pairwise(out2))


def delta(i: int) -> int:
    return (parse_header(VP8[i]).timestamp - parse_header(VP8[0]).timestamp) & 0xFFFFFFFF


async def test_switch_timestamp_from_sender_reports(worker: Worker) -> None:
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    _, consumer, path = await subscriber(worker, producer)
    consumer.set_quality("low")
    layers.send("q", range(0, 10))
    last = sent(path)[-1]
    # synchronised layers: one NTP instant is q's and h's packet-0 capture time
    ntp = 0x12345678 << 32
    pub._on_rtcp(rtcp.build_sr(SSRCS["q"], ntp, TS_BASE["q"], 1, 1))
    pub._on_rtcp(rtcp.build_sr(SSRCS["h"], ntp, TS_BASE["h"], 1, 1))
    path.clear()
    consumer.set_quality("medium")
    layers.send("h", [10, 11, 12])  # h's keyframe: the frame after q's last forwarded one
    first, *rest = sent(path)
    assert consumer.current_layer == 1
    assert first.sequence_number == (last.sequence_number + 1) & 0xFFFF
    # exactly one frame interval later, as the publisher's capture times say
    assert (first.timestamp - last.timestamp) & 0xFFFFFFFF == delta(10) - delta(9)
    assert all(p.timestamp == first.timestamp for p in rest)
    # reports that would move time backwards are not trusted: wall-clock time since the last packet
    pub._on_rtcp(rtcp.build_sr(SSRCS["q"], ntp, TS_BASE["q"] + 10 * 90000, 1, 1))
    last = sent(path)[-1]
    consumer.set_quality("low")
    layers.send("q", [10])
    back = sent(path)[-1]
    assert consumer.current_layer == 0
    assert 0 < (back.timestamp - last.timestamp) & 0xFFFFFFFF < 9000
    assert back.sequence_number == (last.sequence_number + 1) & 0xFFFF


async def test_nack_and_pli_per_layer_and_sr_translation(worker: Worker) -> None:
    pub, producer, pub_path = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    sub, consumer, path = await subscriber(worker, producer)
    consumer.set_quality("high")
    layers.send("f", range(0, 10))
    layers.send("q", range(0, 10))
    out = sent(path)
    assert len(out) == 10
    # a NACK is answered from the forwarded layer's history, identical to what was sent
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [out[3].sequence_number]))
    (again,) = sent(path)
    assert (again.sequence_number, again.timestamp, again.payload) == (
        out[3].sequence_number, out[3].timestamp, out[3].payload)
    # a NACK for a packet from before the switch to this layer is not answered
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [(out[0].sequence_number - 1) & 0xFFFF]))
    assert path.rtp() == [] and worker.stats.retransmit_missed == 1
    # a PLI from the subscriber asks for a keyframe of the layer it gets (throttled per layer)
    pub_path.clear()
    producer.streams[2].last_pli = -1e9
    sub._on_rtcp(rtcp.build_pli(1, consumer.ssrc))
    assert plis(pub_path) == [SSRCS["f"]]
    # an SR of the forwarded layer is translated, one of another layer is not
    path.clear()
    pub._on_rtcp(rtcp.build_sr(SSRCS["q"], 5 << 32, TS_BASE["q"], 1, 1))
    assert path.rtcp() == []
    pub._on_rtcp(rtcp.build_sr(SSRCS["f"], 5 << 32, TS_BASE["f"], 1, 1))
    (sr,) = RtcpPacket.parse(path.rtcp()[0])
    assert isinstance(sr, RtcpSrPacket) and sr.ssrc == consumer.ssrc
    assert sr.sender_info.rtp_timestamp == out[0].timestamp  # f's packet 0 was forwarded as out[0]


async def test_remb_steps_down_and_inactive_layers_fall_back(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    import sfu.consumer

    now = [1000.0]
    monkeypatch.setattr(sfu.consumer.time, "monotonic", lambda: now[0])
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    sub, consumer, path = await subscriber(worker, producer)
    layers.all(range(0, 4))
    assert consumer.current_layer == 2
    for la, rate in zip(producer.streams, (150_000, 500_000, 1_500_000), strict=True):
        la.bitrate = rate
    now[0] += 10  # past the grace period after the start
    sub._on_rtcp(rtcp.build_remb(1, 2_000_000, [consumer.ssrc]))
    assert consumer.estimate == 2_000_000 and consumer.target_layer == 2
    sub._on_rtcp(rtcp.build_remb(1, 1_600_000, [consumer.ssrc]))  # falling but enough: stay
    assert consumer.target_layer == 2
    sub._on_rtcp(rtcp.build_remb(1, 400_000, [consumer.ssrc]))  # falling below the layer: down
    assert consumer.target_layer == 0  # 400 kbit/s does not carry "h" (500) either
    layers.all([10])
    assert consumer.current_layer == 0
    now[0] += 1  # within the grace period nothing moves
    sub._on_rtcp(rtcp.build_remb(1, 600_000, [consumer.ssrc]))
    assert consumer.target_layer == 0
    now[0] += 10
    sub._on_rtcp(rtcp.build_remb(1, 600_000, [consumer.ssrc]))  # enough for "h": one step up
    assert consumer.target_layer == 1
    now[0] += 20
    sub._on_rtcp(rtcp.build_remb(1, 610_000, [consumer.ssrc]))  # not enough for "f", but retry time
    assert consumer.target_layer == 2
    # a new preference resets the REMB cap; a layer that stops sending is left for an active one
    consumer.set_quality("medium")
    layers.all([10])
    assert consumer.current_layer == 1
    producer.streams[1].active = False
    consumer.update_target()
    assert consumer.target_layer == 0  # highest active layer at or below the wish
    producer.streams[0].active = False
    consumer.update_target()
    assert consumer.target_layer == 2  # none below: the lowest active one above
    assert path.rtp()


async def test_quality_on_a_plain_producer_is_only_remembered(worker: Worker) -> None:
    from .offline import offline_publisher

    _, producers, _ = await offline_publisher(worker.create_router("plain"))
    video = producers["video"]
    assert not video.simulcast and video.layers == 1 and video.rids == ()
    _, (consumer,), _, _ = await offline_subscriber(worker.routers[0], [video])
    consumer.set_quality("low")
    assert consumer.preferred_layer == 0 and consumer.current_layer is None
    with pytest.raises(ValueError):
        consumer.set_quality("best")


async def test_legacy_ssrc_group_sim_binds_layers_in_order(worker: Worker) -> None:
    from aiortc import RTCRtpSender

    from .helpers import client_pc

    pc = client_pc()
    vt = pc.addTransceiver("video", direction="sendonly")
    vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"])
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    sim = "a=ssrc-group:SIM 11 22 33\r\n" + "".join(f"a=ssrc:{s} cname:x\r\n" for s in (11, 22, 33))
    offer = pc.localDescription.sdp.replace("a=rtpmap:", sim + "a=rtpmap:", 1)
    t = worker.create_router("r").create_transport("pub")
    answer = await t.accept_offer(offer)
    assert "a=simulcast" not in answer
    producer = t.produce(t.offered_media()[0].mid, "camera")
    assert producer.simulcast and producer.rids == ("0", "1", "2")
    assert [la["ssrc"] for la in producer.layer_stats()] == [11, 22, 33]
    attach(t)
    t._on_rtp(wrap(VP8[0], 22, 5, 5, pt=producer.codec_info.payload_type))
    assert [la["packets"] for la in producer.layer_stats()] == [0, 1, 0]


async def test_a_bandwidth_estimate_moves_the_layer_down_at_once_and_up_one_layer_at_a_time(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """consumer.on_bandwidth (a downlink estimator's figure, sfu.layer_selector): down as soon as
    the hold after the last change passed, up one layer per hold, and a REMB alone then no longer
    moves the layer."""
    import sfu.consumer

    now = [1000.0]
    monkeypatch.setattr(sfu.consumer.time, "monotonic", lambda: now[0])
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    sub, consumer, _path = await subscriber(worker, producer)
    layers.all(range(0, 4))
    for la, rate in zip(producer.streams, (150_000, 500_000, 1_500_000), strict=True):
        la.bitrate = rate
    now[0] += 10
    consumer.on_bandwidth(1_300_000)  # 0.87 x f: the dead band, no move
    assert consumer.target_layer == 2
    consumer.on_bandwidth(450_000)  # the link shrank: the layer that fits, at once
    assert consumer.target_layer == 0
    sub._on_rtcp(rtcp.build_remb(1, 5_000_000, [consumer.ssrc]))  # the estimator reads REMBs
    assert consumer.estimate == 5_000_000 and consumer.target_layer == 0
    now[0] += 1
    consumer.on_bandwidth(5_000_000)  # recovered, but within the hold after the step down
    assert consumer.target_layer == 0
    now[0] += 4
    consumer.on_bandwidth(5_000_000)
    assert consumer.target_layer == 1  # one layer at a time
    now[0] += 2
    consumer.on_bandwidth(300_000)  # the step up failed: back down after 1.5 s, not 4 s
    assert consumer.target_layer == 0
    now[0] += 4
    consumer.on_bandwidth(5_000_000)
    now[0] += 4
    consumer.on_bandwidth(5_000_000)
    assert consumer.target_layer == 2
    consumer.on_bandwidth(None)  # no estimate: the wish
    assert consumer.target_layer == 2

"""The per-packet path on captured packets, with real SDP negotiation and real SRTP sessions."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpSrPacket, RtpPacket

from sfu import Worker, rtcp
from sfu.rtp import parse_header
from sfu.sdp import MediaSection, parse_media

from .offline import FAN_OUTS, attach, load_packets, offline_publisher, offline_subscriber, offline_worker

VP8 = load_packets("rtp_vp8.hex")
OPUS = load_packets("rtp_opus.hex")
H264 = load_packets("rtp_h264.hex")


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


async def test_audio_rewrite_and_sequence_continuity_across_pause(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    _sub, (consumer,), path, answer = await offline_subscriber(router, [audio])
    (section,) = parse_media(answer)
    assert consumer.mid == section.mid and consumer.payload_type == section.codecs[0].payload_type
    for data in OPUS[:10]:
        pub._on_rtp(data)
    assert audio.ssrc == parse_header(OPUS[0]).ssrc  # learned from the MID extension
    assert consumer.fast is worker.fast_path  # steady: on the compiled fan-out when there is one
    consumer.pause()
    assert not consumer.fast
    for data in OPUS[10:20]:
        pub._on_rtp(data)
    consumer.resume()
    for data in OPUS[20:]:
        pub._on_rtp(data)
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert len(out) == len(OPUS) - 10
    assert {p.ssrc for p in out} == {consumer.ssrc}
    assert {p.payload_type for p in out} == {consumer.payload_type}
    seqs = [p.sequence_number for p in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # no jump at resume
    ts = [p.timestamp for p in out]
    steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(ts)]
    assert all(0 < s < 48000 for s in steps)  # monotonic, no jump of the paused stretch
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in OPUS[:10] + OPUS[20:]]
    # producer-level pause (server-side mute) also stops forwarding
    audio.pause()
    path.clear()
    pub._on_rtp(OPUS[-1])
    assert path.rtp() == [] and audio.paused


async def test_video_starts_at_keyframe_with_pli_and_answers_nack(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, pub_path = await offline_publisher(router)
    video = producers["video"]
    pub._on_rtp(VP8[5])  # learn the SSRC (not a keyframe)
    sub, (consumer,), path, _ = await offline_subscriber(router, [video])
    plis = [p for p in (RtcpPacket.parse(d)[0] for d in pub_path.rtcp()) if isinstance(p, RtcpPsfbPacket)]
    assert [(p.fmt, p.media_ssrc) for p in plis] == [(1, video.ssrc)]  # PLI when the consumer starts
    for data in VP8[6:]:
        pub._on_rtp(data)
    out = path.rtp()
    assert consumer.fast is worker.fast_path
    assert consumer.packets == len(VP8) - 10
    assert len(out) == len(VP8) - 10  # everything from the keyframe at index 10
    first = parse_header(out[0])
    assert out[0][first.payload_start :] == VP8[10][parse_header(VP8[10]).payload_start :]
    assert worker.stats.rtp_dropped["wait_keyframe"] == 4
    # NACK two forwarded packets: re-sent from the history, identical to what was sent
    seqs = [parse_header(p).sequence_number for p in out]
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [seqs[2], seqs[5]]))
    assert path.rtp() == [out[2], out[5]]
    assert worker.stats.retransmitted == 2
    # a NACK for a packet never forwarded to this consumer is not answered
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [(seqs[0] - 3) & 0xFFFF]))
    assert path.rtp() == [] and worker.stats.retransmit_missed == 1


async def test_h264_forwarding_starts_at_sps(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router, video_mime="video/H264")
    video = producers["video"]
    assert video.codec == "video/H264"
    _sub, (_consumer,), path, answer = await offline_subscriber(router, [video])
    assert [c.mime_type for c in parse_media(answer)[0].codecs] == ["video/H264", "video/rtx"]
    for data in H264[1:]:  # starts mid-keyframe: must wait for the next SPS (the last packet)
        pub._on_rtp(data)
    assert len(path.rtp()) == 1
    assert worker.stats.keyframes == 1


async def test_pli_from_subscribers_is_throttled(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    import sfu.producer

    now = [1000.0]
    monkeypatch.setattr(sfu.producer.time, "monotonic", lambda: now[0])
    router = worker.create_router("r")
    pub, producers, pub_path = await offline_publisher(router)
    video = producers["video"]
    pub._on_rtp(VP8[0])
    sub, (consumer,), _, _ = await offline_subscriber(router, [video])
    pub_path.clear()
    for _ in range(5):
        sub._on_rtcp(rtcp.build_pli(1, consumer.ssrc))
        now[0] += 0.1
    assert len(pub_path.rtcp()) == 0  # the consumer's own start PLI was < 1 s ago
    now[0] += 0.6
    for _ in range(5):
        sub._on_rtcp(rtcp.build_pli(1, consumer.ssrc))
    assert len(pub_path.rtcp()) == 1
    assert worker.stats.pli_received == 10
    # a new consumer asks at once
    now[0] += 0.2
    await offline_subscriber(router, [video], name="sub2")
    assert len(pub_path.rtcp()) == 2
    assert worker.stats.pli_sent == 3


async def test_sender_reports_are_translated(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    _sub, (consumer,), path, _ = await offline_subscriber(router, [audio])
    pub._on_rtp(OPUS[0])
    out = RtpPacket.parse(path.rtp()[0])
    in_ts = parse_header(OPUS[0]).timestamp
    path.clear()
    pub._on_rtcp(rtcp.build_sr(audio.ssrc or 0, 123 << 32, in_ts + 960, 1, 2))
    (sr,) = RtcpPacket.parse(path.rtcp()[0])
    assert isinstance(sr, RtcpSrPacket) and sr.ssrc == consumer.ssrc
    assert sr.sender_info.ntp_timestamp == 123 << 32
    assert sr.sender_info.rtp_timestamp == (out.timestamp + 960) & 0xFFFFFFFF
    assert consumer.fast is worker.fast_path  # translated in C on the compiled fan-out
    assert (sr.sender_info.packet_count, sr.sender_info.octet_count) == (1, consumer.octets) and consumer.octets > 0
    assert worker.stats.sr_sent == 1
    # after a pause (back on the Python path) the counts go on from what the fan-out sent
    consumer.pause()
    consumer.resume()
    path.clear()
    pub._on_rtcp(rtcp.build_sr(audio.ssrc or 0, 124 << 32, in_ts + 1920, 1, 2))
    (sr,) = RtcpPacket.parse(path.rtcp()[0])
    assert isinstance(sr, RtcpSrPacket) and sr.sender_info.packet_count == 1


async def test_garbage_into_hooks_is_counted(worker: Worker) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    await offline_subscriber(router, list(producers.values()))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=64), st.booleans())
    def feed(data: bytes, as_rtcp: bool) -> None:
        (pub._on_rtcp if as_rtcp else pub._on_rtp)(data)

    feed()
    st_ = worker.stats
    assert st_.rtp_dropped.get("error", 0) == 0 and st_.rtcp_dropped.get("error", 0) == 0
    assert sum(st_.rtp_dropped.values()) > 0 and sum(st_.rtcp_dropped.values()) > 0


async def test_receiver_report_and_remb_to_publisher(worker: Worker) -> None:
    from aiortc.rtp import RtcpRrPacket, unpack_remb_fci

    router = worker.create_router("r")
    pub, producers, pub_path = await offline_publisher(router)
    audio = producers["audio"]
    for i, data in enumerate(OPUS):
        if i not in (3, 4):  # two lost
            pub._on_rtp(data)
    pub._on_rtcp(rtcp.build_sr(audio.ssrc or 0, 0x0001_2345_6789_0000, 1, 1, 1))
    pub_path.clear()
    pub._refresh_path = lambda: None  # type: ignore[method-assign]  # keep the recording path
    pub._tick(1e9)
    rr, remb = RtcpPacket.parse(pub_path.rtcp()[0])
    assert isinstance(rr, RtcpRrPacket) and isinstance(remb, RtcpPsfbPacket)
    (block,) = rr.reports
    last_seq = parse_header(OPUS[-1]).sequence_number
    assert (block.ssrc, block.packets_lost, block.highest_sequence & 0xFFFF) == (audio.ssrc, 2, last_seq)
    assert block.fraction_lost == (2 * 256) // len(OPUS) and block.lsr == 0x2345_6789
    assert unpack_remb_fci(remb.fci)[1] == [audio.ssrc]
    assert worker.stats.remb_sent == 1 and worker.stats.rr_sent == 1


async def test_a_closed_consumers_m_line_is_reused_after_it_was_negotiated_inactive(worker: Worker) -> None:
    from aiortc import RTCSessionDescription

    from .helpers import client_pc

    router = worker.create_router("r")
    _pub1, producers1, _ = await offline_publisher(router, name="pub1")
    pub2, producers2, _ = await offline_publisher(router, name="pub2")
    sub = router.create_transport("sub")
    attach(sub)
    pc = client_pc()

    async def negotiate() -> list[MediaSection]:
        offer = await sub.create_offer()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await sub.accept_answer(pc.localDescription.sdp)
        return parse_media(offer)

    try:
        first = sub.consume(producers1["video"])
        audio = sub.consume(producers1["audio"])
        media = await negotiate()
        assert [m.kind for m in media] == ["video", "audio"]
        old_mid, old_ssrc = first.mid, first.ssrc
        first.close()
        media = await negotiate()
        assert [(m.mid, m.direction) for m in media] == [(old_mid, "inactive"), (audio.mid, "sendonly")]
        second = sub.consume(producers2["video"])  # another publisher's camera: the free m-line
        media = await negotiate()
        assert len(media) == 2 and second.mid == old_mid and second.ssrc != old_ssrc
        (section,) = [m for m in media if m.mid == old_mid]
        assert section.direction == "sendonly" and section.ssrcs == (second.ssrc,)
        assert f"a=msid:{pub2.stream_id} {producers2['video'].id}" in sub.peer_connection.localDescription.sdp
        # the client pc is live on 127.0.0.1: during the awaits above its ICE/DTLS may have
        # connected (or failed) and replaced the capture; attach again, then send with no await
        path = attach(sub)
        for data in VP8[5:]:
            pub2._on_rtp(data)
        out = [RtpPacket.parse(p) for p in path.rtp()]
        assert out and {p.ssrc for p in out} == {second.ssrc} and second.packets == len(out)
        # a consumer closed while nothing was negotiated yet is not reused before its inactive offer
        third = sub.consume(producers1["video"])
        third.close()
        fourth = sub.consume(producers2["audio"])
        media = await negotiate()
        assert fourth.mid not in {old_mid, audio.mid} and len(media) == 4
    finally:
        await pc.close()

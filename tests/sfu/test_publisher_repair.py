"""Repair towards publishers: a producer's NACK generator asks the publisher for what it lost, the
publisher's RTX stream (RFC 4588) is unwrapped into the original stream and forwarded to the
subscribers; an unrecoverable gap asks for a keyframe.

Offline (real SDP negotiation, real SRTP, captured packets, both fan-outs) and end to end (a real
aiortc publisher over 127.0.0.1 whose packets are dropped on their way to the server)."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket, RtpPacket

from sfu import Producer, Router, WebRtcTransport, Worker, WorkerSettings, rtx
from sfu.rtp import parse_header

from .helpers import NoisyVideoTrack, SubscriberClient, client_pc, dtls_transport, wait_for
from .offline import FAN_OUTS, CapturePath, attach, load_packets, offline_subscriber, offline_worker

VP8 = load_packets("rtp_vp8.hex")
KEYFRAME = 10  # VP8[10] starts a keyframe


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


async def rtx_publisher(router: Router) -> tuple[WebRtcTransport, Producer, CapturePath, int, int]:
    """A publisher transport for a VP8 + RTX offer of a real aiortc client (a=ssrc-group:FID);
    returns the transport, its video producer, its capture path, the RTX payload type and SSRC."""
    pub = router.create_transport("pub")
    pc = client_pc()
    vt = pc.addTransceiver("video", direction="sendonly")
    vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                            if c.mimeType in ("video/VP8", "video/rtx")])
    await pc.setLocalDescription(await pc.createOffer())
    answer = await pub.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await pc.close()
    video = pub.produce("0", "camera")
    (section,) = pub.offered_media()
    ((_media_ssrc, rtx_ssrc),) = section.rtx_pairs
    rtx_pt = section.rtx_payload_type(video.codec_info.payload_type)
    assert rtx_pt is not None
    return pub, video, attach(pub), rtx_pt, rtx_ssrc


def nacks(path: CapturePath) -> list[RtcpRtpfbPacket]:
    return [p for d in path.rtcp() for p in RtcpPacket.parse(d) if isinstance(p, RtcpRtpfbPacket) and p.fmt == 1]


def renumbered(data: bytes, seq: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("!H", out, 2, seq & 0xFFFF)
    return bytes(out)


async def test_a_gap_is_nacked_and_the_rtx_repair_reaches_the_subscriber(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, video, pub_path, rtx_pt, rtx_ssrc = await rtx_publisher(router)
    pub._on_rtp(VP8[0])  # learns the media SSRC (the captured packets' one, from the MID extension)
    _sub, (consumer,), path, _ = await offline_subscriber(router, [video])
    lost = (KEYFRAME + 2, KEYFRAME + 3)
    for i, data in enumerate(VP8[1:], start=1):
        if i not in lost:
            pub._on_rtp(data)
    assert video.nack_stats is not None and video.nack_stats.missing == 2
    # the transport's NACK timer (20 ms) asks after the reorder delay (10 ms)
    assert await wait_for(lambda: bool(nacks(pub_path)), 1.0, step=0.005)
    (nack,) = nacks(pub_path)
    seqs = [parse_header(VP8[i]).sequence_number for i in lost]
    assert nack.media_ssrc == video.ssrc and nack.ssrc == pub._rtcp_ssrc and sorted(nack.lost) == seqs
    assert worker.stats.nack_sent == 2
    # the publisher answers on its RTX stream: unwrapped, stored, forwarded in the original's place
    before = {RtpPacket.parse(p).sequence_number for p in path.rtp()}
    for n, i in enumerate(lost):
        packet = rtx.wrap(VP8[i], rtx_pt, rtx_ssrc, 1000 + n)
        assert packet is not None
        pub._on_rtp(packet)
    out = [RtpPacket.parse(p) for p in path.rtp()]
    repaired = [p for p in out if p.sequence_number not in before]
    assert [p.payload for p in repaired] == [RtpPacket.parse(VP8[i]).payload for i in lost]
    assert {p.ssrc for p in repaired} == {consumer.ssrc}
    assert {p.payload_type for p in repaired} == {consumer.payload_type}
    # the subscriber now has every number from the keyframe on, without a hole
    got = sorted(p.sequence_number for p in out)
    assert got == list(range(got[0], got[0] + len(VP8) - KEYFRAME))
    assert video.nack_stats.recovered == 2 and video.nack_stats.missing == 2 and video.rtx_received == 2
    assert video.history.get(seqs[0]) == VP8[lost[0]]  # answerable to the subscribers' own NACKs
    await asyncio.sleep(0.15)
    assert len(nacks(pub_path)) == 1  # nothing is missing: nothing more is asked
    assert pub._feedback.nack_timer is None  # and the timer stopped


async def test_a_repair_later_than_max_misorder_is_not_a_jump(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, video, _pub_path, rtx_pt, rtx_ssrc = await rtx_publisher(router)
    _sub, (consumer,), _path, _ = await offline_subscriber(router, [video])
    base = parse_header(VP8[KEYFRAME]).sequence_number
    # 125 packets late: more than MAX_MISORDER (100), less than the SRTP send window of the test's
    # capture path (128; aiortc's sessions, as browsers', keep 1024)
    stream = [renumbered(VP8[KEYFRAME + 1 + i % 19], base + 1 + i) for i in range(130)]
    pub._on_rtp(VP8[KEYFRAME])
    for i, data in enumerate(stream):
        if i != 5:
            pub._on_rtp(data)
    packet = rtx.wrap(stream[5], rtx_pt, rtx_ssrc, 1)
    assert packet is not None
    pub._on_rtp(packet)
    assert worker.stats.rtp_dropped.get("bad_seq", 0) == 0
    assert video.nack_stats is not None and video.nack_stats.reordered + video.nack_stats.recovered == 1
    assert consumer.packets == 131, (worker.stats.rtp_dropped, consumer.packets)


async def test_padding_only_rtx_and_an_unknown_rtx_ssrc_are_dropped_as_rtx(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, video, _pub_path, rtx_pt, rtx_ssrc = await rtx_publisher(router)
    pub._on_rtp(VP8[0])
    probe = struct.pack("!BBHII", 0xA0, rtx_pt, 7, 1000, rtx_ssrc) + bytes(99) + b"\x64"
    pub._on_rtp(probe)
    assert worker.stats.rtp_dropped["rtx"] == 1 and video.rtx_received == 0
    video.close()
    packet = rtx.wrap(VP8[1], rtx_pt, rtx_ssrc, 2)
    assert packet is not None
    pub._on_rtp(packet)  # its producer is gone: still a known RTX SSRC, dropped
    assert worker.stats.rtp_dropped["rtx"] == 2 and pub._listener.rtx_producers == {}


async def test_a_loss_too_large_to_repair_asks_for_a_keyframe_instead(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, video, pub_path, _rtx_pt, _rtx_ssrc = await rtx_publisher(router)
    _sub, (consumer,), _path, _ = await offline_subscriber(router, [video])
    base = parse_header(VP8[KEYFRAME]).sequence_number
    pub._on_rtp(VP8[KEYFRAME])
    plis = worker.stats.pli_sent
    await asyncio.sleep(0.11)  # past the forced-PLI merge window of the consumer's first PLI
    pub._on_rtp(renumbered(VP8[KEYFRAME + 1], base + 2000))  # 1999 lost: more than max_jump
    assert video.nack_stats is not None and video.nack_stats.keyframe_requests == 1
    assert video.nack_stats.missing == 0 and worker.stats.pli_sent == plis + 1
    psfb = [p for d in pub_path.rtcp() for p in RtcpPacket.parse(d) if isinstance(p, RtcpPsfbPacket)]
    assert psfb[-1].fmt == 1 and psfb[-1].media_ssrc == video.ssrc
    assert consumer.packets == 2


async def test_audio_and_a_codec_without_nack_get_no_generator(worker: Worker) -> None:
    router = worker.create_router("r")
    pub = router.create_transport("pub")
    pc = client_pc()
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await pub.accept_offer(pc.localDescription.sdp)
    await pc.close()
    assert "nack" not in answer.split("m=audio")[1]
    audio = pub.produce("0", "microphone")
    assert audio.nack_stats is None and audio.rtx_received == 0


# ---- end to end ----------------------------------------------------------------------------------
async def test_an_aiortc_publisher_on_a_lossy_uplink_is_repaired_for_its_subscriber() -> None:
    worker = Worker(WorkerSettings(host_addresses=("127.0.0.1",)))
    try:
        router = worker.create_router("room")
        pub_t = router.create_transport("alice:publisher")
        pc = client_pc()
        pc.addTransceiver(NoisyVideoTrack(noisy_rows=60), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await pub_t.accept_offer(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        video = pub_t.produce(pub_t.offered_media()[0].mid, "camera")
        (section,) = pub_t.offered_media()
        ((media_ssrc, rtx_ssrc),) = section.rtx_pairs
        sub_t = router.create_transport("bob:subscriber")
        sub_t.consume(video)
        sub = SubscriberClient()
        await sub.negotiate(sub_t)
        # the publisher's uplink loses 5% of its RTP (retransmissions too) on the way to the server
        ice = dtls_transport(pc).transport
        send = ice._send
        rnd = random.Random(11)
        counts = {"dropped": 0, "rtx_sent": 0}

        async def lossy_send(data: bytes) -> None:
            if 128 <= data[0] < 192 and not 192 <= data[1] <= 223:
                if struct.unpack_from("!I", data, 8)[0] == rtx_ssrc:
                    counts["rtx_sent"] += 1  # aiortc retransmits only what a NACK asked for
                if rnd.random() < 0.05:
                    counts["dropped"] += 1
                    return
            await send(data)

        ice._send = lossy_send
        assert await wait_for(lambda: sub.frames("video") > 0, 10)
        await asyncio.sleep(3)
        stats = video.nack_stats
        assert stats is not None
        assert counts["dropped"] > 10 and worker.stats.nack_sent > 0
        assert counts["rtx_sent"] > 0 and video.rtx_received > 0  # NACKs reached it, RTX came back
        # every lost number was asked for and came back, but the few still in flight at the end
        assert stats.missing >= 10 and stats.recovered >= stats.missing - 4 and stats.given_up == 0, (stats, counts)
        # the subscriber got the repaired packets: its loss is far below the uplink's 5%
        receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.kind == "video")
        inbound = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsReceived > 500
        assert inbound[0].packetsLost <= 0.01 * inbound[0].packetsReceived, (inbound[0], stats, counts)
        assert media_ssrc == video.ssrc
        await sub.close()
        await pc.close()
    finally:
        await worker.close()

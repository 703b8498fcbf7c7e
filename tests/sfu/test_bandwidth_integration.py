"""Congestion control wired into the transport (sfu.congestion through WebRtcTransport, its
RtpListener and PublisherFeedback), offline with real SRTP and the server's real answers:
Chromium's offer gets transport-cc and its packets' numbers come back in feedback packets; an
aiortc publisher gets a REMB that falls, without waiting for the periodic one, when its path's
delay grows; a subscriber's receiver reports limit what its video consumers are given; with
``bandwidth_estimation=False`` none of it happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu import Worker, rtcp
from sfu.bandwidth_estimator import EXT_ABS_SEND_TIME
from sfu.downlink_estimator import FRESH_FACTOR
from sfu.rtp import EXT_MID
from sfu.transport_cc import EXT_TRANSPORT_CC, RTPFB_TRANSPORT_CC, parse_feedback

from .offline import DATA, attach, offline_publisher, offline_subscriber, offline_worker

CHROMIUM_OFFER = (DATA / "chromium_simulcast_offer.sdp").read_text()


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = offline_worker()
    yield w
    await w.close()


def _packet(ids: dict[str, int], seq: int, ssrc: int, pt: int = 96, size: int = 1000, **ext: int) -> bytes:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()])
    )
    packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc, payload=bytes(size))
    for name, value in ext.items():
        setattr(packet.extensions, name, value)
    return packet.serialize(ext_map)


def _feedback_packets(sent: list[bytes]) -> list[list[tuple[int, bool]]]:
    out = []
    for data in sent:
        for pt, fmt, start, end in rtcp.split_compound(data):
            if pt == rtcp.RTCP_RTPFB and fmt == RTPFB_TRANSPORT_CC:
                out.append([(s, t is not None) for s, t in parse_feedback(data, start, end).packets])
    return out


def _rembs(sent: list[bytes]) -> list[int]:
    out = []
    for data in sent:
        for pt, fmt, start, end in rtcp.split_compound(data):
            if pt == rtcp.RTCP_PSFB and fmt == rtcp.PSFB_APP:
                out.append(rtcp.parse_remb(data, start, end)[0])
    return out


async def test_chromium_gets_transport_cc_and_feedback_for_every_packet(worker: Worker) -> None:
    transport = worker.create_router("r").create_transport("pub")
    answer = await transport.accept_offer(CHROMIUM_OFFER)
    assert f"a=extmap:4 {EXT_TRANSPORT_CC}" in answer and "a=rtcp-fb:96 transport-cc" in answer
    path = attach(transport)
    ids = {EXT_MID: 9, EXT_TRANSPORT_CC: 4}
    for seq in (1, 2, 4, 5):  # an SSRC nobody announced (as a probe's padding): reported all the same
        transport._on_rtp(_packet(ids, 100 + seq, 0x1234, transport_sequence_number=seq))
    await asyncio.sleep(0.25)  # the feedback timer: every 0.1 s
    assert _feedback_packets(path.rtcp()) == [[(1, True), (2, True), (3, False), (4, True), (5, True)]]
    path.clear()
    await asyncio.sleep(0.15)
    assert _feedback_packets(path.rtcp()) == []  # nothing new, nothing sent
    transport.close()
    assert transport._feedback.transport_cc_timer is None


async def test_an_aiortc_publishers_remb_falls_at_once_when_its_delay_grows() -> None:
    worker = offline_worker(remb_bitrate=2_000_000)
    try:
        router = worker.create_router("r")
        transport, producers, path = await offline_publisher(router)
        assert "transport-cc" not in str(transport._negotiation.local_media)
        video = producers["video"]
        ids = {
            EXT_MID: 1,
            EXT_ABS_SEND_TIME: next(
                m.extensions[EXT_ABS_SEND_TIME] for m in transport._negotiation.local_media if m.kind == "video"
            ),
        }
        ssrc, pt = video.ssrc or 1, video.codec_info.payload_type
        start = time.monotonic()
        # 1.2 s of 30 groups/s whose send times advance as fast as they arrive, then groups
        # sent 5.5 ms apart arriving 12 ms apart: the path's queue grows by 6.5 ms per group
        seq = 0
        ticks = 0
        send = 0.0
        # counted in ticks, not seconds: on a loaded machine the loop's sleeps stretch and fewer
        # ticks run, so "more REMBs than the periodic ones" failed (3 > 3) with the fall sent on time
        overuse_tick: int | None = None
        fall_tick: int | None = None
        while time.monotonic() - start < 2.6:
            late = time.monotonic() - start > 1.2
            send += 0.0055 if late else 1 / 30
            for _ in range(2):
                seq += 1
                ast = int(send * (1 << 18)) & 0xFFFFFF
                transport._on_rtp(_packet(ids, seq, ssrc, pt=pt, size=1200, abs_send_time=ast))
            await asyncio.sleep(0.012 if late else 1 / 30)
            now = time.monotonic()
            estimator = transport._congestion.estimator if transport._congestion is not None else None
            if overuse_tick is None and estimator is not None and estimator.overuses >= 1:
                overuse_tick = ticks
            if now - start >= ticks * 0.25:
                ticks += 1
                transport._feedback.tick(now)  # the transport's tick, without its path refresh
                if fall_tick is None and min(_rembs(path.rtcp()), default=2_000_000) < 1_000_000:
                    fall_tick = ticks
        congestion = transport._congestion
        assert congestion is not None and congestion.estimator is not None
        assert congestion.estimator.overuses >= 1
        rembs = _rembs(path.rtcp())
        assert rembs[0] == 2_000_000  # the cap until there is an estimate
        assert min(rembs) < 1_000_000, rembs
        # the fall went out at the first tick after the overuse (0.25 s), not at the next periodic
        # REMB (one per second: up to four ticks later)
        assert overuse_tick is not None and fall_tick is not None, (overuse_tick, fall_tick, rembs)
        assert fall_tick - overuse_tick <= 1, (overuse_tick, fall_tick, rembs)
    finally:
        await worker.close()


async def test_a_subscribers_loss_limits_its_video_consumers(worker: Worker) -> None:
    router = worker.create_router("r")
    _pub, producers, _ = await offline_publisher(router)
    transport, consumers, _path, _ = await offline_subscriber(router, [producers["video"], producers["audio"]])
    video = next(c for c in consumers if c.kind == "video")
    downlink = transport._downlink
    assert downlink is not None
    now = time.monotonic()
    downlink.share(now, transport.consumers)  # the transport's tick, without its path refresh
    assert downlink.given == (None, 1)  # nothing known: None given
    for step in range(1, 4):
        video._packets += 25  # what the consumer sent meanwhile: 1 Mbit/s
        video._octets += 31_250
        fraction = 0 if step < 3 else 128  # the third report: half lost
        rr = rtcp.build_rr(0x5555, [(video.ssrc, fraction, 0, 1000 + step * 50, 0, 0, 0)])
        transport._on_rtcp(rr)
        downlink.share(now + step * 0.25, transport.consumers)
    share, count = downlink.given
    assert count == 1 and share is not None
    # what got through x 0.9, x FRESH_FACTOR (the first limit seen is taken lower)
    assert share == downlink.estimator.estimate and 300_000 * FRESH_FACTOR < share < 600_000 * FRESH_FACTOR
    assert video._available == share  # what the layer choice uses


async def test_without_bandwidth_estimation_the_answer_and_remb_are_as_before() -> None:
    worker = offline_worker(bandwidth_estimation=False)
    try:
        transport = worker.create_router("r").create_transport("pub")
        answer = await transport.accept_offer(CHROMIUM_OFFER)
        assert "transport-cc" not in answer
        assert transport._listener.congestion is None and transport._listener.downlink is None
    finally:
        await worker.close()

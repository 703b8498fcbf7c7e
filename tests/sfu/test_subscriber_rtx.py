"""RTX towards subscribers (RFC 4588) and the padding probes sent on it: the server's offer, the
answers of real clients (aiortc, Firefox's captured answer without RTX), NACKs answered on the RTX
SSRC and read back by aiortc's own unwrap, padding-only packets, and the transport's padding
clusters (started by the downlink estimate, paced, stopped by congestion); offline with real
SRTP, on both fan-outs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtpPacket, unwrap_rtx

from sfu import Worker, rtcp
from sfu.downlink_estimator import PROBE_MARGIN
from sfu.padding import PACKET_BYTES
from sfu.sdp import parse_media, rtx_negotiated

from .offline import DATA, FAN_OUTS, offline_publisher, offline_subscriber, offline_worker, section_lines
from .test_nack import stream
from .test_simulcast_forwarding import Layers, simulcast_publisher, subscriber

FIREFOX_ANSWER = (DATA / "firefox_answer.sdp").read_text()
FIREFOX_SIMULCAST_OFFER = (DATA / "firefox_simulcast_offer.sdp").read_text()


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


async def test_the_subscriber_offer_has_rtx_for_video_only(worker: Worker) -> None:
    router = worker.create_router("r")
    _pub, producers, _ = await offline_publisher(router)
    sub = router.create_transport("sub")
    video, audio = sub.consume(producers["video"]), sub.consume(producers["audio"])
    offer = await sub.create_offer()
    v, a = parse_media(offer)
    vp8 = v.main_codec
    assert vp8 is not None and vp8.nack
    rtx_pt = v.rtx_payload_type(vp8.payload_type)
    assert rtx_pt is not None
    lines = section_lines(offer, 0)
    assert f"a=rtpmap:{rtx_pt} rtx/90000" in lines and f"a=fmtp:{rtx_pt} apt={vp8.payload_type}" in lines
    assert f"a=ssrc-group:FID {video.ssrc} {video.rtx_ssrc}" in lines
    assert any(line.startswith(f"a=ssrc:{video.rtx_ssrc} cname:") for line in lines)
    assert v.rtx_pairs == ((video.ssrc, video.rtx_ssrc),)
    assert audio.rtx_ssrc is None and not a.rtx_pairs and not any("rtx" in line for line in section_lines(offer, 1))
    assert video.rtx_ssrc not in (video.ssrc, audio.ssrc)


async def test_an_aiortc_subscriber_answers_rtx_and_a_nack_is_answered_on_it(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    sub, (consumer,), path, answer = await offline_subscriber(router, [producers["video"]])
    assert rtx_negotiated(parse_media(answer)[0]) and consumer.rtx
    for data in stream(20):
        pub._on_rtp(data)
    sent = path.raw_rtp()
    assert len(sent) == 20 and {int.from_bytes(p[8:12], "big") for p in sent} == {consumer.ssrc}
    path.clear()
    asked = [int.from_bytes(sent[i][2:4], "big") for i in (5, 9)]
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, asked))
    resent = path.raw_rtp()
    assert len(resent) == 2
    section = parse_media(answer)[0]
    media_pt = consumer._pt
    rtx_pt = section.rtx_payload_type(media_pt)
    first_rtx_seq = int.from_bytes(resent[0][2:4], "big")
    for k, (packet, original) in enumerate(zip(resent, (sent[5], sent[9]), strict=True)):
        assert packet[1] & 0x7F == rtx_pt and int.from_bytes(packet[8:12], "big") == consumer.rtx_ssrc
        assert int.from_bytes(packet[2:4], "big") == (first_rtx_seq + k) & 0xFFFF  # the RTX stream's own
        assert packet[4:8] == original[4:8] and len(packet) == len(original) + 2  # timestamp; the OSN
        # aiortc's receiver unwraps it into exactly the packet first sent
        parsed = RtpPacket.parse(packet)
        assert bytes(unwrap_rtx(parsed, payload_type=media_pt, ssrc=consumer.ssrc).serialize()) == bytes(
            RtpPacket.parse(original).serialize()
        )
    assert path.rtp() == [sent[5], sent[9]]
    assert worker.stats.rtx_sent == 2 == consumer.stats.rtx_sent and worker.stats.retransmitted == 2


async def test_a_subscriber_without_rtx_in_its_answer_gets_retransmissions_on_the_media_ssrc(worker: Worker) -> None:
    # Firefox's captured answer (to an offer without RTX) keeps VP8 alone
    router = worker.create_router("r")
    pub = router.create_transport("pub")
    await pub.accept_offer(FIREFOX_SIMULCAST_OFFER)
    producers = [pub.produce("0", "microphone"), pub.produce("1", "camera")]
    sub = router.create_transport("sub")
    consumers = [sub.consume(p) for p in producers]
    offer = await sub.create_offer()
    assert consumers[1].rtx_ssrc is not None and f"a=ssrc-group:FID {consumers[1].ssrc}" in offer
    assert not any(c.is_rtx for c in parse_media(FIREFOX_ANSWER)[1].codecs)
    await sub.accept_answer(FIREFOX_ANSWER)
    assert not consumers[1].rtx and not consumers[0].rtx
    assert consumers[1].send_padding(3) == 0  # nothing to pad on


async def test_without_subscriber_rtx_the_offer_is_as_before() -> None:
    worker = offline_worker(subscriber_rtx=False)
    try:
        router = worker.create_router("r")
        _pub, producers, _ = await offline_publisher(router)
        _sub, (consumer,), _path, answer = await offline_subscriber(router, [producers["video"]])
        assert consumer.rtx_ssrc is None and not consumer.rtx
        assert "rtx" not in answer and "FID" not in answer
    finally:
        await worker.close()


async def test_padding_is_padding_only_rtx_that_aiortc_drops(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    _sub, (consumer,), path, answer = await offline_subscriber(router, [producers["video"]])
    assert consumer.send_padding(2) == 0  # nothing forwarded yet: no timestamp to pad with
    for data in stream(5):
        pub._on_rtp(data)
    last = path.raw_rtp()[-1]
    path.clear()
    assert consumer.send_padding(3) == 3 * PACKET_BYTES
    padding = path.raw_rtp()
    rtx_pt = parse_media(answer)[0].rtx_payload_type(consumer._pt)
    seqs = [int.from_bytes(p[2:4], "big") for p in padding]
    for p in padding:
        assert len(p) == PACKET_BYTES and p[0] == 0xA0 and p[1] == rtx_pt and p[-1] == 255
        assert int.from_bytes(p[8:12], "big") == consumer.rtx_ssrc and p[4:8] == last[4:8]
        assert RtpPacket.parse(p).payload == b""  # aiortc: no OSN, dropped as padding
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(3)]
    assert path.rtp() == []  # nothing for the media stream
    assert worker.stats.padding_sent == 3 == consumer.stats.padding_sent
    assert worker.stats.padding_bytes == 3 * PACKET_BYTES


async def test_a_padding_cluster_starts_after_a_quiet_spell_and_stops_on_congestion(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub, producer, _ = await simulcast_publisher(worker)
    layers = Layers(pub)
    layers.all([0])
    sub, video, path = await subscriber(worker, producer)
    layers.all(range(0, 4))
    rates = (150_000, 600_000, 1_700_000)
    for la, rate in zip(producer.streams, rates, strict=True):
        la.bitrate = rate
    assert video.rtx and video.target_layer == 2
    clock = [time.monotonic() + 10]  # the consumer's holds, the estimator and the pacer on one clock
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    sub._last_refresh = clock[0] + 3600  # the tick keeps the captured path (no real ICE pair)
    downlink, pacer = sub._downlink, sub._pacer
    assert downlink is not None and pacer is not None
    est = downlink.estimator
    step = 0

    def report(fraction: int) -> None:  # 0.25 s later: the subscriber's report, the transport's tick
        nonlocal step
        step += 1
        clock[0] += 0.25
        video._packets += 25
        video._octets += rates[video.target_layer or 0] // 32  # what its layer sent in 0.25 s
        sub._on_rtcp(rtcp.build_rr(0x5555, [(video.ssrc, fraction, 0, 1000 + step * 50, 0, 0, 0)]))
        sub._tick(clock[0])

    sub._tick(clock[0])
    report(0)
    report(200)  # 78% lost: an estimate that only the low layer fits
    assert est.estimate is not None and est.estimate < rates[1] and est.padding_probes
    assert video.target_layer == 0 and video.held_down
    congested = clock[0]
    while clock[0] + 0.25 < congested + 2.0:  # congestion less than 2 s ago: no cluster yet
        report(0)
        assert not pacer.running and est.stats.padding_probes == 0, clock[0] - congested
    while est.stats.padding_probes == 0 and clock[0] < congested + 10:
        report(0)
    assert est.stats.padding_probes == 1 and pacer.running
    path.clear()
    clock[0] += 0.1
    assert pacer.run(clock[0])
    padding = [p for p in path.raw_rtp() if int.from_bytes(p[8:12], "big") == video.rtx_ssrc]
    pad_rate = est.probe_padding(clock[0])
    assert 0 < pad_rate <= rates[1] * PROBE_MARGIN  # up to the next layer's bitrate x the margin, media included
    assert 1 <= len(padding) <= pad_rate * 0.1 / 8 / PACKET_BYTES + 1
    # the next report shows loss: the cluster failed and stops at once; nothing was cut for it
    before = est.estimate
    report(60)
    assert est.stats.padding_failures == 1 and est.estimate == before
    assert est.probe_padding(clock[0]) == 0 and not pacer.run(clock[0])
    path.clear()
    report(0)
    assert not pacer.run(clock[0]) and path.raw_rtp() == []  # no new cluster on a link that just lost
    assert est.stats.padding_probes == 1 and not est.probing and video.target_layer == 0
    # quiet again: the next cluster (twice the interval later) meets no loss and wins the layer back
    while est.stats.padding_probes == 1 and clock[0] < congested + 30:
        report(0)
    assert est.stats.padding_probes == 2
    while est.probing and clock[0] < congested + 40:
        clock[0] += 0.01
        pacer.run(clock[0])
        if round(clock[0] * 100) % 25 == 0:
            report(0)
    assert est.stats.padding_successes == 1 and est.estimate is not None and est.estimate >= rates[1]
    assert video.target_layer == 1
    assert worker.stats.padding_sent > 0 and video.stats.padding_sent == worker.stats.padding_sent


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
async def test_chromium_and_firefox_keep_rtx_in_their_answers(worker: Worker, browser: str) -> None:
    # tests/data/{browser}_answer_rtx.sdp: the browser's answer to server_offer_rtx.sdp (the core's
    # offer of a microphone and Firefox's simulcast camera; python -m tests.e2e.capture_rtx_answers)
    answer = (DATA / f"{browser}_answer_rtx.sdp").read_text()
    captured_offer = (DATA / "server_offer_rtx.sdp").read_text()
    router = worker.create_router("r")
    pub = router.create_transport("pub")
    await pub.accept_offer(FIREFOX_SIMULCAST_OFFER)
    producers = [pub.produce("0", "microphone"), pub.produce("1", "camera")]
    sub = router.create_transport("sub")
    consumers = [sub.consume(p) for p in producers]
    offer = await sub.create_offer()
    rtx_lines = [line for line in section_lines(offer, 1) if " rtx/" in line or " apt=" in line]
    assert rtx_lines == [line for line in section_lines(captured_offer, 1) if " rtx/" in line or " apt=" in line]
    video = parse_media(answer)[1]
    assert rtx_negotiated(video) and video.main_codec is not None
    await sub.accept_answer(answer)
    assert consumers[1].rtx and not consumers[0].rtx
    assert consumers[1]._rtx_pt == video.rtx_payload_type(video.main_codec.payload_type)

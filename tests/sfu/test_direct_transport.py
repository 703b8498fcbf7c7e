"""The feature API (sfu.direct_transport): direct consumers and producers, replace_producer.

Offline: real SDP negotiation and real SRTP for the WebRtcTransports, captured packets fed into the
publisher's receive hook, the subscribers' packets read back decrypted; every test runs on both
fan-outs (a direct consumer stays on the Python path, the network consumers beside it do not).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket

from sfu import (
    ClosedError,
    DirectConsumer,
    DirectProducer,
    DirectTransport,
    DuplicateIdError,
    OpusPacketizer,
    RtpPacketizer,
    UnsupportedCodecError,
    Worker,
    parse_header,
    rtcp,
)

from .offline import FAN_OUTS, load_packets, offline_publisher, offline_subscriber, offline_worker

VP8 = load_packets("rtp_vp8.hex")
OPUS = load_packets("rtp_opus.hex")
KEYFRAME = 10  # VP8[10] starts a keyframe (VP8[0] too)


@pytest.fixture(params=FAN_OUTS)
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[Worker]:
    w = offline_worker(request.param)
    yield w
    await w.close()


def continuous(seqs: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def payload(data: bytes) -> bytes:
    h = parse_header(data)
    return data[h.payload_start : h.payload_end]


async def test_a_direct_consumer_gets_every_packet_in_order_with_its_own_continuous_numbering(
    worker: Worker,
) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    video, audio = producers["video"], producers["audio"]
    direct = router.create_direct_transport()
    got: dict[str, list[bytes]] = {"video": [], "audio": []}
    dv = direct.consume(video, got["video"].append)
    da = direct.consume(audio, got["audio"].append)
    # a network subscriber beside them keeps the compiled fan-out
    _sub, (net,), path, _ = await offline_subscriber(router, [video])
    pub._on_rtp(VP8[5])  # learns the SSRC; not a keyframe: the direct consumer waits
    for v, a in zip(VP8[6:], OPUS, strict=False):
        pub._on_rtp(v)
        pub._on_rtp(a)
    for data in OPUS[len(VP8) - 6 :]:
        pub._on_rtp(data)
    assert [payload(p) for p in got["video"]] == [payload(p) for p in VP8[KEYFRAME:]]
    assert [payload(p) for p in got["audio"]] == [payload(p) for p in OPUS]
    for consumer, packets in ((dv, got["video"]), (da, got["audio"])):
        headers = [parse_header(p) for p in packets]
        assert {h.ssrc for h in headers} == {consumer.ssrc}
        assert {h.payload_type for h in headers} == {consumer.producer.codec_info.payload_type}
        assert continuous([h.sequence_number for h in headers])
        # rewritten: a random base, not the publisher's numbers
        assert [h.sequence_number for h in headers] != [parse_header(p).sequence_number for p in
                                                        (VP8[KEYFRAME:] if consumer is dv else OPUS)]
    assert (dv.packets, dv.keyframes, dv.bytes) == (len(VP8) - KEYFRAME, 1, sum(map(len, got["video"])))
    assert dv.stats_dict() == {"packets": dv.packets, "bytes": dv.bytes, "keyframes": 1, "callback_errors": 0}
    assert not dv.fast and net.fast is worker.fast_path
    assert len(path.rtp()) == len(VP8) - KEYFRAME
    assert isinstance(dv, DirectConsumer) and dv.transport is direct and direct.consumers == [dv, da]


async def test_pause_resume_keeps_the_numbering_and_waits_for_a_keyframe(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    video = producers["video"]
    direct = router.create_direct_transport("rec")
    got: list[bytes] = []
    consumer = direct.consume(video, got.append)
    for data in VP8[:5]:
        pub._on_rtp(data)
    consumer.pause()
    for data in VP8[5:8]:
        pub._on_rtp(data)
    consumer.resume()
    for data in VP8[8:]:
        pub._on_rtp(data)
    assert [payload(p) for p in got] == [payload(p) for p in VP8[:5] + VP8[KEYFRAME:]]
    assert continuous([parse_header(p).sequence_number for p in got])
    assert consumer.keyframes == 2
    assert worker.stats.pli_sent >= 1


async def test_a_failing_callback_is_counted_and_the_other_consumers_still_get_the_packet(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    audio = producers["audio"]
    direct = router.create_direct_transport()

    def boom(packet: bytes) -> None:
        raise RuntimeError("feature bug")

    bad = direct.consume(audio, boom)
    got: list[bytes] = []
    direct.consume(audio, got.append)
    _sub, _consumers, path, _ = await offline_subscriber(router, [audio])
    for data in OPUS[:10]:
        pub._on_rtp(data)
    assert bad.callback_errors == 10 and len(got) == 10 and len(path.rtp()) == 10


async def test_close_cascades_to_and_from_direct_transports(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    video, audio = producers["video"], producers["audio"]
    direct = router.create_direct_transport("d")
    with pytest.raises(DuplicateIdError):
        router.create_direct_transport("d")
    closed: list[str] = []
    dv = direct.consume(video, lambda p: None)
    dv.on_close = lambda: closed.append("dv")
    da = direct.consume(audio, lambda p: None)
    # the producer closing closes its direct consumer
    video.close()
    assert dv.closed and closed == ["dv"] and direct.consumers == [da]
    # a direct consumer closing leaves its producer's fan-out
    da.close()
    assert audio.consumers == [] and audio.streams[0].consumers == [] and not audio.closed
    da.close()  # idempotent
    # the direct transport closing closes its producers, and so their network consumers
    bot = direct.produce("audio", "audio/opus", source="bot")
    assert router.get_producer(bot.id) is bot
    _sub, (net,), _path, _ = await offline_subscriber(router, [bot])
    direct.close()
    assert bot.closed and net.closed and router.get_producer(bot.id) is None
    assert router.direct_transports == []
    with pytest.raises(ClosedError):
        direct.consume(audio, lambda p: None)
    with pytest.raises(ClosedError):
        direct.produce("audio")
    with pytest.raises(ClosedError):
        bot.send(OPUS[0])
    # the router closing closes its direct transports and what they hold
    d2 = router.create_direct_transport()
    c2 = d2.consume(audio, lambda p: None)
    p2 = d2.produce("video", "video/VP8")
    router.close()
    assert d2.closed and c2.closed and p2.closed and pub.closed
    assert worker.stats.producers == 0 and worker.stats.consumers == 0
    with pytest.raises(ClosedError):
        router.create_direct_transport()


async def test_a_direct_producer_reaches_subscribers_with_sender_reports_and_answers_nacks_and_plis(
    worker: Worker,
) -> None:
    router = worker.create_router("r")
    direct = router.create_direct_transport()
    bot = direct.produce("video", "video/VP8", source="bot")
    assert isinstance(bot, DirectProducer) and bot.codec == "video/VP8" and bot.kind == "video"
    requests: list[int] = []
    bot.on_keyframe_request = lambda: requests.append(1)
    sub, (consumer,), path, _ = await offline_subscriber(router, [bot])
    assert requests == [1]  # the subscriber's consumer asked for a keyframe when it started
    for data in VP8:
        bot.send(data)  # someone else's SSRC and payload type: the producer's are written
    assert bot.ssrc is not None and bot.sent == len(VP8)
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in VP8]
    assert {p.ssrc for p in out} == {consumer.ssrc} and {p.payload_type for p in out} == {consumer.payload_type}
    assert continuous([p.sequence_number for p in out])
    # its sender report, translated to the consumer's timestamps, for lip sync
    srs = [p for d in path.rtcp() for p in RtcpPacket.parse(d) if isinstance(p, RtcpSrPacket)]
    assert srs and srs[0].ssrc == consumer.ssrc
    assert srs[0].sender_info.rtp_timestamp == out[0].timestamp  # the first packet's, "now"
    # a subscriber's NACK is answered from the history
    path.clear()
    sub._on_rtcp(rtcp.build_nack(1, consumer.ssrc, [out[3].sequence_number]))
    assert [RtpPacket.parse(p).payload for p in path.rtp()] == [out[3].payload]
    # a subscriber's PLI reaches the feature (throttled as for a publisher)
    await _sleep_past_pli_merge()
    sub._on_rtcp(rtcp.build_pli(1, consumer.ssrc))
    assert requests == [1, 1]
    with pytest.raises(ValueError):
        bot.send(b"\x80\x60")
    with pytest.raises(ValueError):
        bot.send_opus(b"\xfc")  # not an Opus producer
    with pytest.raises(UnsupportedCodecError):
        direct.produce("audio", "video/VP8")
    with pytest.raises(UnsupportedCodecError):
        direct.produce("audio", "audio/G722")


async def _sleep_past_pli_merge() -> None:
    import asyncio

    await asyncio.sleep(1.05)  # KEYFRAME_REQUEST_INTERVAL after the first request


async def test_opus_frames_of_a_direct_producer_reach_a_direct_consumer_and_audio_levels_the_observer(
    worker: Worker,
) -> None:
    router = worker.create_router("r")
    direct = router.create_direct_transport()
    bot = direct.produce("audio", "audio/opus", source="bot")
    observer = router.create_active_speaker_observer()
    observer.add_producer(bot)
    levels: list[tuple[int, bool]] = []
    bot.on_audio_level = lambda level, voice: levels.append((level, voice))
    got: list[bytes] = []
    direct.consume(bot, got.append)
    frames = [bytes([0xFC, i]) for i in range(5)]
    for i, frame in enumerate(frames):
        bot.send_opus(frame, 0.02, audio_level=30 + i, voice=True)
    headers = [parse_header(p) for p in got]
    assert [p[h.payload_start :] for p, h in zip(got, headers, strict=True)] == frames
    assert [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(headers)] == [960] * 4
    assert continuous([h.sequence_number for h in headers])
    assert levels == [(30 + i, True) for i in range(5)]


def test_packetizers_number_and_time_packets() -> None:
    opus = OpusPacketizer(111, 0x1234, audio_level_id=3)
    first = opus.packetize(b"\x01\x02", 0.02, audio_level=10, voice=True)
    second = opus.packetize(b"\x03", 0.04)
    h1, h2 = parse_header(first), parse_header(second)
    assert (h1.payload_type, h1.ssrc, h2.sequence_number - h1.sequence_number & 0xFFFF) == (111, 0x1234, 1)
    assert (h2.timestamp - h1.timestamp) & 0xFFFFFFFF == 960
    assert h1.ext_profile == 0xBEDE and first[h1.ext_start : h1.ext_start + 2] == bytes([0x30, 0x80 | 10])
    assert first[h1.payload_start :] == b"\x01\x02" and h2.ext_profile == 0
    video = RtpPacketizer(90000, 96, 7)
    packets = video.frame([b"a", b"b", b"c"], 1 / 30)
    hs = [parse_header(p) for p in packets]
    assert [h.marker for h in hs] == [False, False, True] and len({h.timestamp for h in hs}) == 1
    assert parse_header(video.frame([b"d"], 1 / 30)[0]).timestamp == (hs[0].timestamp + 3000) & 0xFFFFFFFF
    with pytest.raises(ValueError):
        opus.packetize(b"x", 0.5)


async def test_replace_producer_keeps_the_subscribers_ssrc_and_numbering(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _ = await offline_publisher(router)
    raw = producers["audio"]
    direct = router.create_direct_transport()
    clean = direct.produce("audio", "audio/opus", source="microphone-denoised")
    _sub, (consumer,), path, _ = await offline_subscriber(router, [raw])
    also: list[bytes] = []
    watcher = direct.consume(raw, also.append)  # a direct consumer can switch too
    for data in OPUS[:10]:
        pub._on_rtp(data)
    assert consumer.fast is worker.fast_path
    consumer.replace_producer(clean)
    watcher.replace_producer(clean)
    assert consumer.producer is clean and raw.consumers == [] and clean.consumers == [consumer, watcher]
    for data in OPUS[10:15]:
        pub._on_rtp(data)  # the raw microphone goes on: dropped for this consumer
    for i in range(10):
        clean.send_opus(bytes([0xFC, i]))
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert len(out) == 20 and {p.ssrc for p in out} == {consumer.ssrc}
    assert {p.payload_type for p in out} == {consumer.payload_type}
    assert continuous([p.sequence_number for p in out])
    assert all(0 < (b.timestamp - a.timestamp) & 0xFFFFFFFF < 48000 for a, b in itertools.pairwise(out))
    assert [p.payload for p in out[10:]] == [bytes([0xFC, i]) for i in range(10)]
    assert continuous([parse_header(p).sequence_number for p in also]) and len(also) == 20
    # the old producer's close no longer closes it; the new one's does
    raw.close()
    assert not consumer.closed
    clean.close()
    assert consumer.closed and watcher.closed


async def test_replace_producer_for_video_waits_for_the_new_keyframe_and_checks_the_codec(worker: Worker) -> None:
    router = worker.create_router("r")
    pub, producers, _pub_path = await offline_publisher(router)
    camera = producers["video"]
    direct = router.create_direct_transport()
    other = direct.produce("video", "video/VP8", source="screen")
    asked: list[int] = []
    other.on_keyframe_request = lambda: asked.append(1)
    _sub, (consumer,), path, _ = await offline_subscriber(router, [camera])
    for data in VP8[KEYFRAME:20]:
        pub._on_rtp(data)
    consumer.replace_producer(other)
    assert asked == [1]  # the new source was asked for a keyframe at once
    for data in VP8[1:KEYFRAME]:
        other.send(data)  # not a keyframe yet: nothing goes out
    for data in VP8[KEYFRAME:]:
        other.send(data)
    out = [RtpPacket.parse(p) for p in path.rtp()]
    assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d in VP8[KEYFRAME:20] + VP8[KEYFRAME:]]
    assert {p.ssrc for p in out} == {consumer.ssrc} and continuous([p.sequence_number for p in out])
    audio_bot = direct.produce("audio", "audio/opus")
    with pytest.raises(UnsupportedCodecError):
        consumer.replace_producer(audio_bot)
    h264 = direct.produce("video", "video/H264")
    with pytest.raises(UnsupportedCodecError):
        consumer.replace_producer(h264)
    audio_bot.close()
    with pytest.raises(ClosedError):
        consumer.replace_producer(audio_bot)
    assert consumer.producer is other


def test_the_feature_api_is_exported() -> None:
    import sfu

    for name in ("DirectTransport", "DirectConsumer", "DirectProducer", "OpusPacketizer", "RtpPacketizer",
                 "parse_header", "RtpHeader"):
        assert name in sfu.__all__
    assert DirectTransport.__module__ == "sfu.direct_transport"


async def test_a_direct_producer_forwards_only_its_own_header_extensions(worker: Worker) -> None:
    from sfu.rtp import iter_extensions

    router = worker.create_router("r")
    direct = router.create_direct_transport()
    camera = direct.produce("video", "video/VP8")
    got: list[bytes] = []
    direct.consume(camera, got.append)
    h = parse_header(VP8[0])
    assert iter_extensions(VP8[0], h.ext_profile, h.ext_start, h.ext_end)  # a publisher's MID etc.
    camera.send(VP8[0])
    h = parse_header(got[0])
    assert iter_extensions(got[0], h.ext_profile, h.ext_start, h.ext_end) == []  # padding now
    assert payload(got[0]) == payload(VP8[0])

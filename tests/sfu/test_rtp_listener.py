"""sfu.rtp_listener: which producer or consumer each incoming RTP packet and RTCP compound reaches,
and the reason a packet that reaches none is dropped with.

The listener is tested alone: its producers and consumers are recording stand-ins with the members
it calls (the packet path through real producers is in test_forwarding_unit.py and
test_simulcast_forwarding.py). Packets are built here byte by byte (RFC 3550 header, RFC 8285
one-byte extensions); RTCP with sfu.rtcp's builders.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, cast

from sfu import rtcp
from sfu.rtp_listener import RtpListener
from sfu.sdp import CodecInfo
from sfu.stats import WorkerStats

MID_ID, RID_ID = 1, 10
VP8_PT, RTX_PT = 96, 97


def rtp(ssrc: int, seq: int = 1, pt: int = VP8_PT, exts: dict[int, bytes] | None = None,
        payload: bytes = b"\x10\x00\x00payload") -> bytes:
    """An RTP packet; ``exts`` as RFC 8285 one-byte header extensions (id -> value)."""
    first = 0x80
    ext = b""
    if exts:
        first |= 0x10
        body = b"".join(bytes([ext_id << 4 | (len(value) - 1)]) + value for ext_id, value in exts.items())
        body += b"\x00" * (-len(body) % 4)
        ext = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    return struct.pack("!BBHII", first, pt, seq, 1000, ssrc) + ext + payload


@dataclass
class StandInProducer:
    """The members of a Producer the listener reads and calls, recording the calls."""

    mid: str
    ssrc: int | None = None
    simulcast: bool = False
    rids: tuple[str, ...] = ()
    packets: int = 0
    codec_info: CodecInfo = field(default_factory=lambda: CodecInfo("video/VP8", VP8_PT, 90000))
    received: list[int] = field(default_factory=list)  # SSRCs of packets given to _receive_rtp
    repaired: list[int] = field(default_factory=list)  # SSRCs of packets given to _receive_rtx
    layers: dict[int, str] = field(default_factory=dict)  # SSRC -> rid bound
    learned: list[int] = field(default_factory=list)
    rtx_learned: list[tuple[int, int]] = field(default_factory=list)
    reports: list[tuple[int, int, int]] = field(default_factory=list)

    def _receive_rtp(self, data: bytes) -> None:
        self.packets += 1
        self.received.append(struct.unpack_from("!I", data, 8)[0])

    def _receive_rtx(self, data: bytes) -> None:
        self.repaired.append(struct.unpack_from("!I", data, 8)[0])

    def _bind_layer(self, rid: str, ssrc: int) -> bool:
        if rid not in self.rids:
            return False
        self.layers[ssrc] = rid
        return True

    def _learned_ssrc(self, ssrc: int) -> None:
        self.learned.append(ssrc)
        self.ssrc = ssrc

    def _learn_rtx(self, ssrc: int, pt: int, rtx_ssrcs: set[int], *args: Any) -> None:
        self.rtx_learned.append((ssrc, pt))
        rtx_ssrcs.add(ssrc)

    def _on_sender_report(self, ntp: int, rtp_ts: int, ssrc: int | None = None) -> None:
        self.reports.append((ntp, rtp_ts, ssrc or 0))


@dataclass
class StandInProducerRef:
    simulcast: bool = False


@dataclass
class StandInConsumer:
    ssrc: int
    kind: str = "video"
    rtx_ssrc: int | None = None
    producer: StandInProducerRef = field(default_factory=StandInProducerRef)
    estimate: int | None = None
    nacks: list[list[int]] = field(default_factory=list)
    keyframes: int = 0
    report_blocks: list[tuple[int, int]] = field(default_factory=list)

    def _handle_nack(self, seqs: list[int]) -> None:
        self.nacks.append(seqs)

    def _request_keyframe(self) -> None:
        self.keyframes += 1

    def _on_estimate(self, bitrate: int) -> None:
        self.estimate = bitrate

    def _on_report_block(self, lsr: int, dlsr: int) -> None:
        self.report_blocks.append((lsr, dlsr))


def listener_with(*producers: StandInProducer, mids: tuple[str, ...] = ("0", "1")) -> tuple[RtpListener, WorkerStats]:
    stats = WorkerStats()
    listener = RtpListener(stats, "t")
    listener.set_offer(MID_ID, RID_ID, mids)
    for p in producers:
        listener.add_producer(cast(Any, p), () if p.ssrc is None else (p.ssrc,), (), None)
    return listener, stats


def test_a_known_ssrc_goes_to_its_producer_without_reading_extensions() -> None:
    video, audio = StandInProducer("0", ssrc=111), StandInProducer("1", ssrc=222)
    listener, stats = listener_with(video, audio)
    listener.on_rtp(rtp(111))
    listener.on_rtp(rtp(222, exts={MID_ID: b"0"}))  # the SSRC decides, not a MID naming another m-line
    listener.on_rtp(rtp(111, seq=2))
    assert video.received == [111, 111] and audio.received == [222]
    assert stats.rtp_in == 3 and stats.rtp_dropped == {}


def test_an_unknown_ssrc_is_bound_once_by_its_mid_and_then_routed_by_ssrc() -> None:
    video = StandInProducer("0")  # no a=ssrc in the offer (Firefox without SSRCs, a renumbered stream)
    listener, stats = listener_with(video)
    listener.on_rtp(rtp(0xAAAA, exts={MID_ID: b"0"}))
    listener.on_rtp(rtp(0xAAAA, seq=2))  # no MID extension any more: the SSRC is known now
    assert video.learned == [0xAAAA] and video.received == [0xAAAA, 0xAAAA]
    assert listener.producer_by_ssrc == {0xAAAA: cast(Any, video)} and stats.rtp_dropped == {}


def test_an_announced_ssrc_that_never_sent_gives_way_to_the_mid() -> None:
    video = StandInProducer("0", ssrc=111)
    listener, _ = listener_with(video)
    listener.on_rtp(rtp(333, exts={MID_ID: b"0"}))
    assert video.learned == [333] and set(listener.producer_by_ssrc) == {333}


def test_a_second_stream_on_a_producing_m_line_is_dropped_as_unknown_ssrc() -> None:
    video = StandInProducer("0", ssrc=111)
    listener, stats = listener_with(video)
    listener.on_rtp(rtp(111))
    listener.on_rtp(rtp(333, exts={MID_ID: b"0"}))
    assert video.received == [111] and stats.rtp_dropped == {"unknown_ssrc": 1}


def test_unroutable_packets_are_dropped_with_their_reason() -> None:
    video = StandInProducer("0", ssrc=111)
    listener, stats = listener_with(video, mids=("0", "1"))
    listener.on_rtp(rtp(999))  # unknown SSRC, no MID extension
    listener.on_rtp(rtp(999, exts={MID_ID: b"7"}))  # a MID the offer does not have
    listener.on_rtp(rtp(999, exts={MID_ID: b"1"}))  # an offered m-line nobody produced
    listener.on_rtp(rtp(111)[:11])  # shorter than the fixed header
    listener.on_rtp(b"\x40" + rtp(111)[1:])  # version 1
    assert video.received == [] and stats.rtp_in == 5
    assert stats.rtp_dropped == {"unknown_ssrc": 2, "no_producer": 1, "truncated": 1, "bad_version": 1}


def test_without_a_negotiated_mid_extension_an_unknown_ssrc_is_not_bound() -> None:
    video = StandInProducer("0")
    listener, stats = listener_with(video)
    listener.set_offer(0, 0, ("0",))
    listener.on_rtp(rtp(0xAAAA, exts={MID_ID: b"0"}))
    assert video.received == [] and stats.rtp_dropped == {"unknown_ssrc": 1}


def test_simulcast_ssrcs_are_bound_to_layers_by_rid() -> None:
    video = StandInProducer("0", simulcast=True, rids=("q", "h", "f"))
    listener, stats = listener_with(video)
    listener.on_rtp(rtp(10, exts={MID_ID: b"0", RID_ID: b"q"}))
    listener.on_rtp(rtp(30, exts={MID_ID: b"0", RID_ID: b"f"}))
    listener.on_rtp(rtp(30, seq=2))  # bound: by SSRC from now on
    assert video.layers == {10: "q", 30: "f"} and video.received == [10, 30, 30]
    assert video.learned == []  # a layer's SSRC is not the producer's one stream
    listener.on_rtp(rtp(40, exts={MID_ID: b"0"}))  # no rid
    listener.on_rtp(rtp(50, exts={MID_ID: b"0", RID_ID: b"x"}))  # a rid the offer did not have
    assert stats.rtp_dropped == {"unknown_ssrc": 2} and set(listener.producer_by_ssrc) == {10, 30}


def test_simulcast_packets_with_another_payload_type_are_learned_as_rtx() -> None:
    video = StandInProducer("0", simulcast=True, rids=("q", "h", "f"))
    listener, _ = listener_with(video)
    listener.on_rtp(rtp(77, pt=RTX_PT, exts={MID_ID: b"0", RID_ID: b"q"}))  # repaired-rid RTX stream
    assert video.rtx_learned == [(77, RTX_PT)] and 77 in listener.rtx_ssrcs and video.received == []


def test_the_paired_rtx_ssrc_is_unwrapped_by_its_producer_and_others_are_dropped_as_rtx() -> None:
    video = StandInProducer("0", ssrc=111)
    stats = WorkerStats()
    listener = RtpListener(stats, "t")
    listener.set_offer(MID_ID, RID_ID, ("0",))
    # a=ssrc-group:FID 111 112 (paired: unwrapped), and an RTX SSRC of the m-line not paired
    listener.add_producer(cast(Any, video), (111,), (112, 113), 112)
    listener.on_rtp(rtp(112, pt=RTX_PT))
    listener.on_rtp(rtp(113, pt=RTX_PT))
    assert video.repaired == [112] and video.received == [] and stats.rtp_dropped == {"rtx": 1}
    listener.remove_producer(cast(Any, video))
    listener.on_rtp(rtp(112, pt=RTX_PT))  # its producer closed: no longer unwrapped
    assert video.repaired == [112] and stats.rtp_dropped == {"rtx": 2} and listener.rtx_producers == {}


def test_a_closed_producer_takes_its_ssrcs_mid_and_learned_rtx_ssrcs_along() -> None:
    video, audio = StandInProducer("0", ssrc=111), StandInProducer("1", ssrc=222)
    listener, stats = listener_with(video, audio)
    listener.rtx_ssrcs.add(555)  # learned from the RTX payload type
    listener.remove_producer(cast(Any, video), learned_rtx=(555,))
    listener.on_rtp(rtp(111))
    listener.on_rtp(rtp(444, exts={MID_ID: b"0"}))
    assert video.received == [] and stats.rtp_dropped == {"unknown_ssrc": 1, "no_producer": 1}
    assert listener.rtx_ssrcs == set() and set(listener.producer_by_mid) == {"1"}


def test_an_exception_in_a_producer_is_counted_not_raised() -> None:
    video = StandInProducer("0", ssrc=111)

    def broken(data: bytes) -> None:
        raise RuntimeError("a bug in the receive path")

    video._receive_rtp = broken  # type: ignore[method-assign]
    listener, stats = listener_with(video)
    listener.on_rtp(rtp(111))
    listener.on_rtp(rtp(111))
    assert stats.rtp_dropped == {"error": 2} and listener.hook_errors == 2


def test_rtcp_reaches_the_consumer_or_producer_its_ssrc_names() -> None:
    video = StandInProducer("0", ssrc=111)
    listener, stats = listener_with(video)
    consumer = StandInConsumer(ssrc=0x5000)
    listener.add_consumer(cast(Any, consumer))
    sender = 0x9999
    compound = (
        rtcp.build_sr(111, 0x1122334455667788, 90000, 10, 1000)
        + rtcp.build_nack_fci(sender, 0x5000, rtcp.nack_fci([7, 8]))
        + rtcp.build_pli(sender, 0x5000)
        + rtcp.build_remb(sender, 800_000, [0x5000])
    )
    listener.on_rtcp(compound)
    assert video.reports == [(0x1122334455667788, 90000, 111)]
    assert consumer.nacks == [[7, 8]] and consumer.keyframes == 1 and consumer.estimate == 800_000
    assert stats.rtcp_dropped == {} and stats.sr_received == 1 and stats.pli_received == 1
    # feedback about an SSRC no consumer has: dropped as unknown_ssrc; a cut compound as truncated
    listener.on_rtcp(rtcp.build_pli(sender, 0x6000) + rtcp.build_nack_fci(sender, 0x6000, rtcp.nack_fci([1])))
    listener.on_rtcp(compound[:-3])
    assert stats.rtcp_dropped == {"unknown_ssrc": 2, "truncated": 1} and consumer.keyframes == 1
    listener.remove_consumer(cast(Any, consumer))
    listener.on_rtcp(rtcp.build_pli(sender, 0x5000))
    assert consumer.keyframes == 1 and stats.rtcp_dropped["unknown_ssrc"] == 3


def test_receiver_report_blocks_reach_the_consumers_they_are_about() -> None:
    listener, stats = listener_with()
    first, second = StandInConsumer(ssrc=0x5000), StandInConsumer(ssrc=0x5001, kind="audio")
    listener.add_consumer(cast(Any, first))
    listener.add_consumer(cast(Any, second))
    blocks = [(0x5001, 0, 0, 0, 0, 0x12345678, 0x10000), (0x7777, 0, 0, 0, 0, 1, 2)]
    listener.on_rtcp(rtcp.build_rr(0x9999, blocks))
    assert second.report_blocks == [(0x12345678, 0x10000)] and first.report_blocks == []
    assert stats.rr_received == 1 and stats.rtcp_dropped == {}


def test_remb_is_shared_among_the_video_consumers_it_names() -> None:
    listener, _ = listener_with()
    a, b = StandInConsumer(ssrc=1), StandInConsumer(ssrc=2, producer=StandInProducerRef(simulcast=True))
    audio = StandInConsumer(ssrc=3, kind="audio")
    for c in (a, b, audio):
        listener.add_consumer(cast(Any, c))
    listener.on_rtcp(rtcp.build_remb(0x9999, 1_000_000, [1, 2, 3, 4]))
    assert a.estimate == b.estimate == 500_000 and audio.estimate is None


def test_srtp_failures_are_counted_as_received_and_dropped() -> None:
    listener, stats = listener_with()
    listener.on_srtp_error(False)
    listener.on_srtp_error(True)
    assert stats.rtp_in == 1 and stats.rtcp_in == 1
    assert stats.rtp_dropped == {"srtp_unprotect": 1} and stats.rtcp_dropped == {"srtp_unprotect": 1}

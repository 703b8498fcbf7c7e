"""RtpStreamRecv: one incoming stream's receive path, on captured packets, with a recording consumer.

No transport, no socket: the stream is fed bytes and hands what it forwards to the consumers in its
fan-out list (``StreamConsumer``), which here record the calls.
"""

from __future__ import annotations

import struct
import time

from sfu import rtcp, rtx
from sfu.fast_path import FanOut
from sfu.nack_generator import NackGenerator
from sfu.rtp import parse_header
from sfu.rtp_stream_recv import RTP_BAD_SEQ, RtpStreamRecv
from sfu.stats import WorkerStats

from .offline import load_packets

VP8 = load_packets("rtp_vp8.hex")  # keyframes start at packets 0 and 10
KEYFRAMES = {0, 10}
RTX_PT, VP8_PT = 97, 96


class Recorder:
    """A consumer on the Python path: what the stream calls on it."""

    def __init__(self) -> None:
        self.fan: FanOut | None = None
        self.packets: list[tuple[int, bool]] = []  # (incoming seq, keyframe)
        self.restarts = 0
        self.reports: list[tuple[int, int]] = []

    def on_rtp(self, stream: RtpStreamRecv, data: bytes, seq: int, ts: int, keyframe: bool,
               ext_profile: int, ext_start: int, ext_end: int) -> None:
        assert data[ext_end:] and parse_header(data).sequence_number == seq
        self.packets.append((seq, keyframe))

    def on_source_restart(self, stream: RtpStreamRecv) -> None:
        self.restarts += 1

    def on_sender_report(self, stream: RtpStreamRecv, ntp: int, rtp_ts: int) -> None:
        self.reports.append((ntp, rtp_ts))


def renumbered(data: bytes, seq: int, pt: int = VP8_PT) -> bytes:
    out = bytearray(data)
    out[1] = (out[1] & 0x80) | pt
    struct.pack_into("!H", out, 2, seq & 0xFFFF)
    return bytes(out)


def make(**kwargs: object) -> tuple[RtpStreamRecv, Recorder, WorkerStats, list[bool]]:
    stats = WorkerStats()
    plis: list[bool] = []

    def request_keyframe(stream: RtpStreamRecv, force: bool) -> bool:
        plis.append(force)
        return True

    stream = RtpStreamRecv(stats=stats, mime_type="video/VP8", request_keyframe=request_keyframe,
                           ssrc=parse_header(VP8[0]).ssrc, **kwargs)  # type: ignore[arg-type]
    consumer = Recorder()
    stream.consumers.append(consumer)
    return stream, consumer, stats, plis


def test_packets_are_stored_forwarded_with_keyframes_marked_and_counted_across_the_wrap() -> None:
    stream, consumer, _stats, _ = make()
    base = 65530
    for i, data in enumerate(VP8[:20]):
        stream.receive(renumbered(data, base + i))
    assert [k for _, k in consumer.packets] == [i in KEYFRAMES for i in range(20)]
    assert stream.highest_seq == 0x10000 + (base + 19 - 0x10000)  # one cycle
    assert stream.history.get((base + 12) & 0xFFFF) == renumbered(VP8[12], base + 12)
    block = stream.report_block(1.0)
    assert block is not None and block[2] == 0 and block[3] == stream.highest_seq  # nothing lost
    stream.paused = True  # stored and counted, not forwarded
    stream.receive(renumbered(VP8[20], base + 20))
    assert len(consumer.packets) == 20 and stream.history.get((base + 20) & 0xFFFF) is not None


def test_a_lone_far_packet_is_dropped_and_a_confirmed_jump_restarts_the_consumers() -> None:
    stream, consumer, stats, _ = make()
    for i in range(5):
        stream.receive(renumbered(VP8[i], 100 + i))
    stream.receive(renumbered(VP8[5], 30000))  # alone: dropped
    stream.receive(renumbered(VP8[6], 105))
    assert stats.rtp_dropped[RTP_BAD_SEQ] == 1 and consumer.restarts == 0
    stream.receive(renumbered(VP8[7], 40000))
    stream.receive(renumbered(VP8[8], 40001))  # continues from the jump: the sender restarted
    assert stats.rtp_dropped[RTP_BAD_SEQ] == 2 and consumer.restarts == 1
    assert [s for s, _ in consumer.packets] == [100, 101, 102, 103, 104, 105, 40001]
    block = stream.report_block(1.0)
    assert block is not None and block[2] == 0  # the jump is not loss


def test_a_gap_is_nacked_and_its_rtx_repair_is_unwrapped_into_the_stream() -> None:
    stream, consumer, stats, plis = make(nack=NackGenerator(), rtx_apt={RTX_PT: VP8_PT})
    stream.rtx_ssrc = 0xABCDEF
    lost = (3, 4)
    for i in range(8):
        if i not in lost:
            stream.receive(renumbered(VP8[i], 200 + i))
    assert stream.nack is not None and stream.nack.missing() == [203, 204]
    # the stream stamps gaps with the monotonic clock: ask 50 ms later (after the reorder delay)
    packet, pending, broke = stream.nack_tick(time.monotonic() + 0.05, 0x1234)
    assert pending and not broke
    media, seqs = rtcp.parse_nack(packet, 0, len(packet))
    assert media == stream.ssrc and seqs == [203, 204] and stats.nack_sent == 2
    for n, i in enumerate(lost):
        wrapped = rtx.wrap(renumbered(VP8[i], 200 + i), RTX_PT, 0xABCDEF, 7 + n)
        assert wrapped is not None
        original = stream.unwrap_rtx(wrapped)
        assert original == renumbered(VP8[i], 200 + i)
        stream.receive(original)
    assert [s for s, _ in consumer.packets][-2:] == [203, 204] and stream.nack.pending == 0
    assert stream.nack.stats.recovered == 2 and stats.rtp_dropped.get(RTP_BAD_SEQ, 0) == 0
    # a probe (padding only) carries nothing to recover
    probe = struct.pack("!BBHII", 0xA0, RTX_PT, 9, 1, 0xABCDEF) + bytes(9) + b"\x0a"
    assert stream.unwrap_rtx(probe) is None
    assert plis == []


def test_a_loss_too_large_to_repair_asks_for_a_keyframe() -> None:
    stream, _consumer, _stats, plis = make(nack=NackGenerator(max_jump=50))
    stream.receive(renumbered(VP8[0], 1))
    stream.receive(renumbered(VP8[1], 500))
    assert plis == [True]


def test_sender_reports_and_the_bitrate_window() -> None:
    stream, consumer, _stats, _ = make()
    stream.on_sender_report(5 << 32, 1234, 2.0)
    assert stream.last_sr == (5 << 32, 1234) and consumer.reports == [(5 << 32, 1234)]
    assert stream.update_rate(10.0) is False  # the first window starts
    for i in range(10):
        stream.receive(renumbered(VP8[i], i))
    assert stream.update_rate(11.0) is False and stream.active
    assert stream.bitrate == sum(len(renumbered(VP8[i], i)) for i in range(10)) * 8
    assert stream.update_rate(12.0) is True and not stream.active  # nothing in the last second

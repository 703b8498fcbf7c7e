"""Transport-wide congestion control feedback (sfu.transport_cc): the packet layout against the
draft's chunk examples and pion/rtcp's byte vectors, round trips of random arrival patterns, and
what the recorder reports when (time passed in)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import rtcp
from sfu.transport_cc import (
    LARGE_DELTA,
    NOT_RECEIVED,
    SMALL_DELTA,
    TransportCcRecorder,
    build_feedback,
    encode_chunks,
    parse_feedback,
)

# pion/rtcp transport_layer_cc_test.go, "example1" and "example4" (sender 0xfa17fa17)
PION_EXAMPLE1 = bytes.fromhex("afcd0005fa17fa17 43032fa0 00990001 3de80217 20019401".replace(" ", ""))
PION_EXAMPLE4 = bytes.fromhex("afcd0007fa17fa17 193dd8bb 00040007 10636e01 20074c24 24100c0c 10000003".replace(" ", ""))
# "example3": two runs (2 large deltas, 4 small); pion sets the P bit with a zero count here, so it
# is read from its fixed part on, not through split_compound
PION_EXAMPLE3 = bytes.fromhex("afcd0007fa17fa17 193dd8bb 01740006 45b15a40 40022004 1ffe1f9a d000d000".replace(" ", ""))


def test_the_drafts_chunk_examples_encode_as_written() -> None:
    # 3.1.3: a run of 221 'not received'; a run of 24 'received without delta' is not a symbol we send
    assert encode_chunks([NOT_RECEIVED] * 221) == bytes((0x00, 0xDD))
    # 3.1.4 example 1: a one-bit vector
    bits = [0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0]
    assert encode_chunks([*bits, 1])[:2] == bytes((0x9F, 0x1C))


def test_pion_vectors_parse_to_their_statuses_and_deltas() -> None:
    ((_pt, fmt, start, end),) = rtcp.split_compound(PION_EXAMPLE1)
    assert fmt == 15
    fb = parse_feedback(PION_EXAMPLE1, start, end)
    assert (fb.sender_ssrc, fb.media_ssrc, fb.base_sequence, fb.feedback_count) == (0xFA17FA17, 1124282272, 153, 23)
    assert fb.reference_time == 4057090
    assert fb.packets == ((153, 4057090 * 256 + 148),)  # 37000 us = 148 ticks of 250 us

    ((_pt, _fmt, start, end),) = rtcp.split_compound(PION_EXAMPLE4)
    fb = parse_feedback(PION_EXAMPLE4, start, end)
    assert fb.base_sequence == 4 and fb.feedback_count == 1 and fb.reference_time == 1074030
    steps = [t for _, t in fb.packets if t is not None]
    base = 1074030 * 256
    assert [s - base for s in steps] == [76, 112, 148, 164, 176, 188, 204]  # 19, 9, 9, 4, 3, 3, 4 ms

    fb = parse_feedback(PION_EXAMPLE3, 0, len(PION_EXAMPLE3))
    assert fb.base_sequence == 372 and [s for s, _ in fb.packets] == [372, 373, 374, 375, 376, 377]
    base = fb.reference_time * 256
    ticks = [t - base for _, t in fb.packets if t is not None]
    assert ticks == [8190, 8190 + 8090, 16280 + 208, 16488, 16488 + 208, 16696]


def test_pion_vectors_are_what_the_builder_writes() -> None:
    assert build_feedback(0xFA17FA17, 1124282272, 153, 4057090, 23, [SMALL_DELTA], bytes((148,))) == PION_EXAMPLE1
    deltas = bytes((76, 36, 36, 16, 12, 12, 16))
    assert build_feedback(0xFA17FA17, 423483579, 4, 1074030, 1, [SMALL_DELTA] * 7, deltas) == PION_EXAMPLE4


def _roundtrip(arrivals: dict[int, float]) -> dict[int, int | None]:
    rec = TransportCcRecorder(sender_ssrc=1)
    for seq in sorted(arrivals, key=lambda s: arrivals[s]):
        rec.on_packet(seq & 0xFFFF, arrivals[seq])
    out: dict[int, int | None] = {}
    for pkt in rec.feedback(media_ssrc=2):
        ((_pt, _fmt, start, end),) = rtcp.split_compound(pkt)
        fb = parse_feedback(pkt, start, end)
        for seq, t in fb.packets:
            assert seq not in out
            out[seq] = t
    return out


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(0, 0xFFFF),
    gaps=st.lists(st.tuples(st.integers(1, 3), st.floats(0.0, 0.3)), min_size=1, max_size=300),
    jitter=st.integers(0, 2**32),
)
def test_any_arrival_pattern_round_trips_to_the_quarter_millisecond(
    first: int, gaps: list[tuple[int, float]], jitter: int
) -> None:
    rnd = random.Random(jitter)
    arrivals: dict[int, float] = {}
    seq, t = first, 1000.0
    for step, dt in gaps:
        seq += step
        t += dt
        arrivals[seq] = t + rnd.choice((0.0, 0.0, -0.02))  # some arrive before their predecessor
    got = _roundtrip(arrivals)
    lo, hi = min(arrivals), max(arrivals)
    assert sorted(got) == sorted({s & 0xFFFF for s in range(lo, hi + 1)})
    for s in range(lo, hi + 1):
        if s in arrivals:
            assert got[s & 0xFFFF] == round(arrivals[s] * 4000)
        else:
            assert got[s & 0xFFFF] is None


def test_each_number_is_reported_once_and_a_late_one_is_not_reported_again() -> None:
    rec = TransportCcRecorder(sender_ssrc=9)
    for i, seq in enumerate([10, 11, 13]):
        rec.on_packet(seq, 5.0 + i * 0.001)
    (first,) = rec.feedback(media_ssrc=3)
    fb = parse_feedback(first, *rtcp.split_compound(first)[0][2:])
    assert [(s, t is not None) for s, t in fb.packets] == [(10, True), (11, True), (12, False), (13, True)]
    assert fb.feedback_count == 0 and rec.pending == 0
    rec.on_packet(12, 5.1)  # its report (lost) is out already
    assert rec.feedback() == []
    rec.on_packet(14, 5.2)
    (second,) = rec.feedback()
    fb = parse_feedback(second, *rtcp.split_compound(second)[0][2:])
    assert fb.base_sequence == 14 and fb.feedback_count == 1 and len(fb.packets) == 1
    assert rec.feedback_sent == 2 and rec.received == 4


def test_sequence_numbers_wrap_and_a_packet_reordered_before_the_first_is_kept() -> None:
    rec = TransportCcRecorder(sender_ssrc=1)
    rec.on_packet(0, 1.0)
    rec.on_packet(65535, 1.001)  # before the first one, nothing reported yet
    rec.on_packet(1, 1.002)
    (pkt,) = rec.feedback()
    fb = parse_feedback(pkt, *rtcp.split_compound(pkt)[0][2:])
    assert [s for s, _ in fb.packets] == [65535, 0, 1]
    assert fb.packets[0][1] is not None and fb.packets[1][1] is not None
    # 0, 1 were received before 65535: its delta is negative (a large delta)
    assert fb.packets[0][1] > fb.packets[1][1]


def test_a_pause_of_more_than_eight_seconds_starts_a_new_feedback_packet() -> None:
    rec = TransportCcRecorder(sender_ssrc=1)
    rec.on_packet(100, 1.0)
    rec.on_packet(101, 10.0)
    packets = rec.feedback()
    assert len(packets) == 2
    a, b = (parse_feedback(p, *rtcp.split_compound(p)[0][2:]) for p in packets)
    assert [s for s, _ in a.packets] == [100] and [s for s, _ in b.packets] == [101]
    assert (a.feedback_count, b.feedback_count) == (0, 1)


def test_a_backlog_larger_than_the_window_drops_the_oldest_numbers() -> None:
    rec = TransportCcRecorder(sender_ssrc=1, window=64)
    for seq in range(200):
        rec.on_packet(seq, 1.0 + seq * 0.001)
    assert rec.pending == 64
    fbs = [parse_feedback(p, *rtcp.split_compound(p)[0][2:]) for p in rec.feedback()]
    seqs = [s for fb in fbs for s, t in fb.packets]
    assert seqs == list(range(136, 200))
    with pytest.raises(ValueError):
        TransportCcRecorder(sender_ssrc=1, window=100)


def test_a_long_backlog_is_split_and_large_symbols_use_two_bit_vectors() -> None:
    rec = TransportCcRecorder(sender_ssrc=1)
    t = 2.0
    for seq in range(2500):
        t += 0.07 if seq % 5 == 0 else 0.0005  # every 5th after 70 ms: a large delta
        if seq % 7 != 3:
            rec.on_packet(seq, t)
    packets = rec.feedback()
    assert len(packets) == 3
    total = 0
    for pkt in packets:
        parts = rtcp.split_compound(pkt)
        assert len(parts) == 1 and len(pkt) % 4 == 0
        fb = parse_feedback(pkt, parts[0][2], parts[0][3])
        total += len(fb.packets)
        assert all((t is None) == (s % 7 == 3) for s, t in fb.packets)
    assert total == 2500


@pytest.mark.parametrize(
    "data",
    [
        PION_EXAMPLE1[:19],  # shorter than the fixed part
        PION_EXAMPLE1[:20],  # chunk missing
        PION_EXAMPLE4[:23],  # deltas missing
        rtcp.build_pli(1, 2) + bytes(8),  # not transport-cc
        bytes.fromhex("8fcd0005000000010000000200000001000000007001"),  # reserved run symbol
    ],
)
def test_malformed_feedback_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_feedback(data, 0, len(data))


def test_recording_costs_no_allocation_per_packet() -> None:
    import tracemalloc

    rec = TransportCcRecorder(sender_ssrc=1)
    for seq in range(100):
        rec.on_packet(seq, 1.0)
    times = [1.0 + i * 1e-4 for i in range(2000)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for seq in range(100, 2100):
        rec.on_packet(seq & 0xFFFF, times[seq - 100])
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "transport_cc" in str(s.traceback))
    assert grown < 1024
    assert LARGE_DELTA == 2


def _aiortc_packet(uri_ids: dict[str, int], **values: int) -> bytes:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in uri_ids.items()])
    )
    packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=9, ssrc=1234, payload=b"\x10" * 50)
    packet.extensions.mid = "0"
    for name, value in values.items():
        setattr(packet.extensions, name, value)
    return packet.serialize(ext_map)


def test_the_extension_values_aiortc_writes_are_read_back() -> None:
    from sfu.bandwidth_estimator import EXT_ABS_SEND_TIME
    from sfu.rtp import EXT_MID
    from sfu.transport_cc import EXT_TRANSPORT_CC, extension_value

    ids = {EXT_MID: 1, EXT_ABS_SEND_TIME: 3, EXT_TRANSPORT_CC: 5}
    data = _aiortc_packet(ids, abs_send_time=0xABCDEF, transport_sequence_number=65000)
    assert extension_value(data, 3) == 0xABCDEF
    assert extension_value(data, 5) == 65000
    assert extension_value(data, 1) == ord("0")
    assert extension_value(data, 7) == -1
    plain = _aiortc_packet({EXT_MID: 1})
    assert extension_value(plain, 5) == -1
    assert extension_value(plain[:14], 1) == -1  # truncated block
    # two-byte form (RFC 8285 4.3): profile 0x1000, id and length bytes
    two = (
        bytes((0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3))
        + bytes((0x10, 0x00, 0, 2))
        + bytes((0, 5, 2, 0xFD, 0xE8, 0, 0, 0))
    )
    assert extension_value(two, 5) == 65000
    assert extension_value(two[:17], 5) == -1


async def test_aiortcs_answers_to_chromium_and_firefox_get_transport_cc_where_offered() -> None:
    from aiortc import sdp as aiortc_sdp

    from sfu.sdp import check_lines
    from sfu.transport_cc import EXT_TRANSPORT_CC, munge_answer, offered_transport_cc

    from .offline import DATA, offline_worker, section_lines

    worker = offline_worker(bandwidth_estimation=False)  # aiortc's answer, as it writes it
    try:
        router = worker.create_router("r")
        for name, ext_id in (("chromium_simulcast_offer.sdp", 4), ("firefox_offer.sdp", 7)):
            offer = (DATA / name).read_text()
            answer = await router.create_transport(name).accept_offer(offer)
            assert "transport-cc" not in answer  # aiortc never answers it
            out = munge_answer(answer, offer)
            aiortc_sdp.SessionDescription.parse(out)  # still a description aiortc reads
            check_lines(out)
            offered = offered_transport_cc(offer)
            for k, (offer_id, pts) in enumerate(offered):
                lines = section_lines(out, k)
                if lines[0].split()[1] == "0" or not offer_id:
                    assert not any("transport-cc" in x or EXT_TRANSPORT_CC in x for x in lines)
                    continue
                assert f"a=extmap:{ext_id} {EXT_TRANSPORT_CC}" in lines
                answered = [pt for pt in lines[0].split()[3:] if pt in pts]
                assert answered and all(f"a=rtcp-fb:{pt} transport-cc" in lines for pt in answered)
            assert munge_answer(out, offer) == out  # idempotent
            assert munge_answer(answer, answer) == answer  # nothing offered, nothing added
    finally:
        await worker.close()

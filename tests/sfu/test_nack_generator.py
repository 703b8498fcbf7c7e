"""The NACK generator of one received stream (sfu.nack_generator): which numbers it asks for,
when, how often, when it gives up or asks for a keyframe instead; time is passed in."""

from __future__ import annotations

import random

import pytest
from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import rtcp
from sfu.nack_generator import DEFAULT_RTT, MAX_RTT, MIN_RTT, NackGenerator


def feed(gen: NackGenerator, seqs: list[int], now: float, keyframes: tuple[int, ...] = ()) -> list[bool]:
    return [gen.on_packet(s & 0xFFFF, s in keyframes, now) for s in seqs]


def test_in_order_packets_leave_nothing_to_ask() -> None:
    gen = NackGenerator()
    assert feed(gen, list(range(100, 200)), 0.0) == [False] * 100
    assert gen.tick(1.0) == [] and gen.pending == 0 and gen.highest == 199


def test_a_gap_is_asked_for_after_the_reorder_delay_then_once_per_rtt() -> None:
    gen = NackGenerator(reorder_delay=0.01)
    feed(gen, [10, 11, 14, 15], 0.0)
    assert gen.missing() == [12, 13]
    assert gen.tick(0.005, rtt=0.05) == []  # could still be reordered
    assert gen.tick(0.02, rtt=0.05) == [12, 13]
    assert gen.tick(0.04, rtt=0.05) == []  # the first NACK's answer cannot be back yet
    assert gen.tick(0.07, rtt=0.05) == [12, 13]  # one RTT later: asked again
    assert gen.stats.asked == 4 and gen.stats.missing == 2


def test_without_an_rtt_the_default_is_used_and_the_rtt_is_clamped() -> None:
    gen = NackGenerator(reorder_delay=0.0)
    feed(gen, [1, 3], 0.0)
    assert gen.tick(0.0) == [2]
    assert gen.tick(DEFAULT_RTT - 0.001) == []
    assert gen.tick(DEFAULT_RTT) == [2]
    t = DEFAULT_RTT + MIN_RTT + 0.001
    assert gen.tick(t, rtt=0.0) == [2]  # a zero RTT counts as MIN_RTT
    assert gen.tick(t + 0.5, rtt=10.0) == []  # an RTT of 10 s counts as MAX_RTT ...
    assert gen.tick(t + MAX_RTT, rtt=10.0) == []  # ... but by then the number is older than max_age
    assert gen.pending == 0 and gen.stats.given_up == 1


def test_a_reordered_packet_leaves_the_list_before_it_is_asked_for() -> None:
    gen = NackGenerator(reorder_delay=0.01)
    feed(gen, [1, 2, 4, 5], 0.0)
    gen.on_packet(3, False, 0.002)
    assert gen.tick(0.05) == [] and gen.pending == 0
    assert gen.stats.reordered == 1 and gen.stats.recovered == 0


def test_a_retransmitted_packet_is_recovered_and_measures_the_rtt() -> None:
    gen = NackGenerator(reorder_delay=0.0)
    feed(gen, [1, 2, 5], 0.0)
    assert gen.tick(0.01) == [3, 4]
    gen.on_packet(3, False, 0.04)  # asked once: a round trip of 30 ms
    assert gen.rtt == pytest.approx(0.03)
    assert gen.tick(0.035) == [] and gen.missing() == [4]  # the measured RTT: 4 is due at 0.01 + 0.03
    assert gen.tick(0.041) == [4]
    gen.on_packet(4, False, 0.2)  # asked twice: recovered, but no RTT sample (Karn)
    assert gen.rtt == pytest.approx(0.03)
    assert gen.stats.recovered == 2 and gen.pending == 0
    gen.on_packet(4, False, 0.3)  # a duplicate of a recovered packet: nothing
    assert gen.stats.recovered == 2


def test_a_number_is_asked_at_most_max_retries_times() -> None:
    gen = NackGenerator(max_retries=3, max_age=100.0, reorder_delay=0.0)
    feed(gen, [1, 3], 0.0)
    asked = [gen.tick(t * 0.1, rtt=0.1) for t in range(10)]
    assert asked[:3] == [[2], [2], [2]] and all(a == [] for a in asked[3:])
    assert gen.pending == 0 and gen.stats.given_up == 1 and gen.stats.asked == 3


def test_a_number_older_than_max_age_is_given_up() -> None:
    gen = NackGenerator(max_age=0.5, reorder_delay=0.0)
    feed(gen, [1, 3], 0.0)
    feed(gen, [5], 0.3)
    assert gen.tick(0.3, rtt=1.0) == [2, 4]
    assert gen.tick(0.6, rtt=0.01) == [4]  # 2 was seen missing 0.6 s ago: given up
    assert gen.missing() == [4] and gen.stats.given_up == 1


def test_a_late_packet_of_a_given_up_number_is_ignored() -> None:
    gen = NackGenerator(max_age=0.1, reorder_delay=0.0)
    feed(gen, [1, 3], 0.0)
    gen.tick(0.2)
    gen.on_packet(2, False, 0.3)
    assert gen.stats.given_up == 1 and gen.stats.recovered == 0 and gen.stats.reordered == 0


def test_wraparound_of_16_bit_sequence_numbers() -> None:
    gen = NackGenerator(reorder_delay=0.0)
    feed(gen, [65532, 65533, 1, 2], 0.0)  # 65534, 65535, 0 lost across the wrap
    assert gen.missing() == [65534, 65535, 0]
    assert gen.tick(0.0) == [65534, 65535, 0]
    gen.on_packet(65535, False, 0.01)
    assert gen.missing() == [65534, 0] and gen.highest == 65536 + 2
    # the NACK for them packs into one FCI entry across the wrap
    fci = rtcp.nack_fci(gen.tick(0.2))
    assert fci == bytes.fromhex("fffe0002")  # PID 65534, BLP bit 1: 65534 + 2 = 0
    (pkt,) = RtcpPacket.parse(rtcp.build_nack_fci(1, 2, fci))
    assert isinstance(pkt, RtcpRtpfbPacket) and sorted(x & 0xFFFF for x in pkt.lost) == [0, 65534]


def test_a_jump_too_large_asks_for_a_keyframe_and_clears_the_list() -> None:
    gen = NackGenerator(max_jump=100)
    feed(gen, [1, 3], 0.0)
    assert gen.on_packet(3 + 101 + 1, False, 0.01) is True  # 101 lost
    assert gen.pending == 0 and gen.stats.keyframe_requests == 1 and gen.stats.given_up == 1
    assert gen.on_packet(3 + 101 + 2, False, 0.02) is False  # and goes on from there
    assert gen.on_packet(3 + 101 + 2 + 100 + 1, False, 0.03) is False  # exactly max_jump lost: NACKs
    assert gen.pending == 100


def test_too_many_missing_drops_what_precedes_the_last_keyframe_first() -> None:
    gen = NackGenerator(max_packets=50, max_jump=40)
    feed(gen, [0, 31], 0.0)  # 30 missing
    feed(gen, [32, 33], 0.0, keyframes=(32,))
    assert gen.on_packet(64, False, 0.0) is False  # 30 more: 60 > 50, but 1..30 precede the keyframe
    assert gen.missing() == list(range(34, 64)) and gen.stats.given_up == 30
    assert gen.on_packet(100, False, 0.0) is True  # 35 more: 65 > 50 and no keyframe to cut at
    assert gen.pending == 0 and gen.stats.keyframe_requests == 1


def test_the_list_stays_bounded_under_total_loss_and_heavy_loss() -> None:
    gen = NackGenerator(max_packets=200)
    seq = 0
    keyframes = 0
    for i in range(20_000):
        seq += 150  # 99.3% loss: one packet in 150 arrives
        keyframes += gen.on_packet(seq & 0xFFFF, False, i * 0.01)
        gen.tick(i * 0.01)
        assert gen.pending <= 200
    assert keyframes > 0
    gen2 = NackGenerator()
    gen2.on_packet(0, False, 0.0)
    for i in range(1000):  # nothing arrives at all: nothing grows
        assert gen2.tick(i * 0.02) == []
    assert gen2.pending == 0


def test_one_tick_asks_at_most_max_per_tick_numbers_and_the_rest_next() -> None:
    gen = NackGenerator(max_per_tick=10, reorder_delay=0.0)
    feed(gen, [0, 26], 0.0)
    first = gen.tick(0.0)
    assert first == list(range(1, 11))
    assert gen.tick(0.001) == list(range(11, 21))
    assert gen.tick(0.002) == list(range(21, 26))


def test_reset_forgets_the_numbering() -> None:
    gen = NackGenerator()
    feed(gen, [10, 20], 0.0)
    gen.reset()
    assert gen.pending == 0 and gen.highest == -1 and gen.stats.given_up == 9
    feed(gen, [5000, 5001], 0.0)
    assert gen.pending == 0


def test_duplicates_and_the_first_packet_cost_nothing() -> None:
    gen = NackGenerator()
    assert gen.on_packet(0, True, 0.0) is False
    assert gen.on_packet(0, False, 0.0) is False
    assert gen.on_packet(1, False, 0.0) is False
    assert gen.pending == 0 and gen.highest == 1


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        NackGenerator(max_jump=0x8000)
    with pytest.raises(ValueError):
        NackGenerator(max_packets=0)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(0, 65535), st.integers(65136, 65535)), st.integers(0, 2**32 - 1))
def test_random_loss_and_reordering_every_lost_number_is_asked_and_nothing_else(start: int, seed: int) -> None:
    rnd = random.Random(seed)
    sent = list(range(start, start + 400))
    arrivals = [s for s in sent if rnd.random() > 0.1]
    for i in range(len(arrivals) - 1):  # some neighbours swapped: reordered, not lost
        if rnd.random() < 0.05:
            arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    gen = NackGenerator(reorder_delay=0.0, max_age=10.0)
    for s in arrivals:
        gen.on_packet(s & 0xFFFF, False, 0.0)
    got = set(arrivals)
    lost = {s & 0xFFFF for s in sent if s not in got and arrivals[0] < s < max(arrivals)}
    asked = gen.tick(0.0)
    assert set(asked) == lost and len(asked) == len(lost)
    # sequence order, so the FCI packs runs (the parse gives back exactly the same numbers)
    fci = rtcp.nack_fci(asked)
    (pkt,) = RtcpPacket.parse(rtcp.build_nack_fci(1, 2, fci))
    assert isinstance(pkt, RtcpRtpfbPacket) and sorted(x & 0xFFFF for x in pkt.lost) == sorted(lost)


def test_nack_fci_packs_runs_of_17_and_starts_a_new_pair_after_a_gap() -> None:
    assert rtcp.nack_fci([]) == b""
    assert rtcp.nack_fci(list(range(100, 117))) == bytes.fromhex("0064ffff")
    assert rtcp.nack_fci([100, 117]) == bytes.fromhex("0064000000750000")
    assert rtcp.nack_fci([5, 5, 6]) == bytes.fromhex("000500000005" "0001")
    with pytest.raises(ValueError):
        rtcp.build_nack_fci(1, 2, b"\x00\x01")


def test_on_loss_is_called_when_a_gap_adds_numbers_and_is_missing_reads_the_list() -> None:
    gen = NackGenerator()
    calls: list[int] = []
    gen.on_loss = lambda: calls.append(gen.pending)
    feed(gen, [65000, 65001, 65002], 0.0)
    assert calls == []
    feed(gen, [65005, 65006], 0.0)
    assert calls == [2]
    feed(gen, [200], 0.0)  # across the wrap: 65007..65535 and 0..199
    assert calls == [2, 2 + 529 + 200]
    gen2 = NackGenerator()
    feed(gen2, [65534, 2], 0.0)
    assert [s for s in (65533, 65534, 65535, 0, 1, 2, 3) if gen2.is_missing(s)] == [65535, 0, 1]
    assert not NackGenerator().is_missing(5)


def _stream(gen: NackGenerator, *, packets: int, loss: float, rng: random.Random, rate: float = 100.0,
            tick_s: float = 0.02, answer: float = 0.0) -> tuple[int, int]:
    """``packets`` at ``rate`` per second with random ``loss``; each NACKed number is retransmitted
    and the retransmission survives with probability ``answer``.  Returns (received, asked)."""
    now, next_tick, received, asked = 0.0, 0.0, 0, 0
    for seq in range(packets):
        now = seq / rate
        if rng.random() >= loss:
            gen.on_packet(seq & 0xFFFF, seq % 100 == 0, now)
            received += 1
        while next_tick <= now:
            for n in gen.tick(next_tick, rtt=0.05):
                asked += 1
                if rng.random() < answer:
                    gen.on_packet(n, False, next_tick + 0.05)
            next_tick += tick_s
    return received, asked


def test_random_loss_on_a_good_link_is_asked_for_in_full_within_the_budget() -> None:
    gen = NackGenerator()
    received, asked = _stream(gen, packets=3000, loss=0.05, rng=random.Random(7), answer=1.0)
    assert gen.stats.throttled == 0
    assert gen.stats.recovered >= 0.97 * gen.stats.missing  # every loss asked for and repaired
    assert asked <= 0.15 * received + 64


def test_a_congested_link_is_asked_for_at_most_nack_ratio_per_packet_received() -> None:
    # an 800 kbit/s uplink under 1.1 Mbit/s of media loses ~25%, and its retransmissions too: the
    # generator must not ask for every loss again and again (benchmarks/network.py, scenario uplink)
    gen = NackGenerator()
    received, asked = _stream(gen, packets=6000, loss=0.25, rng=random.Random(3), answer=0.75)
    assert asked <= 0.15 * received + 64
    assert gen.stats.throttled > 0
    unlimited = NackGenerator(nack_ratio=100.0, nack_burst=10_000.0)
    _, asked_unlimited = _stream(unlimited, packets=6000, loss=0.25, rng=random.Random(3), answer=0.75)
    assert asked_unlimited > 1.5 * asked  # the budget is what held it back
    assert gen.pending <= 1000


def test_the_budget_refuses_a_nonpositive_ratio() -> None:
    with pytest.raises(ValueError):
        NackGenerator(nack_ratio=0.0)
    with pytest.raises(ValueError):
        NackGenerator(nack_burst=0.5)

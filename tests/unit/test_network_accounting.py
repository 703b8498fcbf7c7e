"""The network benchmark's accounting (benchmarks/network.py), without a network: sequence numbers
counted once across a wrap, the span they cover, and freezes measured from decoded frames' times."""

from __future__ import annotations

from typing import Any

from benchmarks.network import Frame, SeqTally, Subscriber


def test_a_packet_received_twice_counts_once_and_a_gap_stays_in_the_span() -> None:
    tally = SeqTally()
    for i, seq in enumerate([10, 11, 13, 11, 14]):  # 12 lost, 11 retransmitted
        tally.add(seq, float(i))
    assert tally.window(0.0, 10.0) == (4, 5)
    assert tally.duplicates == 1


def test_sequence_numbers_continue_across_the_16_bit_wrap() -> None:
    tally = SeqTally()
    for i, seq in enumerate([65534, 65535, 0, 2]):
        tally.add(seq, float(i))
    assert tally.highest == 65538
    assert tally.window(0.0, 10.0) == (4, 5)


def test_a_window_counts_only_packets_that_arrived_inside_it() -> None:
    tally = SeqTally()
    for i in range(10):
        tally.add(100 + i, float(i))
    assert tally.window(2.0, 5.0) == (3, 3)
    assert tally.window(20.0, 30.0) == (0, 0)


def _frames_at(times: list[float]) -> Any:
    sub = Subscriber.__new__(Subscriber)  # only the frame list: no connection
    sub.frames = [Frame(t, 360) for t in times]
    return sub


def test_the_longest_freeze_counts_a_gap_that_began_before_the_window_and_the_silence_at_its_end() -> None:
    sub = _frames_at([0.0, 0.1, 2.0, 2.1, 2.2])
    assert round(sub.longest_freeze(1.0, 2.5), 3) == 1.0  # from the window's start to the frame at 2.0
    assert round(sub.longest_freeze(2.0, 5.0), 3) == 2.8  # the last frame at 2.2, the window ends at 5.0
    assert round(sub.longest_freeze(0.0, 2.2), 3) == 1.9


def test_no_frame_at_all_is_a_freeze_as_long_as_the_window() -> None:
    assert _frames_at([]).longest_freeze(3.0, 8.0) == 5.0

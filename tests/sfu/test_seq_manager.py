"""SeqManager: a consumer's sequence number / timestamp rewriting, with time passed in."""

from __future__ import annotations

import itertools
import random

from sfu.seq_manager import MAX_SWITCH_TS_JUMP, SeqManager

CLOCK = 90000


def run(sm: SeqManager, packets: list[tuple[int, int]], now: float) -> list[tuple[int, int]]:
    """Rewrite and 'send' each (seq, ts) in order; the outgoing pairs."""
    out = []
    for seq, ts in packets:
        if sm.resync_pending:
            sm.sync(seq, ts, now)
        o = sm.rewrite(seq, ts)
        sm.sent(*o, now)
        out.append(o)
    return out


def test_the_first_packet_gets_a_random_base_and_numbers_continue_across_both_wraps() -> None:
    sm = SeqManager(CLOCK, random.Random(7))
    packets = [((65533 + i) & 0xFFFF, (0xFFFFFF00 + 3000 * i) & 0xFFFFFFFF) for i in range(6)]
    out = run(sm, packets, 1.0)
    assert all((b[0] - a[0]) & 0xFFFF == 1 for a, b in itertools.pairwise(out))
    assert all((b[1] - a[1]) & 0xFFFFFFFF == 3000 for a, b in itertools.pairwise(out))
    other = run(SeqManager(CLOCK, random.Random(8)), packets, 1.0)
    assert other[0] != out[0]  # the base is random (RFC 3550 5.1)
    assert sm.last_seq == out[-1][0] and sm.start == 65533


def test_a_resync_after_a_pause_continues_without_a_gap_and_advances_by_the_time_paused() -> None:
    sm = SeqManager(CLOCK, random.Random(1))
    before = run(sm, [(100 + i, 5000 + 3000 * i) for i in range(3)], 10.0)
    sm.resync()  # paused 2 s; the publisher went on meanwhile (or restarted its numbering)
    after = run(sm, [(40000 + i, 7_000_000 + 3000 * i) for i in range(3)], 12.0)
    assert (after[0][0] - before[-1][0]) & 0xFFFF == 1
    assert (after[0][1] - before[-1][1]) & 0xFFFFFFFF == 2 * CLOCK
    assert all((b[0] - a[0]) & 0xFFFF == 1 for a, b in itertools.pairwise(after))
    # at least one tick even when no time passed (a new frame never repeats a timestamp)
    sm.resync()
    again = run(sm, [(9, 9)], 12.0)
    assert (again[0][1] - after[-1][1]) & 0xFFFFFFFF == 1


def test_a_layer_switch_without_sender_reports_uses_the_wall_clock() -> None:
    sm = SeqManager(CLOCK, random.Random(2))
    old = run(sm, [(1000 + i, 123_456 + 3000 * i) for i in range(4)], 5.0)
    sm.switch(30000, 2_000_000_000, 5.125)  # the new layer's keyframe, 125 ms after the last packet
    new = run(sm, [(30000 + i, 2_000_000_000 + 3000 * i) for i in range(3)], 5.125)
    assert (new[0][0] - old[-1][0]) & 0xFFFF == 1
    assert (new[0][1] - old[-1][1]) & 0xFFFFFFFF == 0.125 * CLOCK
    assert [(t - new[0][1]) & 0xFFFFFFFF for _, t in new] == [0, 3000, 6000]


def test_a_layer_switch_with_sender_reports_places_the_keyframe_at_its_capture_time() -> None:
    sm = SeqManager(CLOCK, random.Random(3))
    ntp = 1000 << 32
    old_sr = (ntp, 50_000)  # old layer: rtp 50_000 at NTP 1000 s
    new_sr = (ntp + (1 << 31), 4_000_000_000)  # new layer: rtp 4e9 at NTP 1000.5 s
    old = run(sm, [(1 + i, 50_000 + 3000 * i) for i in range(10)], 3.0)  # up to 50_000 + 27_000
    # the new layer's keyframe was captured 0.4 s after its SR, i.e. at NTP 1000.9 s, which is
    # 50_000 + 0.9 * 90000 = 131_000 on the old layer's clock
    keyframe_ts = (4_000_000_000 + int(0.4 * CLOCK)) & 0xFFFFFFFF
    sm.switch(7, keyframe_ts, 3.05, old_sr, new_sr)
    (first,) = run(sm, [(7, keyframe_ts)], 3.05)
    assert (first[0] - old[-1][0]) & 0xFFFF == 1
    assert (first[1] - old[0][1]) & 0xFFFFFFFF == 131_000 - 50_000
    # a report that would put it before the last packet sent (or too far ahead) is not trusted
    sm2 = SeqManager(CLOCK, random.Random(3))
    old2 = run(sm2, [(1 + i, 50_000 + 3000 * i) for i in range(10)], 3.0)
    late_sr = (ntp + (60 << 32), 4_000_000_000)  # a minute later: beyond MAX_SWITCH_TS_JUMP
    assert 60 * CLOCK > MAX_SWITCH_TS_JUMP
    sm2.switch(7, keyframe_ts, 3.0625, old_sr, late_sr)
    (first2,) = run(sm2, [(7, keyframe_ts)], 3.0625)
    assert (first2[1] - old2[-1][1]) & 0xFFFFFFFF == 0.0625 * CLOCK  # the wall clock instead


def test_nacked_numbers_map_back_only_from_the_current_offsets_on() -> None:
    sm = SeqManager(CLOCK, random.Random(4))
    old = run(sm, [(65530 + i, 0) for i in range(4)], 1.0)
    assert sm.incoming(old[1][0]) == 65531
    sm.switch(500, 90000, 1.1)
    new = run(sm, [(500 + i, 90000) for i in range(3)], 1.1)
    assert sm.incoming(new[2][0]) == 502
    assert sm.incoming(old[3][0]) is None  # sent before the switch: another stream's number
    assert SeqManager(CLOCK).incoming(5) is None


def test_the_compiled_fan_outs_last_state_is_taken_back() -> None:
    sm = SeqManager(CLOCK, random.Random(5))
    run(sm, [(1, 1)], 1.0)
    sm.restore(-1, 0, 0.0)  # the slot sent nothing
    assert sm.last_seq is not None
    sm.restore(4242, 777, 9.0)
    sm.resync()
    (nxt,) = run(sm, [(60000, 5)], 10.0)
    assert nxt == (4243, 777 + CLOCK)

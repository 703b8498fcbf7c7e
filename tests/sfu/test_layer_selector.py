"""select_layer: the simulcast layer a consumer targets, as a pure function (no sockets, no clock)."""

from __future__ import annotations

import random

from sfu.layer_selector import DOWN_FACTOR, HOLD_DOWN, HOLD_UP, LayerState, select_layer

RATES = (150_000, 500_000, 1_500_000)


def layers(active: tuple[bool, ...] = (True, True, True)) -> list[LayerState]:
    return [LayerState(a, r) for a, r in zip(active, RATES, strict=True)]


def test_without_an_estimate_the_preferred_layer_clamped_and_sending() -> None:
    assert select_layer(1, layers(), None) == 1
    assert select_layer(1 << 30, layers(), 0) == 2  # "as high as there is"
    assert select_layer(2, layers((True, True, False)), 2) == 1  # highest sending below
    assert select_layer(0, layers((False, False, True)), 0) == 2  # none below: lowest above
    assert select_layer(1, layers((False, False, False)), 1) == 1  # nothing sends: keep the target
    assert select_layer(1, layers((False, False, False)), None) is None
    assert select_layer(0, [], None) is None


def test_the_first_choice_with_an_estimate_is_the_highest_wished_layer_that_fits() -> None:
    assert select_layer(2, layers(), None, 600_000) == 1
    assert select_layer(2, layers(), None, 100_000) == 0  # layer 0 at least
    assert select_layer(1, layers(), None, 5_000_000) == 1  # never above the wish


def test_down_fast_to_the_layer_that_fits_once_the_hold_after_a_change_passed() -> None:
    # 1.6 Mbit/s > 0.75 x 1.5 Mbit/s: the dead band, no move
    assert select_layer(2, layers(), 2, 1_600_000, 30.0) == 2
    assert select_layer(2, layers(), 2, 1_000_000, 30.0) == 1  # < 0.75 x 1.5M: down, to "h"
    assert select_layer(2, layers(), 2, 400_000, 30.0) == 0  # "h" (500k) does not fit either
    assert select_layer(2, layers(), 2, 400_000, HOLD_DOWN - 0.1) == 2  # just switched: wait
    assert select_layer(2, layers(), 0, 100_000, 30.0) == 0  # nothing below layer 0
    # a failed step up ends sooner when the estimator says so (hold_after_up), not a REMB's hold
    assert select_layer(2, layers(), 2, 400_000, 2.0, last_step=1) == 2
    assert select_layer(2, layers(), 2, 400_000, 2.0, last_step=1, hold_after_up=1.5) == 0
    assert select_layer(2, layers(), 2, 400_000, 2.0, last_step=-1, hold_after_up=1.5) == 2


def test_up_one_layer_at_a_time_only_with_room_and_after_the_hold() -> None:
    assert select_layer(2, layers(), 0, 2_000_000, HOLD_UP - 0.1) == 0
    assert select_layer(2, layers(), 0, 2_000_000, HOLD_UP) == 1  # one step, not two
    assert select_layer(2, layers(), 1, 1_400_000, 60.0) == 1  # the next layer does not fit
    assert select_layer(2, layers(), 1, 1_400_000, 15.0, probe_after=15.0) == 2  # REMB: a probe
    assert select_layer(1, layers(), 1, 9_000_000, 60.0) == 1  # never above the wish
    assert select_layer(0, layers(), 2, 9_000_000, 0.0) == 0  # a lower wish applies at once


def test_an_estimate_hovering_around_a_layers_bitrate_does_not_flap() -> None:
    """Two minutes of an estimate that wanders between 0.8x and 1.1x of the high layer's bitrate
    (re-evaluated every 100 ms): at most the first step, no back and forth."""
    r = random.Random(12)
    now, changed_at, target = 0.0, 0.0, 2
    switches = 0
    for _ in range(1200):
        now += 0.1
        estimate = RATES[2] * r.uniform(DOWN_FACTOR + 0.05, 1.1)
        nxt = select_layer(2, layers(), target, estimate, now - changed_at)
        if nxt != target:
            switches += 1
            target, changed_at = nxt, now
    assert switches == 0 and target == 2
    # a link that really shrinks, then recovers: down once, up once (one layer at a time)
    history = []
    for estimate in [400_000] * 100 + [3_000_000] * 200:
        now += 0.1
        nxt = select_layer(2, layers(), target, estimate, now - changed_at)
        if nxt != target:
            target, changed_at = nxt, now
            history.append(target)
    assert history == [0, 1, 2]

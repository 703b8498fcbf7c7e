"""Which simulcast layer a consumer forwards: a pure function of what it knows now.

:func:`select_layer` takes the subscriber's wish (the preferred layer), what the publisher sends
(per layer: whether it is sending, its measured bitrate), the bandwidth available towards the
subscriber (an estimate, or None when there is none), the layer targeted now and the time since
that target was chosen, and returns the layer to target. No sockets, no clocks, no state: the
consumer calls it when any input changes and keeps the answer (``sfu.consumer``).

Rules (LiveKit's ``Forwarder`` and mediasoup's ``SimulcastConsumer`` choose the same way in
spirit: the highest layer that fits, down quickly, up carefully; the code is this project's own):

- Without an estimate: the preferred layer, clamped to the layers that exist.
- Down fast: when the estimate falls below ``down_factor`` x the current layer's bitrate (and
  ``hold_down`` seconds have passed since the last change: a bitrate measured just after a switch
  still describes the old layer), the highest layer below whose bitrate fits the estimate (at
  least layer 0). After a step up (``last_step`` > 0) the wait is ``hold_after_up`` instead when
  given: an estimator that sees the queue grow (``sfu.downlink_estimator``) ends a failed probe
  sooner; a REMB, which lags what the subscriber receives, keeps ``hold_down``. Between
  ``down_factor`` x and 1 x the current bitrate nothing moves: the dead band that keeps an
  estimate hovering near a layer's bitrate from flapping.
- Up with hysteresis: one layer at a time, only ``hold_up`` seconds after the last change, and
  only when the estimate covers the next layer's bitrate times ``up_factor``; with ``probe_after``
  set, one layer up is tried anyway that long after the last change (a receiver-side estimate
  such as REMB cannot rise above what the subscriber receives, so it never shows room for a
  higher layer by itself).
- A layer not sending (``active`` False: not yet seen, or stopped by the publisher) is replaced by
  the highest sending layer below the choice, else the lowest sending one above it, else the
  current target is kept.
- A bitrate of 0 (not measured yet) fits any estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DOWN_FACTOR = 0.75  # step down when the estimate < 0.75 x the current layer's bitrate
UP_FACTOR = 1.0  # step up when the estimate >= the next layer's bitrate x this
HOLD_DOWN = 4.0  # s after a change before the estimate may step down (it lags a switch)
HOLD_UP = 4.0  # s after a change before the estimate may step up
PROBE_AFTER = 15.0  # REMB: s after a step before one layer up is tried without evidence
HOLD_AFTER_UP = 1.5  # s after a step up before a (non-REMB) estimate may step down again


@dataclass(frozen=True, slots=True)
class LayerState:
    """What the selector knows of one layer: whether it is sending now and its bitrate (bit/s)."""

    active: bool
    bitrate: float = 0.0


def select_layer(
    preferred: int,
    layers: Sequence[LayerState],
    current: int | None,
    available_bps: float | None = None,
    since_change: float = 0.0,
    *,
    down_factor: float = DOWN_FACTOR,
    up_factor: float = UP_FACTOR,
    hold_down: float = HOLD_DOWN,
    hold_up: float = HOLD_UP,
    probe_after: float | None = None,
    last_step: int = 0,
    hold_after_up: float | None = None,
) -> int | None:
    """The layer to target (an index into ``layers``, 0 = lowest), or None when no layer sends
    and none was targeted. ``current``: the layer targeted now (None: none yet);
    ``since_change``: seconds since it was chosen; ``last_step``: the direction of that change (+1
    up, -1 down, 0 a new wish or the start). See the module docstring for the rules."""
    n = len(layers)
    if n == 0:
        return None
    want = min(max(preferred, 0), n - 1)
    if current is not None and not 0 <= current < n:
        current = None
    choice = want
    if available_bps is not None and current is not None and current <= want:
        choice = current
        rate = layers[current].bitrate
        if current > 0 and available_bps < rate * down_factor:
            hold = hold_after_up if last_step > 0 and hold_after_up is not None else hold_down
            if since_change >= hold:
                choice = current - 1
                while choice > 0 and layers[choice].bitrate > available_bps:
                    choice -= 1
        elif current < want and since_change >= hold_up and (
            available_bps >= layers[current + 1].bitrate * up_factor
            or (probe_after is not None and since_change >= probe_after)
        ):
            choice = current + 1
    elif available_bps is not None and current is None:
        # the first choice: the highest wished layer that fits
        while choice > 0 and layers[choice].bitrate > available_bps:
            choice -= 1
    for index in range(choice, -1, -1):  # the highest sending layer at or below the choice
        if layers[index].active:
            return index
    for index in range(choice + 1, n):  # none below: the lowest sending one above
        if layers[index].active:
            return index
    return current

"""Dominant speaker identification (I. Volfin and I. Cohen, "Dominant Speaker Identification for Multipoint
Videoconferencing", IEEE 2012), the algorithm Jitsi's DominantSpeakerIdentification and
mediasoup's ActiveSpeakerObserver implement.

Each audio producer feeds RFC 6464 levels (-dBov, 0 loud .. 127 silent) per packet; the observer
keeps them in a ring, and every ``decision_interval`` s it scores speech activity on three time
scales (immediate: one packet, medium: ~100 ms blocks, long: ~1 s) with a binomial model, and
switches the dominant speaker only when a challenger beats the current one on all three scales.
That is what keeps it from flapping on a cough or a laugh, unlike "the loudest packet".

Per packet the cost is one ring write (no allocation); the scoring runs a few times per second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .producer import Producer

# the paper's / Jitsi's / mediasoup's parameters
N1 = 13  # sub-units of the immediate scale: a level 0..127 is quantised into 13 steps of 10
SUBUNIT_N1 = (127 + N1 - 1) // N1  # 10
N2 = 5  # immediates per medium block
N3 = 10  # mediums per long block
MEDIUM_THRESHOLD = 7  # an immediate above it counts as active in its medium block
LONG_THRESHOLD = 4  # a medium above it counts as active in the long block
C1, C2, C3 = 3.0, 2.0, 0.0  # how much a challenger must beat the dominant speaker by (log ratios)
LAMBDA_IMMEDIATE, LAMBDA_MEDIUM, LAMBDA_LONG = 0.78, 24.0, 47.0
MIN_SCORE = 1e-10
LEVELS = N2 * N3  # 50 packets of 20 ms = 1 s of history
MAX_LEVEL = 127
PACKET_S = 0.02  # one level per 20 ms audio packet
LEVEL_IDLE_TIMEOUT = 0.04  # s without a packet: silence is assumed for the missing packets (muted, DTX, gone)
MIN_LEVEL_WINDOW = 750  # packets (15 s) before the noise floor may rise


def _score(active: int, total: int, lam: float) -> float:
    """log of P(active of total sub-units are speech | speech) vs noise (the paper's eq. 6)."""
    s = (math.log(math.comb(total, active)) + total * math.log(0.5) - math.log(lam) + lam * active)
    return max(s, MIN_SCORE)


class _Speaker:
    __slots__ = ("immediate", "last_packet", "levels", "long", "medium", "min_level", "next_min", "next_min_count",
                 "pos")

    def __init__(self) -> None:
        self.levels = bytearray(LEVELS)  # activity 0 (silent) .. 127 (loud), ring
        self.pos = 0
        self.last_packet: float | None = None
        self.min_level = 0  # noise floor (0: not known yet)
        self.next_min = 0
        self.next_min_count = 0
        self.immediate = self.medium = self.long = MIN_SCORE

    def add(self, dbov: int, now: float) -> None:
        activity = MAX_LEVEL - (dbov if 0 <= dbov <= MAX_LEVEL else MAX_LEVEL)
        self._push(activity)
        self.last_packet = now

    def _push(self, activity: int) -> None:
        self.pos = (self.pos + 1) % LEVELS
        self.levels[self.pos] = activity
        self._update_min_level(activity)

    def _update_min_level(self, level: int) -> None:
        """The noise floor: the lowest level seen, allowed to rise slowly (geometric mean) when a
        whole window stays above it (Jitsi's and mediasoup's rule)."""
        if level == 0:
            return
        if self.min_level == 0 or level < self.min_level:
            self.min_level, self.next_min, self.next_min_count = level, 0, 0
            return
        if self.next_min == 0 or level < self.next_min:
            self.next_min = level
        self.next_min_count += 1
        if self.next_min_count >= MIN_LEVEL_WINDOW:
            self.min_level = int(math.sqrt(self.min_level * self.next_min))
            self.next_min, self.next_min_count = 0, 0

    def evaluate(self, now: float) -> None:
        if self.last_packet is not None and now - self.last_packet > LEVEL_IDLE_TIMEOUT:
            missed = min(LEVELS, int((now - self.last_packet) / PACKET_S))
            for _ in range(missed):
                self._push(0)
            self.last_packet = now
        floor = self.min_level
        # newest first; levels below the noise floor count as silence
        recent = [(v if v >= floor else 0) // SUBUNIT_N1
                  for v in (self.levels[(self.pos - i) % LEVELS] for i in range(LEVELS))]
        mediums = [sum(1 for v in recent[b * N2:(b + 1) * N2] if v > MEDIUM_THRESHOLD) for b in range(N3)]
        long_ = sum(1 for m in mediums if m > LONG_THRESHOLD)
        self.immediate = _score(recent[0], N1, LAMBDA_IMMEDIATE)
        self.medium = _score(mediums[0], N2, LAMBDA_MEDIUM)
        self.long = _score(long_, N3, LAMBDA_LONG)


class ActiveSpeakerObserver:
    """Feed ``on_level`` per audio packet; call ``tick`` periodically; ``on_dominant_speaker`` fires
    when the dominant speaker changes (with its id)."""

    def __init__(self, decision_interval: float = 0.3) -> None:
        self.decision_interval = decision_interval
        self.dominant: str | None = None
        self.on_dominant_speaker: Callable[[str], None] | None = None
        self._speakers: dict[str, _Speaker] = {}
        self._last_decision = -1e9

    def add(self, speaker_id: str) -> None:
        self._speakers.setdefault(speaker_id, _Speaker())

    def add_producer(self, producer: Producer) -> None:
        """Observe an audio producer's RFC 6464 levels (its id is the speaker id)."""
        self.add(producer.id)
        speaker = self._speakers[producer.id]
        clock = time.monotonic

        def level(dbov: int, voice: bool) -> None:
            speaker.add(dbov, clock())

        producer.on_audio_level = level

    def remove_producer(self, producer: Producer) -> None:
        if producer.on_audio_level is not None:
            producer.on_audio_level = None
        self.remove(producer.id)

    def ranking(self) -> list[str]:
        """Speakers from most to least active right now (dominant first)."""
        order = sorted(self._speakers, key=lambda k: (k != self.dominant, -self._speakers[k].medium,
                                                      -self._speakers[k].immediate, -self._speakers[k].long))
        return order

    def close(self) -> None:
        self._speakers.clear()
        self.dominant = None
        self.on_dominant_speaker = None

    def remove(self, speaker_id: str) -> None:
        self._speakers.pop(speaker_id, None)
        if self.dominant == speaker_id:
            self.dominant = None

    def on_level(self, speaker_id: str, dbov: int, now: float) -> None:
        s = self._speakers.get(speaker_id)
        if s is not None:
            s.add(dbov, now)

    def scores(self) -> dict[str, tuple[float, float, float]]:
        return {k: (s.immediate, s.medium, s.long) for k, s in self._speakers.items()}

    def tick(self, now: float) -> str | None:
        """Decide (at most once per interval); returns the new dominant speaker if it changed."""
        if now - self._last_decision < self.decision_interval or not self._speakers:
            return None
        self._last_decision = now
        for s in self._speakers.values():
            s.evaluate(now)
        new = self._decide()
        if new is None or new == self.dominant:
            return None
        self.dominant = new
        if self.on_dominant_speaker is not None:
            self.on_dominant_speaker(new)
        return new

    def _decide(self) -> str | None:
        current = self._speakers.get(self.dominant) if self.dominant is not None else None
        if current is None:
            # nobody yet: the most active on the long, then medium, then immediate scale, if active at all
            best = max(self._speakers.items(), key=lambda kv: (kv[1].long, kv[1].medium, kv[1].immediate))
            return best[0] if best[1].medium > MIN_SCORE else None
        winner, best_c2 = self.dominant, C2
        for sid, s in self._speakers.items():
            if sid == self.dominant:
                continue
            c1 = math.log(s.immediate / current.immediate)
            c2 = math.log(s.medium / current.medium)
            c3 = math.log(s.long / current.long)
            if c1 > C1 and c2 > best_c2 and c3 > C3:
                winner, best_c2 = sid, c2
        return winner

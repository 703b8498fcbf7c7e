"""Voice activity: whether someone is speaking now, from per-frame evidence, with hysteresis.

:class:`VoiceActivity` is the rule (pure: frames in, state out): voice starts after
:data:`ONSET_S` of frames above the threshold and ends after :data:`HANGOVER_S` below it, so a
phrase's short pauses do not cut it (captions feed the recogniser while ``active``).  The evidence
is RNNoise's voice probability after suppression (the noise suppressor has it for free) or
``webrtcvad``'s decision on raw PCM (:class:`WebRtcVoiceActivity`, for a tap without suppression).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import webrtcvad  # type: ignore[import-untyped]  # no stubs; Vad(mode).is_speech(bytes, rate) -> bool

__all__ = ["HANGOVER_S", "ONSET_S", "THRESHOLD", "VoiceActivity", "WebRtcVoiceActivity"]

THRESHOLD = 0.5  # RNNoise probability above which a frame counts as voice
ONSET_S = 0.04  # voice for this long before it counts (a click is not speech)
HANGOVER_S = 0.3  # quiet for this long before speech ends (pauses between words)


class VoiceActivity:
    def __init__(self, *, threshold: float = THRESHOLD, onset_s: float = ONSET_S,
                 hangover_s: float = HANGOVER_S) -> None:
        self.threshold = threshold
        self.onset_s = onset_s
        self.hangover_s = hangover_s
        self.active = False
        self._voiced_s = 0.0
        self._quiet_s = 0.0

    def update(self, probability: float, duration_s: float) -> bool:
        """One frame's evidence; returns True when :attr:`active` changed."""
        if probability >= self.threshold:
            self._voiced_s += duration_s
            self._quiet_s = 0.0
        else:
            self._quiet_s += duration_s
            if self._quiet_s >= self.hangover_s or not self.active:
                self._voiced_s = 0.0
        was = self.active
        if not was and self._voiced_s >= self.onset_s - 1e-9:
            self.active = True
        elif was and self._quiet_s >= self.hangover_s - 1e-9:
            self.active = False
        return self.active != was


class WebRtcVoiceActivity:
    """``webrtcvad`` (aggressiveness 0-3) on int16 mono PCM at 8/16/32/48 kHz in 20 ms multiples,
    through the :class:`VoiceActivity` rule."""

    def __init__(self, sample_rate: int = 16000, aggressiveness: int = 2) -> None:
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError("webrtcvad takes 8, 16, 32 or 48 kHz")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.sample_rate = sample_rate
        self._frame = sample_rate // 50
        self.rule = VoiceActivity()

    @property
    def active(self) -> bool:
        return self.rule.active

    def update(self, pcm: npt.NDArray[np.int16]) -> bool:
        """Feed 20 ms multiples; returns True when :attr:`active` changed."""
        changed = False
        for i in range(0, len(pcm) - self._frame + 1, self._frame):
            voiced = self._vad.is_speech(pcm[i:i + self._frame].tobytes(), self.sample_rate)
            changed |= self.rule.update(1.0 if voiced else 0.0, 0.02)
        return changed

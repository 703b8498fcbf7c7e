"""Voice activity: the hysteresis rule (onset, hangover, a click is not speech) and webrtcvad on
real synthesised speech (espeak-ng, tests/noise_audio.py) against silence and its pauses."""

from __future__ import annotations

import numpy as np
import pytest

from media.voice_activity import HANGOVER_S, VoiceActivity, WebRtcVoiceActivity
from tests import noise_audio


def test_voice_starts_after_the_onset_and_ends_after_the_hangover() -> None:
    v = VoiceActivity()
    assert not v.update(0.9, 0.02) and not v.active  # 20 ms: not yet
    assert v.update(0.9, 0.02) and v.active  # 40 ms = ONSET_S
    quiet = 0.0
    while quiet < HANGOVER_S - 0.02 - 1e-9:  # a pause between words keeps it active
        assert not v.update(0.1, 0.02)
        quiet += 0.02
    assert v.active
    assert v.update(0.1, 0.02) and not v.active


def test_a_click_is_not_speech_and_a_pause_resets_the_onset() -> None:
    v = VoiceActivity()
    for _ in range(20):
        v.update(0.9, 0.02)
        v.update(0.0, 0.02)
    assert not v.active
    v.update(0.5, 0.02)  # the threshold counts as voice
    v.update(0.5, 0.02)
    assert v.active


def test_webrtcvad_finds_the_sentence_and_not_the_silence() -> None:
    speech = noise_audio.speech(5.0)
    pcm48 = (speech * 32767).astype(np.int16)
    vad = WebRtcVoiceActivity(48000)
    assert not vad.update(np.zeros(48000, dtype=np.int16)) and not vad.active
    states = []
    for i in range(0, len(pcm48) - 959, 960):
        vad.update(pcm48[i:i + 960])
        states.append(vad.active)
    energy = [float(np.mean(speech[i:i + 960] ** 2)) for i in range(0, len(pcm48) - 959, 960)]
    loud = [s for s, e in zip(states, energy, strict=True) if e > max(energy) * 0.01]
    assert sum(loud) / len(loud) > 0.9  # active while the sentence is loud
    vad.update(np.zeros(48000, dtype=np.int16))
    assert not vad.active


def test_webrtcvad_takes_only_its_rates() -> None:
    with pytest.raises(ValueError):
        WebRtcVoiceActivity(44100)

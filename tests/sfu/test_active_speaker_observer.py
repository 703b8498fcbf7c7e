"""Dominant speaker identification on level sequences (RFC 6464 -dBov, one per 20 ms packet)."""

import random

from sfu.active_speaker_observer import ActiveSpeakerObserver

LOUD, QUIET, SILENT = 25, 60, 127  # -dBov


def feed(obs: ActiveSpeakerObserver, levels: dict[str, int], seconds: float, t0: float,
         rnd: random.Random | None = None) -> float:
    t = t0
    for _ in range(int(seconds / 0.02)):
        t += 0.02
        for sid, dbov in levels.items():
            jitter = rnd.randint(-3, 3) if rnd else 0
            obs.on_level(sid, max(0, min(127, dbov + jitter)), t)
        obs.tick(t)
    return t


def test_the_speaker_who_talks_becomes_dominant_not_the_silent_one() -> None:
    obs = ActiveSpeakerObserver()
    changes: list[str] = []
    obs.on_dominant_speaker = changes.append
    for s in ("teacher", "student"):
        obs.add(s)
    feed(obs, {"teacher": LOUD, "student": SILENT}, 3, 0.0, random.Random(1))
    assert obs.dominant == "teacher" and changes == ["teacher"]


def test_a_short_burst_does_not_steal_the_floor_but_sustained_speech_does() -> None:
    obs = ActiveSpeakerObserver()
    for s in ("a", "b"):
        obs.add(s)
    rnd = random.Random(2)
    t = feed(obs, {"a": LOUD, "b": SILENT}, 3, 0.0, rnd)
    assert obs.dominant == "a"
    t = feed(obs, {"a": LOUD, "b": LOUD - 5}, 0.1, t, rnd)  # a cough from b while a talks
    t = feed(obs, {"a": LOUD, "b": SILENT}, 1, t, rnd)
    assert obs.dominant == "a"
    t = feed(obs, {"a": SILENT, "b": LOUD}, 3, t, rnd)  # a stops, b talks
    assert obs.dominant == "b"


def test_louder_of_two_steady_speakers_wins() -> None:
    obs = ActiveSpeakerObserver()
    for s in ("loud", "quiet"):
        obs.add(s)
    feed(obs, {"loud": LOUD, "quiet": QUIET}, 3, 0.0, random.Random(3))
    assert obs.dominant == "loud"


def test_a_speaker_who_stops_sending_decays_to_silence_and_removal_clears_dominance() -> None:
    obs = ActiveSpeakerObserver()
    for s in ("a", "b"):
        obs.add(s)
    t = feed(obs, {"a": LOUD}, 3, 0.0)
    assert obs.dominant == "a"
    t = feed(obs, {"b": LOUD}, 3, t)  # a's packets stop (muted): idle timeout zeroes its levels
    assert obs.dominant == "b"
    obs.remove("b")
    assert obs.dominant is None


def test_constant_background_noise_is_not_speech() -> None:
    obs = ActiveSpeakerObserver()
    obs.add("fan")
    feed(obs, {"fan": 70}, 5, 0.0, random.Random(4))  # a steady hum well below speech
    assert obs.dominant is None

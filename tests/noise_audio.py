"""Test audio for noise suppression: speech, pink noise, babble, mixing at an SNR, SI-SDR.

Speech, two kinds:
- recorded: :func:`recorded_speech`, a man's voice saying the eight speaker names of ALSA's
  speaker test ("Front Left", "Front Center", ...; 48 kHz mono WAVs of Debian's ``alsa-utils``,
  /usr/share/sounds/alsa: the only recorded speech found in the installable packages;
  scripts/system-deps.sh installs it for the tests);
- synthesised: :func:`speech`, espeak-ng (installed), a Russian sentence, as a teacher would say it.
  RNNoise's voice detection takes this buzzy synthetic voice for noise more often than real speech
  (docs/benchmarks.md), so the measures that matter use the recorded one.
Babble: several espeak voices (other sentences, other pitches and speeds) mixed.  Pink noise: white
noise shaped 1/f in the frequency domain.  All at 48 kHz mono, float64 in [-1, 1].  Synthesised
files are cached per process.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 48000
Audio = npt.NDArray[np.float64]
RECORDED_DIR = Path("/usr/share/sounds/alsa")  # Debian's alsa-utils
RECORDED_PHRASES = ("Front_Left", "Front_Center", "Front_Right", "Side_Left", "Side_Right", "Rear_Left",
                    "Rear_Center", "Rear_Right")

SENTENCE = ("Доброе утро, ребята. Сегодня мы повторим дроби и решим три задачи у доски. "
            "Откройте тетради и запишите число.")
BABBLE_SENTENCES = (
    ("en-us", "The weather is nice today, let us go to the park after lunch.", 60, 160),
    ("ru", "Мама купила хлеб, молоко и яблоки в магазине у дома.", 30, 150),
    ("de", "Wir treffen uns morgen um acht Uhr am Bahnhof.", 75, 170),
    ("en-gb", "Could you pass me the salt and the pepper, please?", 45, 140),
    ("ru", "Вчера по телевизору показывали футбол до поздней ночи.", 85, 175),
)


def _espeak(text: str, voice: str, pitch: int, speed: int) -> Audio:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
                       check=True, capture_output=True, timeout=60)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
    # espeak speaks at 22050 Hz: to 48 kHz (band-limited interpolation through the FFT)
    n_out = round(len(raw) * RATE / rate)
    spectrum = np.fft.rfft(raw)
    out = np.fft.irfft(spectrum, n=len(raw)) if n_out == len(raw) else \
        np.fft.irfft(np.concatenate([spectrum, np.zeros(n_out // 2 + 1 - len(spectrum))]), n=n_out) * n_out / len(raw)
    return np.asarray(out, dtype=np.float64)


@cache
def speech(seconds: float = 5.0) -> Audio:
    """The synthesised sentence (espeak-ng, Russian), trimmed or padded to ``seconds``, peak 0.5."""
    s = _espeak(SENTENCE, "ru", 50, 150)
    s = fit(s, seconds)
    return s * (0.5 / max(1e-9, float(np.max(np.abs(s)))))


@cache
def recorded_speech(seconds: float | None = None, gap_s: float = 0.25,
                    phrases: tuple[str, ...] = RECORDED_PHRASES) -> Audio:
    """Recorded speech (see the top): the ``phrases`` (all eight: ~13 s), ``gap_s`` of silence
    after each, trimmed or padded to ``seconds``, peak 0.5.  Raises FileNotFoundError naming the
    package where it is not installed."""
    parts: list[Audio] = []
    for name in phrases:
        path = RECORDED_DIR / f"{name}.wav"
        if not path.exists():
            raise FileNotFoundError(f"{path}: recorded speech comes from Debian's alsa-utils "
                                    "(apt-get install alsa-utils)")
        with wave.open(str(path)) as w:
            if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise ValueError(f"{path}: not 48 kHz mono 16-bit")
            parts.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768)
        parts.append(np.zeros(int(gap_s * RATE)))
    s = np.concatenate(parts)
    if seconds is not None:
        s = fit(s, seconds)
    return s * (0.5 / max(1e-9, float(np.max(np.abs(s)))))


@cache
def recorded_babble(seconds: float = 5.0, exclude: tuple[str, ...] = ("Front_Left", "Front_Right")) -> Audio:
    """Babble of recorded voices: the phrases not in ``exclude`` (those the target speaks), each
    stretched by its own factor (0.8-0.95: lower and slower, other "speakers" of the one recorded
    voice; raising the pitch by plain interpolation aliases, and RNNoise then removed the target
    too), looped from its own offset, summed; peak 1."""
    n = int(seconds * RATE)
    total = np.zeros(n)
    phrases = [p for p in RECORDED_PHRASES if p not in exclude]
    for k, name in enumerate(phrases):
        v = recorded_speech(None, 0.1, (name,))
        factor = 0.8 + 0.15 * k / max(1, len(phrases) - 1)
        v = np.interp(np.arange(0, len(v) - 1, factor), np.arange(len(v)), v)  # resampled: pitch and pace
        v = v / max(1e-9, float(np.sqrt(np.mean(v ** 2))))
        total += np.roll(np.resize(v, n), int(k * 0.37 * RATE))
    return total / max(1e-9, float(np.max(np.abs(total))))


def through_opus(x: Audio, *, bitrate: int = 32000, application: str = "voip") -> Audio:
    """``x`` encoded and decoded by libopus as a publisher would (20 ms frames, media/opus_codec.py),
    aligned back to ``x``: the clean reference as the server receives it.  A VoIP encoder's
    high-pass and phase changes alone bring clean speech's SI-SDR down to ~8 dB (~15 dB in audio
    mode), which no suppressor on the server can undo."""
    from media.opus_codec import OpusDecoder, OpusEncoder  # only here: the rest needs no media

    enc, dec = OpusEncoder(bitrate=bitrate, application=application), OpusDecoder(RATE)
    pcm = (x * 32767).astype(np.int16)
    out = [dec.decode(enc.encode(np.ascontiguousarray(pcm[i:i + 960]))).copy()
           for i in range(0, len(pcm) - 959, 960)]
    return align(np.concatenate(out).astype(np.float64) / 32768, x)


@cache
def babble(seconds: float = 5.0) -> Audio:
    """Five other voices talking at once (espeak-ng), each looped to ``seconds``."""
    total = np.zeros(int(seconds * RATE))
    for voice, text, pitch, speed in BABBLE_SENTENCES:
        v = _espeak(text, voice, pitch, speed)
        v = v / max(1e-9, float(np.sqrt(np.mean(v ** 2))))
        total += np.resize(v, len(total))
    return total / max(1e-9, float(np.max(np.abs(total))))


def pink(seconds: float = 5.0, seed: int = 1) -> Audio:
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    out = np.fft.irfft(spectrum / np.sqrt(f), n=n)
    return np.asarray(out / np.max(np.abs(out)), dtype=np.float64)


def fit(x: Audio, seconds: float) -> Audio:
    n = int(seconds * RATE)
    return x[:n] if len(x) >= n else np.concatenate([x, np.zeros(n - len(x))])


def mix(clean: Audio, noise: Audio, snr_db: float) -> Audio:
    """``clean`` plus ``noise`` scaled to ``snr_db`` (powers over the whole clip), peak kept < 1."""
    noise = np.resize(noise, len(clean))
    p_s, p_n = float(np.mean(clean ** 2)), float(np.mean(noise ** 2))
    out = clean + noise * np.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))
    return np.asarray(out * min(1.0, 0.9 / float(np.max(np.abs(out)))), dtype=np.float64)


def si_sdr(estimate: Audio, reference: Audio) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both zero-mean over the same samples."""
    n = min(len(estimate), len(reference))
    e, r = estimate[:n] - np.mean(estimate[:n]), reference[:n] - np.mean(reference[:n])
    target = (np.dot(e, r) / max(1e-12, float(np.dot(r, r)))) * r
    residual = e - target
    power_t, power_r = float(np.dot(target, target)), float(np.dot(residual, residual))
    return float(10 * np.log10(max(1e-12, power_t) / max(1e-12, power_r)))


def align(received: Audio, reference: Audio, max_lag_s: float = 2.0) -> Audio:
    """``received`` shifted so that it lines up with ``reference`` (the lag of the highest
    cross-correlation, searched over ``max_lag_s``), cut to the reference's length."""
    n = len(reference)
    size = 1 << int(np.ceil(np.log2(len(received) + n)))
    corr = np.fft.irfft(np.fft.rfft(received, size) * np.conj(np.fft.rfft(reference, size)), size)
    max_lag = int(max_lag_s * RATE)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([corr[:max_lag + 1], corr[-max_lag:]])
    lag = int(lags[int(np.argmax(values))])
    shifted = received[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), received])
    return fit(shifted, n / RATE)


def aligned_si_sdr(received: Audio, reference: Audio, *, skip_s: float = 0.5) -> float:
    """SI-SDR of ``received`` against ``reference`` after alignment, leaving out the first
    ``skip_s`` (a suppressor's model and the decoders settle)."""
    a = align(received, reference)
    k = int(skip_s * RATE)
    return si_sdr(a[k:], reference[k:])


def _power_frames(x: Audio, n: int = 960) -> Audio:
    m = len(x) // n
    return np.asarray(np.mean(x[:m * n].reshape(m, n) ** 2, axis=1), dtype=np.float64)


def pause_snr(received: Audio, reference: Audio, *, skip_s: float = 0.5) -> float:
    """SNR as a listener hears it, in dB: the received power in the 20 ms frames where the clean
    reference speaks (within 25 dB of its loudest frame) over the received power where the
    reference is silent (50 dB below it): the noise left in the pauses.  Insensitive to the phase
    changes of a codec (unlike SI-SDR, which Opus alone brings down to ~9-14 dB on clean speech)."""
    k = int(skip_s * RATE)
    a, r = align(received, reference)[k:], reference[k:]
    p_ref, p_got = _power_frames(r), _power_frames(a)
    top = float(np.max(p_ref))
    speech_frames, quiet_frames = p_ref > top * 10 ** -2.5, p_ref < top * 10 ** -5
    if not speech_frames.any() or not quiet_frames.any():
        raise ValueError("the reference needs both speech and pauses")
    noise = max(1e-15, float(np.mean(p_got[quiet_frames])))
    return float(10 * np.log10(float(np.mean(p_got[speech_frames])) / noise))


def spectral_snr(received: Audio, reference: Audio, *, skip_s: float = 0.5, n: int = 960) -> float:
    """SNR of the magnitude spectrogram (20 ms Hann frames), in dB, after alignment and the
    least-squares gain: the speech's spectrum kept against noise left and speech removed, without
    the phase (a codec's phase changes are not heard)."""
    k = int(skip_s * RATE)
    a, r = align(received, reference)[k:], reference[k:]
    m = len(r) // n
    window = np.hanning(n)
    spec_a = np.abs(np.fft.rfft(a[:m * n].reshape(m, n) * window, axis=1))
    spec_r = np.abs(np.fft.rfft(r[:m * n].reshape(m, n) * window, axis=1))
    spec_a *= float(np.sum(spec_a * spec_r)) / max(1e-12, float(np.sum(spec_a * spec_a)))
    error = max(1e-12, float(np.sum((spec_a - spec_r) ** 2)))
    return float(10 * np.log10(float(np.sum(spec_r ** 2)) / error))

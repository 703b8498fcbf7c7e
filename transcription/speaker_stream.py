"""One speaker's microphone cut into phrases for the recognisers: voice activity (WebRTC VAD on
20 ms frames at 16 kHz, through media/voice_activity.py's hysteresis rule), a little audio before
the voice began (so its first sound is heard), a trailing silence after it ended (Vosk needs some
to close its last word), then the phrase ends.

Only voiced phrases reach a recogniser process: silence, DTX and a muted microphone cost a VAD call
per frame (~1.3 us) and nothing else.  Plain Python on the event loop, no sockets: the pool is
anything with ``begin/feed/end`` (:class:`PhraseSink`), so the rules are tested with WAV files.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
import webrtcvad  # type: ignore[import-untyped]

from media.voice_activity import VoiceActivity
from transcription.recognizer_pool import Recognised, ResultSink

SAMPLE_RATE = 16000
FRAME = 320  # samples: 20 ms at 16 kHz
FRAME_S = FRAME / SAMPLE_RATE
CHUNK_FRAMES = 5  # 100 ms per message to a recogniser process
PREROLL_FRAMES = 10  # 200 ms before the onset go with the phrase
ONSET_S = 0.1  # of voiced frames start a phrase (a click or a cough's first frame does not)
HANGOVER_S = 0.4  # without voice end it (and are fed: Vosk's endpoint needs them)
MAX_PHRASE_S = 20.0  # a phrase longer than this is cut (a final every 20 s at worst)
PARTIAL_MIN_S = 0.5  # wall-clock floor between two partials of one speaker (the issue: at most every 500 ms)
VAD_MODE = 2  # 0 (least aggressive) .. 3; 2 ignores fans and keyboards in our recordings
SILENCE_DB = -90.0
MIN_VOICE_DB = -50.0  # dBFS: quieter frames are never voice (the VAD takes a faint hiss for speech)


class PhraseSink(Protocol):
    """Where phrases go (RecognizerPool)."""

    def begin(self, key: str, loudness: float, sink: ResultSink) -> bool: ...

    def feed(self, key: str, pcm: bytes, t0: float, t1: float, loudness: float) -> bool: ...

    def end(self, key: str, t_voice_end: float) -> None: ...


def level_db(samples: npt.NDArray[np.int16]) -> float:
    """RMS level in dBFS."""
    if samples.size == 0:
        return SILENCE_DB
    power = float(np.dot(samples.astype(np.float32), samples.astype(np.float32))) / samples.size
    return 10.0 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else SILENCE_DB


class SpeakerStream:
    """``push(samples, t)``: 16 kHz int16 mono, ``t`` the first sample's time on the lesson's timeline.
    ``on_result`` gets the recognisers' partials (at most one per ``PARTIAL_MIN_S``) and finals."""

    def __init__(self, key: str, pool: PhraseSink, on_result: Callable[[Recognised], None], *,
                 clock: Callable[[], float], vad_mode: int = VAD_MODE) -> None:
        self.key = key
        self._pool = pool
        self._on_result = on_result
        self._clock = clock
        self._vad = webrtcvad.Vad(vad_mode)
        self._numbers = itertools.count(1)
        self._voice = VoiceActivity(onset_s=ONSET_S, hangover_s=HANGOVER_S)
        self._preroll: collections.deque[tuple[npt.NDArray[np.int16], float]] = collections.deque(maxlen=PREROLL_FRAMES)
        self._chunk = np.zeros(CHUNK_FRAMES * FRAME, dtype=np.int16)  # reused: one buffer per speaker
        self._filled = 0
        self._chunk_t0 = 0.0
        self._phrase: str | None = None  # the key of the phrase being spoken
        self._captioned = False  # whether that phrase has a recogniser
        self._phrase_start = 0.0
        self._voice_end = 0.0
        self._next_t: float | None = None
        self._last_partial = -math.inf
        self._pending = np.zeros(0, dtype=np.int16)  # samples short of a whole frame
        self.phrases = 0
        self.uncaptioned = 0  # phrases no recogniser took (all slots held by louder speakers)
        self.closed = False

    # --- input --------------------------------------------------------------------------------
    def push(self, samples: npt.NDArray[np.int16], t: float) -> None:
        if self.closed:
            return
        if self._next_t is not None and t - self._next_t > 2 * FRAME_S and self._phrase is not None:
            # a gap (DTX, packets never sent): silence that was not sent still counts towards the end
            self._voice.update(0.0, t - self._next_t)
            if not self._voice.active:
                self._finish()
        if self._pending.size:
            samples = np.concatenate((self._pending, samples))
            t -= self._pending.size / SAMPLE_RATE
        whole = samples.size - samples.size % FRAME
        self._pending = samples[whole:].copy() if whole < samples.size else self._pending[:0]
        for i in range(0, whole, FRAME):
            self._frame(samples[i:i + FRAME], t + i / SAMPLE_RATE)
        self._next_t = t + whole / SAMPLE_RATE

    def _frame(self, frame: npt.NDArray[np.int16], t: float) -> None:
        voiced = level_db(frame) > MIN_VOICE_DB and self._vad.is_speech(frame.data, SAMPLE_RATE)
        self._voice.update(1.0 if voiced else 0.0, FRAME_S)
        if self._phrase is None:
            self._preroll.append((frame, t))
            if self._voice.active:
                self._start()
            return
        if voiced:
            self._voice_end = t + FRAME_S
        self._append(frame, t)
        if not self._voice.active or t + FRAME_S - self._phrase_start >= MAX_PHRASE_S:
            self._finish()

    # --- phrases ------------------------------------------------------------------------------
    def _start(self) -> None:
        frames = list(self._preroll)
        self._preroll.clear()
        self._phrase = f"{self.key}#{next(self._numbers)}"
        self._phrase_start = frames[0][1]
        self._voice_end = frames[-1][1] + FRAME_S
        self.phrases += 1
        audio = np.concatenate([f for f, _ in frames])
        self._captioned = self._pool.begin(self._phrase, level_db(audio), self._result)
        if not self._captioned:
            self.uncaptioned += 1
        self._filled = 0
        for frame, t in frames:
            self._append(frame, t)

    def _append(self, frame: npt.NDArray[np.int16], t: float) -> None:
        if not self._captioned:
            return
        if self._filled == 0:
            self._chunk_t0 = t
        self._chunk[self._filled * FRAME:(self._filled + 1) * FRAME] = frame
        self._filled += 1
        if self._filled == CHUNK_FRAMES:
            self._flush(t + FRAME_S)

    def _flush(self, t1: float) -> None:
        if self._filled and self._phrase is not None and self._captioned:
            chunk = self._chunk[:self._filled * FRAME]
            if not self._pool.feed(self._phrase, chunk.tobytes(), self._chunk_t0, t1, level_db(chunk)):
                self._captioned = False  # a louder speaker took the slot: the rest of the phrase goes uncaptioned
        self._filled = 0

    def _finish(self) -> None:
        phrase, self._phrase = self._phrase, None
        if phrase is None:
            return
        if self._captioned:
            self._flush(self._chunk_t0 + self._filled * FRAME_S)
            self._pool.end(phrase, self._voice_end)
        self._captioned = False

    def _result(self, rec: Recognised) -> None:
        if not rec.final:
            now = self._clock()
            if now - self._last_partial < PARTIAL_MIN_S or self.closed:
                return
            self._last_partial = now
        else:
            self._last_partial = -math.inf
        self._on_result(rec)

    def close(self) -> None:
        """The track is gone or captions stop: a phrase in progress ends (its final still comes)."""
        self._finish()
        self.closed = True

"""SpeakerStream's phrase rules on synthesised speech, with a recording sink in place of the
recogniser processes (the pool's side is tests/unit/transcription/test_recognition.py)."""

from __future__ import annotations

import itertools

import numpy as np

from tests.speech_audio import speech16k
from transcription.recognizer_pool import Recognised, ResultSink
from transcription.speaker_stream import FRAME, MAX_PHRASE_S, SAMPLE_RATE, SpeakerStream


class Sink:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.begun: list[tuple[str, float]] = []
        self.fed: dict[str, list[tuple[float, float, int]]] = {}
        self.ended: list[tuple[str, float]] = []
        self.sinks: dict[str, ResultSink] = {}

    def begin(self, key: str, loudness: float, sink: ResultSink) -> bool:
        self.begun.append((key, loudness))
        self.sinks[key] = sink
        return self.accept

    def feed(self, key: str, pcm: bytes, t0: float, t1: float, loudness: float) -> bool:
        self.fed.setdefault(key, []).append((t0, t1, len(pcm)))
        return True

    def end(self, key: str, t_voice_end: float) -> None:
        self.ended.append((key, t_voice_end))


def push_all(stream: SpeakerStream, pcm: np.ndarray, t0: float = 0.0, block: int = 960) -> float:
    t = t0
    for i in range(0, len(pcm), block):
        part = pcm[i:i + block]
        stream.push(part, t)
        t += len(part) / SAMPLE_RATE
    return t


def test_one_sentence_is_one_phrase_fed_in_100_ms_chunks_with_a_little_audio_before_it() -> None:
    sink = Sink()
    stream = SpeakerStream("P", sink, lambda r: None, clock=lambda: 0.0)
    pcm = np.concatenate([speech16k(pad_s=1.0), np.zeros(SAMPLE_RATE, dtype=np.int16)])
    push_all(stream, pcm, block=777)  # blocks that are not whole frames
    assert [k for k, _ in sink.begun] == ["P#1"] and [k for k, _ in sink.ended] == ["P#1"]
    chunks = sink.fed["P#1"]
    assert all(n == 5 * FRAME * 2 for _, _, n in chunks[:-1])
    start = chunks[0][0]
    assert 0.6 < start < 1.0  # the voice begins at 1.0 s; up to 200 ms before it go with the phrase
    voice_end = sink.ended[0][1]
    assert abs(voice_end - (len(pcm) / SAMPLE_RATE - 1.0 - 1.0)) < 0.6  # at the end of the speech
    assert all(b[0] >= a[1] - 1e-6 for a, b in itertools.pairwise(chunks))  # in order, no overlap


def test_silence_quiet_hiss_and_a_dtx_gap_make_no_phrase_and_a_gap_ends_one() -> None:
    sink = Sink()
    stream = SpeakerStream("P", sink, lambda r: None, clock=lambda: 0.0)
    t = push_all(stream, np.zeros(2 * SAMPLE_RATE, dtype=np.int16))
    rng = np.random.default_rng(3)
    t = push_all(stream, (rng.standard_normal(SAMPLE_RATE) * 20).astype(np.int16), t)
    assert sink.begun == []
    speech = speech16k(pad_s=0.0)
    t = push_all(stream, speech[: 2 * SAMPLE_RATE], t)  # speaking...
    assert len(sink.begun) == 1 and sink.ended == []
    push_all(stream, speech[:FRAME * 10], t + 5.0)  # ...then 5 s sent as nothing (DTX, a pause): the phrase ended
    assert [k for k, _ in sink.ended] == ["P#1"]


def test_a_long_monologue_is_cut_every_max_phrase_seconds() -> None:
    sink = Sink()
    stream = SpeakerStream("P", sink, lambda r: None, clock=lambda: 0.0)
    speech = speech16k(pad_s=0.0)
    reps = int(MAX_PHRASE_S * 1.6 * SAMPLE_RATE / speech.size) + 1
    push_all(stream, np.tile(speech, reps))  # no pause long enough to end a phrase
    assert len(sink.ended) >= 1 and len(sink.begun) >= 2


def test_no_slot_means_nothing_is_fed_and_it_is_counted() -> None:
    sink = Sink(accept=False)
    stream = SpeakerStream("P", sink, lambda r: None, clock=lambda: 0.0)
    push_all(stream, np.concatenate([speech16k(), np.zeros(SAMPLE_RATE, dtype=np.int16)]))
    assert len(sink.begun) == 1 and sink.fed == {} and sink.ended == [] and stream.uncaptioned == 1


def test_partials_are_throttled_on_the_wall_clock_and_finals_always_pass() -> None:
    sink = Sink()
    now = [0.0]
    got: list[Recognised] = []
    stream = SpeakerStream("P", sink, got.append, clock=lambda: now[0])
    push_all(stream, speech16k(pad_s=0.3)[: SAMPLE_RATE * 2])
    deliver = sink.sinks["P#1"]
    for i, t in enumerate((0.0, 0.1, 0.3, 0.5, 0.6)):
        now[0] = t
        deliver(Recognised("P#1", f"p{i}", False, 0.0, t))
    deliver(Recognised("P#1", "final", True, 0.0, 1.0))
    deliver(Recognised("P#1", "after", False, 0.0, 1.1))  # a partial right after a final passes
    assert [r.text for r in got] == ["p0", "p3", "final", "after"]

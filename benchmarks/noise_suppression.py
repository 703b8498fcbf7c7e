"""Noise suppression benchmark: CPU per suppressed microphone, added latency, and the SNR gain.

    .venv/bin/python -m benchmarks.noise_suppression                    # 1, 4 and 8 microphones, 6 s
    .venv/bin/python -m benchmarks.noise_suppression --streams 1,2 --seconds 4 --threads 2

1. Per frame, in one thread (``time.thread_time``): Opus decode + RNNoise + Opus encode of 20 ms,
   on speech in pink noise.  The native calls release the GIL; this is the cost a core pays.
2. Live: ``--streams`` microphones (direct producers of one router sending 20 ms Opus packets in
   real time: speech in pink noise) each cleaned by a ``NoiseSuppressor`` on ``--workers`` audio
   threads or processes (``--mode``), the output consumed by a direct consumer, with the event
   loop busy in Python for ``--loop-busy`` of every 20 ms (a stand-in for forwarding a large
   lesson: on threads every GIL hand-over then waits).  Printed: the CPU of this process and its
   audio processes (``time.process_time``, /proc) of the run minus that of the same run without suppressors, per
   microphone per second of audio (ms/s), how many microphones one core holds at that rate, and
   the added latency (a packet sent -> its cleaned copy out of the suppressor: p50/p95/max, ms,
   of the frames sent: one made over 120 ms after its packet is not sent, counted;
   to which RNNoise's own delay adds, printed too);
   packets dropped because the threads were behind.
3. The SNR gain, offline through the same codecs (publisher Opus at 32 kbps VoIP -> decode ->
   RNNoise -> Opus 32 kbps -> decode) against the publisher's Opus alone: pause SNR, spectral SNR
   and SI-SDR (tests/noise_audio.py), for pink noise at 0 and 10 dB, babble at 0 dB and clean
   speech (espeak-ng synthesised).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.audio_processes import AudioProcesses, clean_encoder
from media.audio_workers import AudioWorkers
from media.noise_suppressor import NoiseSuppressor
from media.opus_codec import OpusDecoder, OpusEncoder
from media.rnnoise import Denoiser
from sfu import DirectProducer, Worker, parse_header
from tests import noise_audio

FRAME = 960


def packets_of(audio: noise_audio.Audio) -> list[bytes]:
    enc = OpusEncoder()
    pcm = (audio * 32767).astype(np.int16)
    return [enc.encode(np.ascontiguousarray(pcm[i:i + FRAME])) for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def per_frame_cost(payloads: list[bytes]) -> dict[str, float]:
    """Microseconds of one thread's CPU per 20 ms frame for each stage."""
    dec, den, enc = OpusDecoder(48000), Denoiser(), clean_encoder()
    t = {"decode": 0.0, "rnnoise": 0.0, "encode": 0.0}
    for payload in payloads:
        t0 = time.thread_time()
        pcm = dec.decode(payload).copy()
        t1 = time.thread_time()
        clean, _ = den.process(pcm)
        t2 = time.thread_time()
        enc.encode(clean)
        t3 = time.thread_time()
        t["decode"] += t1 - t0
        t["rnnoise"] += t2 - t1
        t["encode"] += t3 - t2
    return {k: v / len(payloads) * 1e6 for k, v in t.items()}


def _children_cpu(pool: AudioProcesses | AudioWorkers) -> float:
    """CPU seconds (user + system) of the pool's live child processes, from /proc."""
    if not isinstance(pool, AudioProcesses):
        return 0.0
    total = 0.0
    for pid in pool.pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def live(streams: int, seconds: float, mode: str, workers_n: int, suppress: bool,
               payloads: list[bytes], busy: float = 0.0) -> tuple[float, list[float], int]:
    """(CPU s of this process and its audio processes, latencies ms, frames not sent) of ``streams``
    microphones for ``seconds``; latency: a packet sent -> it (or its cleaned copy) at a direct
    consumer.  ``busy``: the share of every 20 ms the event loop spends in Python meanwhile (a
    stand-in for forwarding a large lesson)."""
    worker = Worker()
    router = worker.create_router("bench")
    pool: AudioProcesses | AudioWorkers
    if mode == "processes":
        pool = AudioProcesses(workers_n)
        await pool.start()
    else:
        pool = AudioWorkers(workers_n)
    mics: list[DirectProducer] = []
    sent_at: list[dict[int, float]] = []
    latencies: list[float] = []
    sups: list[NoiseSuppressor] = []
    for _ in range(streams):
        mic = router.create_direct_transport().produce("audio", "audio/opus", source="microphone")
        mics.append(mic)
        sent: dict[int, float] = {}
        sent_at.append(sent)
        target = mic
        if suppress:
            sup = NoiseSuppressor(router, mic, pool)
            sups.append(sup)
            target = sup.output

        router.create_direct_transport().consume(target, _order_probe(sent, latencies))
    loop = asyncio.get_running_loop()
    start, cpu0, child0 = loop.time(), time.process_time(), _children_cpu(pool)
    frames = int(seconds * 50)
    for k in range(frames):
        for j, mic in enumerate(mics):
            sent_at[j][k] = time.perf_counter()
            mic.send_opus(payloads[k % len(payloads)])
        until = time.perf_counter() + busy * 0.02
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - loop.time()))
    await asyncio.sleep(0.2)
    cpu = time.process_time() - cpu0 + _children_cpu(pool) - child0
    dropped = sum(s.dropped + s.stale for s in sups)
    for s in sups:
        s.close()
    pool.close()
    await worker.close()
    return cpu, latencies, dropped


def _order_probe(sent: dict[int, float], latencies: list[float]) -> Callable[[bytes], None]:
    """The packet a consumer gets stands for input packet (its timestamp - the first one's) / 960:
    the suppressor keeps the input's timing (a frame it did not send leaves a hole)."""
    first: list[int] = []

    def on_packet(packet: bytes) -> None:
        ts = parse_header(packet).timestamp
        if not first:
            first.append(ts)
        at = sent.pop(((ts - first[0]) & 0xFFFFFFFF) // FRAME, None)
        if at is not None:
            latencies.append((time.perf_counter() - at) * 1000)

    return on_packet


def snr_table(seconds: float) -> list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]:
    speech = noise_audio.speech(seconds)
    rows = []
    cases: list[tuple[str, npt.NDArray[np.float64]]] = [
        ("pink 0 dB", noise_audio.mix(speech, noise_audio.pink(seconds), 0.0)),
        ("pink 10 dB", noise_audio.mix(speech, noise_audio.pink(seconds), 10.0)),
        ("babble 0 dB", noise_audio.mix(speech, noise_audio.babble(seconds), 0.0)),
        ("clean speech", speech),
    ]
    for name, x in cases:
        off, on = chain(x, False), chain(x, True)
        rows.append((name, measures(off, speech), measures(on, speech)))
    return rows


def chain(x: noise_audio.Audio, suppress: bool) -> noise_audio.Audio:
    e1, d1 = OpusEncoder(), OpusDecoder(48000)
    e2, d2, den = clean_encoder(), OpusDecoder(48000), Denoiser()
    pcm = (x * 32767).astype(np.int16)
    out = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        y = d1.decode(e1.encode(np.ascontiguousarray(pcm[i:i + FRAME]))).copy()
        if suppress:
            clean, _ = den.process(y)
            y = d2.decode(e2.encode(clean)).copy()
        out.append(y)
    return np.concatenate(out).astype(np.float64) / 32768


def algorithmic_delay_ms(speech: noise_audio.Audio) -> float:
    """RNNoise's own delay: the lag of its output (clean speech in) against its input."""
    den = Denoiser()
    pcm = (speech * 32767).astype(np.int16)
    out = np.concatenate([den.process(pcm[i:i + FRAME])[0].copy() for i in range(0, len(pcm) - FRAME + 1, FRAME)])
    x, y = pcm[:len(out)].astype(np.float64), out.astype(np.float64)
    lags = range(0, 4 * FRAME)
    return 1000 * max(lags, key=lambda k: float(np.dot(y[k:], x[:len(x) - k]))) / noise_audio.RATE


def measures(got: noise_audio.Audio, ref: noise_audio.Audio) -> tuple[float, float, float]:
    return (noise_audio.pause_snr(got, ref), noise_audio.spectral_snr(got, ref), noise_audio.aligned_si_sdr(got, ref))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,4,8")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=2, help="audio threads or processes")
    ap.add_argument("--mode", choices=["threads", "processes", "both"], default="both")
    ap.add_argument("--loop-busy", default="0,0.5", help="shares of each 20 ms the loop spends in Python")
    args = ap.parse_args()
    speech = noise_audio.speech(5.0)
    payloads = packets_of(noise_audio.mix(speech, noise_audio.pink(5.0), 0.0))

    cost = per_frame_cost(payloads)
    total = sum(cost.values())
    print(f"per 20 ms frame, one thread's CPU: decode {cost['decode']:.0f} us, RNNoise {cost['rnnoise']:.0f} us, "
          f"encode {cost['encode']:.0f} us = {total:.0f} us = {total / 20:.1f} ms per s of audio "
          f"({100 * total / 20000:.1f}% of a core; {20000 / total:.0f} microphones per core)")
    print(f"RNNoise's own delay (output against input): {algorithmic_delay_ms(speech):.0f} ms")
    modes = ["threads", "processes"] if args.mode == "both" else [args.mode]
    for n in (int(s) for s in args.streams.split(",")):
        for mode in modes:
            for busy in (float(b) for b in args.loop_busy.split(",")):
                base, _, _ = await live(n, args.seconds, mode, args.workers, False, payloads, busy)
                cpu, lat, dropped = await live(n, args.seconds, mode, args.workers, True, payloads, busy)
                per = max(0.0, cpu - base) / (n * args.seconds) * 1000
                q = statistics.quantiles(lat, n=20) if len(lat) >= 20 else [float("nan")] * 19
                p50 = statistics.median(lat) if lat else float("nan")
                print(f"live, {n} mic(s), {args.workers} audio {mode}, loop {busy:.0%} busy, {args.seconds:.0f} s: "
                      f"CPU {cpu:.2f} s (without suppression {base:.2f} s) -> {per:.1f} ms CPU per s of audio "
                      f"per mic ({per / 10:.1f}% of a core); added latency p50 {p50:.1f} ms, p95 {q[18]:.1f} ms, "
                      f"max {max(lat, default=float('nan')):.1f} ms; packets dropped + frames late {dropped} "
                      f"(of {n * int(args.seconds * 50)})")
    print("SNR through Opus (publisher 32 kbps VoIP) without -> with suppression: "
          "pause SNR / spectral SNR / SI-SDR, dB")
    for name, off, on in snr_table(5.0):
        cells = (f"{a:6.1f} -> {b:6.1f} ({b - a:+5.1f})" for a, b in zip(off, on, strict=True))
        print(f"  {name:13s} " + "   ".join(cells))


if __name__ == "__main__":
    asyncio.run(main())

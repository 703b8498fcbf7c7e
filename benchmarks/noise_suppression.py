"""Noise suppression benchmark: CPU per suppressed microphone, added latency, and the SNR gain.

    .venv/bin/python -m benchmarks.noise_suppression                    # 1, 4 and 8 microphones, 6 s
    .venv/bin/python -m benchmarks.noise_suppression --streams 1,2 --seconds 4 --threads 2

1. Per frame, in one thread (``time.thread_time``): Opus decode + RNNoise + Opus encode of 20 ms,
   on speech in pink noise, best of three; the same with pyrnnoise's stock library (a child
   process with ``UROK_RNNOISE_ACCEL=0``; media/rnnoise.py).  The native calls release the GIL;
   this is the cost a core pays with warm caches.
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
   RNNoise -> the server's Opus -> decode) against the publisher's Opus alone: pause SNR, spectral
   SNR and SI-SDR (tests/noise_audio.py) against the clean speech, SI-SDR against the clean speech
   through the publisher's Opus (the reference the server can at best give back: a VoIP encoder's
   high-pass and phase changes are no suppressor's to undo), and SI-SDR with no codec (RNNoise
   alone on the mix), for pink noise and babble at 0 and 10 dB and clean speech, recorded
   (alsa-utils' speaker-test voice) and synthesised (espeak-ng).  ``--rnnoise-filter``: with
   librnnoise's own input high-pass, as before media/rnnoise.py left it out (the figures before).
4. ``--stages`` (instead of the above): SI-SDR against the clean original at each stage of the
   WebRTC test's own codec path (aiortc's encoder and decoder, the test's clip): the raw track, the
   server's decode, RNNoise with and without its input high-pass, the re-encode with and without
   RNNoise: where the dB go (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.audio_processes import AudioProcesses, clean_encoder
from media.audio_workers import AudioWorkers
from media.noise_suppressor import NoiseSuppressor
from media.opus_codec import OpusDecoder, OpusEncoder
from media.rnnoise import Denoiser, rnnoise_info, set_fidelity
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


Row = tuple[str, str, tuple[float, ...], tuple[float, ...]]


def snr_table(seconds: float) -> list[Row]:
    """(speech, case, measures without, with suppression) for the recorded and the synthesised
    speech (tests/noise_audio.py); measures: pause SNR, spectral SNR, SI-SDR against the clean
    speech, SI-SDR against the clean speech through the publisher's Opus (what the server can at
    best give back), and SI-SDR with no codec at all (RNNoise alone on the mix)."""
    rows: list[Row] = []
    sources: list[tuple[str, noise_audio.Audio]] = [("espeak", noise_audio.speech(seconds))]
    with contextlib.suppress(FileNotFoundError):
        # the first four phrases; the other four make the recorded babble
        first = noise_audio.RECORDED_PHRASES[:4]
        sources.insert(0, ("recorded", noise_audio.recorded_speech(None, 0.25, first)))
    for kind, speech in sources:
        n_s = len(speech) / noise_audio.RATE
        via_opus = noise_audio.through_opus(speech)
        cases: list[tuple[str, npt.NDArray[np.float64]]] = [
            ("pink 0 dB", noise_audio.mix(speech, noise_audio.pink(n_s), 0.0)),
            ("pink 10 dB", noise_audio.mix(speech, noise_audio.pink(n_s), 10.0)),
            ("babble 0 dB", noise_audio.mix(speech, noise_audio.babble(n_s), 0.0)),
            ("babble 10 dB", noise_audio.mix(speech, noise_audio.babble(n_s), 10.0)),
            ("clean speech", speech),
        ]
        if kind == "recorded":
            babble = noise_audio.recorded_babble(n_s, first)
            cases[4:4] = [("rec. babble 0", noise_audio.mix(speech, babble, 0.0)),
                          ("rec. babble 10", noise_audio.mix(speech, babble, 10.0))]
        for name, x in cases:
            off, on = chain(x, False), chain(x, True)
            raw_off, raw_on = chain(x, False, codecs=False), chain(x, True, codecs=False)
            rows.append((kind, name, measures(off, speech, via_opus, raw_off), measures(on, speech, via_opus, raw_on)))
    return rows


def chain(x: noise_audio.Audio, suppress: bool, *, codecs: bool = True) -> noise_audio.Audio:
    """The path: publisher Opus (32 kbps VoIP) -> decode -> [RNNoise -> the server's Opus -> decode];
    without ``codecs``: RNNoise alone (or nothing)."""
    e1, d1 = OpusEncoder(), OpusDecoder(48000)
    e2, d2, den = clean_encoder(), OpusDecoder(48000), Denoiser()
    pcm = (x * 32767).astype(np.int16)
    out = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        y = np.ascontiguousarray(pcm[i:i + FRAME])
        if codecs:
            y = d1.decode(e1.encode(y)).copy()
        if suppress:
            y, _ = den.process(y)
            y = d2.decode(e2.encode(y)).copy() if codecs else y.copy()
        out.append(y)
    return np.concatenate(out).astype(np.float64) / 32768


def aiortc_chain(x: noise_audio.Audio, stage: str) -> noise_audio.Audio:
    """``x`` through the codecs of the WebRTC test (tests/e2e/test_noise_suppression.py) up to
    ``stage``: ``raw`` (aiortc's encoder, 96 kbps stereo VoIP -> aiortc's decoder: the raw track),
    ``decoded`` (the server's libopus decode), ``rnnoise`` (+ the Denoiser), ``cleaned`` (+ the
    server's encoder -> aiortc's decoder: the cleaned track), ``reencoded`` (the decode straight
    to the server's encoder: no RNNoise)."""
    import fractions

    import av
    from aiortc.codecs.opus import OpusDecoder as AiortcDecoder
    from aiortc.codecs.opus import OpusEncoder as AiortcEncoder
    from aiortc.jitterbuffer import JitterFrame

    rate = noise_audio.RATE
    pub, pcm, packets = AiortcEncoder(), (x * 32767).astype(np.int16), []
    for k, i in enumerate(range(0, len(pcm) - FRAME + 1, FRAME)):
        frame = av.AudioFrame.from_ndarray(pcm[i:i + FRAME].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, k * FRAME, fractions.Fraction(1, rate)
        packets += pub.encode(frame)[0]

    def received(payloads: list[bytes]) -> noise_audio.Audio:
        dec, out = AiortcDecoder(), []
        for k, payload in enumerate(payloads):
            for f in dec.decode(JitterFrame(data=payload, timestamp=k * FRAME)):
                assert isinstance(f, av.AudioFrame)
                out.append(f.to_ndarray().reshape(-1)[::2].astype(np.float64) / 32768)  # stereo: the left
        return np.concatenate(out)

    if stage == "raw":
        return received(packets)
    server = OpusDecoder(48000)
    frames = [server.decode(p).copy() for p in packets]
    if stage in ("rnnoise", "cleaned"):
        den = Denoiser()
        frames = [den.process(f)[0].copy() for f in frames]
    if stage in ("decoded", "rnnoise"):
        return np.concatenate(frames).astype(np.float64) / 32768
    enc = clean_encoder()
    return received([enc.encode(f) for f in frames])


def stages_table() -> list[tuple[str, dict[str, float]]]:
    """SI-SDR against the clean original at each stage of the WebRTC test's path (the test's clip:
    two recorded phrases and a pause; the middle of three loops, turned to line up), RNNoise with
    and without librnnoise's own input high-pass."""
    clean = noise_audio.recorded_speech(4.0, phrases=("Front_Left", "Front_Right")).copy()
    clean[int(3.3 * noise_audio.RATE):] = 0.0
    n = len(clean)
    cases = [("clean speech", clean), ("pink 0 dB", noise_audio.mix(clean, noise_audio.pink(4.0), 0.0)),
             ("pink 10 dB", noise_audio.mix(clean, noise_audio.pink(4.0), 10.0)),
             ("babble 0 dB", noise_audio.mix(clean, noise_audio.babble(4.0), 0.0)),
             ("babble 10 dB", noise_audio.mix(clean, noise_audio.babble(4.0), 10.0))]

    def score(y: noise_audio.Audio) -> float:
        got = y[n:2 * n]
        corr = np.fft.irfft(np.fft.rfft(got) * np.conj(np.fft.rfft(clean)), n)
        return noise_audio.si_sdr(np.roll(got, -int(np.argmax(corr))), clean)

    rows = []
    for name, x in cases:
        looped = np.tile(x, 3)
        row = {stage: score(aiortc_chain(looped, stage)) for stage in ("raw", "decoded", "reencoded")}
        for keep_low in (False, True):
            set_fidelity(keep_low=keep_low)
            tag = "" if keep_low else " (filter)"
            row.update({f"{stage}{tag}": score(aiortc_chain(looped, stage)) for stage in ("rnnoise", "cleaned")})
        rows.append((name, row))
    return rows


def algorithmic_delay_ms(speech: noise_audio.Audio) -> float:
    """RNNoise's own delay: the lag of its output (clean speech in) against its input."""
    den = Denoiser()
    pcm = (speech * 32767).astype(np.int16)
    out = np.concatenate([den.process(pcm[i:i + FRAME])[0].copy() for i in range(0, len(pcm) - FRAME + 1, FRAME)])
    x, y = pcm[:len(out)].astype(np.float64), out.astype(np.float64)
    lags = range(0, 4 * FRAME)
    return 1000 * max(lags, key=lambda k: float(np.dot(y[k:], x[:len(x) - k]))) / noise_audio.RATE


def path_delay_ms(speech: noise_audio.Audio) -> float:
    """What the cleaned path adds to the raw one by its algorithms (RNNoise and the server's Opus
    encode + decode; the processing time comes on top, measured live): the lag of the cleaned
    output against the raw one, clean speech in."""
    raw, cleaned = chain(speech, False), chain(speech, True)
    size = 1 << int(np.ceil(np.log2(2 * len(raw))))
    corr = np.fft.irfft(np.fft.rfft(cleaned, size) * np.conj(np.fft.rfft(raw, size)), size)
    return 1000 * int(np.argmax(corr[:4 * FRAME])) / noise_audio.RATE


def measures(got: noise_audio.Audio, ref: noise_audio.Audio, ref_via_opus: noise_audio.Audio,
             raw: noise_audio.Audio) -> tuple[float, ...]:
    return (noise_audio.pause_snr(got, ref), noise_audio.spectral_snr(got, ref), noise_audio.aligned_si_sdr(got, ref),
            noise_audio.aligned_si_sdr(got, ref_via_opus), noise_audio.aligned_si_sdr(raw, ref))


def frame_costs(runs: int = 3) -> list[dict[str, float]]:
    """:func:`per_frame_cost` ``runs`` times on 5 s of speech in pink noise (the shared machine's
    other work shows as the spread)."""
    speech = noise_audio.speech(5.0)
    payloads = packets_of(noise_audio.mix(speech, noise_audio.pink(5.0), 0.0))
    return [per_frame_cost(payloads) for _ in range(runs)]


_STOCK = ("import json; from benchmarks.noise_suppression import frame_costs; "
          "print(json.dumps(frame_costs()))")


def stock_frame_costs() -> list[dict[str, float]]:
    """:func:`frame_costs` with pyrnnoise's stock library (``UROK_RNNOISE_ACCEL=0``, a child process:
    the accelerator binds process-wide)."""
    env = {**os.environ, "UROK_RNNOISE_ACCEL": "0"}
    out = subprocess.run([sys.executable, "-c", _STOCK], env=env, capture_output=True, text=True, check=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[1])
    costs: list[dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return costs


def print_frame_costs(label: str, costs: list[dict[str, float]]) -> None:
    totals = sorted(sum(c.values()) for c in costs)
    best = min(costs, key=lambda c: sum(c.values()))
    total = totals[0]
    print(f"per 20 ms frame, one thread's CPU ({label}; best of {len(costs)}, all: "
          f"{', '.join(f'{t:.0f}' for t in totals)} us): decode {best['decode']:.0f} us, "
          f"RNNoise {best['rnnoise']:.0f} us, "
          f"encode {best['encode']:.0f} us = {total:.0f} us = {total / 20:.1f} ms per s of audio "
          f"({100 * total / 20000:.1f}% of a core; {20000 / total:.0f} microphones per core)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", default="1,4,8")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=2, help="audio threads or processes")
    ap.add_argument("--mode", choices=["threads", "processes", "both"], default="both")
    ap.add_argument("--loop-busy", default="0,0.5", help="shares of each 20 ms the loop spends in Python")
    ap.add_argument("--no-stock", action="store_true", help="skip the stock library's per-frame cost")
    ap.add_argument("--no-live", action="store_true", help="skip the live runs")
    ap.add_argument("--no-snr", action="store_true", help="skip the SNR table")
    ap.add_argument("--stages", action="store_true",
                    help="only the SI-SDR at each stage of the WebRTC test's codec path (aiortc's codecs)")
    ap.add_argument("--rnnoise-filter", action="store_true",
                    help="librnnoise's own input high-pass on (media/rnnoise.py leaves it out)")
    return ap


async def run(args: argparse.Namespace) -> None:
    if args.rnnoise_filter:
        os.environ["UROK_RNNOISE_KEEP_LOW"] = "0"  # the audio processes too (spawned: they inherit it)
        if not set_fidelity(keep_low=False):
            print("--rnnoise-filter: the accelerator is not loaded (the stock library filters anyway)")
    print(f"RNNoise: {rnnoise_info()}")
    if args.stages:
        print("SI-SDR against the clean original (dB) at each stage of the WebRTC test's path (aiortc 96 kbps "
              "stereo VoIP -> the server's decode -> RNNoise -> the server's encoder -> aiortc's decoder); "
              "(filter): librnnoise's own input high-pass on")
        for name, row in stages_table():
            print(f"  {name:13s} " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()))
        set_fidelity(keep_low=not args.rnnoise_filter)
        return
    print_frame_costs("as the server runs it", frame_costs())
    if not args.no_stock:
        print_frame_costs("pyrnnoise's stock library, UROK_RNNOISE_ACCEL=0", stock_frame_costs())
    speech = noise_audio.speech(5.0)
    print(f"RNNoise's own delay (output against input): {algorithmic_delay_ms(speech):.0f} ms; the cleaned path's "
          f"algorithms (RNNoise + the server's Opus) against the raw path: {path_delay_ms(speech):.1f} ms")
    payloads = packets_of(noise_audio.mix(speech, noise_audio.pink(5.0), 0.0))
    modes = ["threads", "processes"] if args.mode == "both" else [args.mode]
    for n in ([] if args.no_live else [int(s) for s in args.streams.split(",")]):
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
    if args.no_snr:
        return
    print("SNR through Opus (publisher 32 kbps VoIP -> [RNNoise -> Opus]) without -> with suppression, dB: "
          "pause SNR / spectral SNR / SI-SDR against the clean speech / SI-SDR against the clean speech "
          "through the publisher's Opus / SI-SDR with no codec (RNNoise alone)")
    for kind, name, off, on in snr_table(5.0):
        cells = (f"{a:6.1f} -> {b:6.1f} ({b - a:+5.1f})" for a, b in zip(off, on, strict=True))
        print(f"  {kind:8s} {name:13s} " + "   ".join(cells))


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

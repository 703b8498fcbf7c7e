"""Recording benchmark (issue 13): the CPU of track recording, and the composition's speed.

    .venv/bin/python -m benchmarks.recording                       # 20 tracks x 20 s, a 10-minute composition
    .venv/bin/python -m benchmarks.recording --tracks 20 --seconds 30 --compose-minutes 2

1. Track recording.  ``--tracks`` direct producers of one router (half cameras: VP8 640x360 at 30
   fps, ~1 Mbit/s; half microphones: 20 ms Opus; pre-encoded once by benchmarks.media_prep and
   looped) each recorded by the recorder's TrackRecorder (a direct consumer whose callback only
   queues; depacketize and mux into WebM every 0.25 s of media, as the recording's writer thread
   does).  The media is pushed as fast as the process goes, three times with the recorders and
   three times without, alternated (the least CPU of each kept); the difference in process CPU
   (``time.process_time``, every thread) per recorded track per second of media is the recording's
   cost, and the difference per packet sent is what recording adds to the receive path (the
   forwarding).  The whole run falls in a track's first 10 s of wall clock, where the recorder also
   looks at each packet's arrival (the timeline); later in a lesson it no longer does.  Network
   subscribers are not part of this run: the forwarding benchmark (benchmarks/forwarding.py)
   measures those; a direct consumer never joins their compiled fan-out (docs/sfu_features.md).
2. ``--forwarding N``: the forwarding benchmark's point (benchmarks/forwarding.py: a ``urok serve``
   process, one publisher of VP8 + Opus, N subscribers over real peer connections) run twice, the
   second time with the room recorded (started over REST once the host is in): the server's CPU per
   forwarded packet without and with the recording of the publisher's two tracks.
3. Composition.  A lesson of ``--compose-minutes`` with two cameras (640x480, 30 fps), two
   microphones and a screen share (1280x720, 15 fps) over its middle third, built from the test
   clip (tests/clips.py: beeps and flashes), looped by remuxing (no encoding), composed into one
   MP4 (H.264 + AAC, 1280x720, 30 fps) by ``python -m recordings.composer`` in its own process, as
   the server runs it (not niced here).  Printed: the speed as a multiple of real time, the peak
   memory (max RSS of the process), and the A/V offset measured in the output (beep vs flash).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiortc.codecs.vpx import Vp8Encoder

from benchmarks.forwarding import (
    BenchConfig,
    PointResult,
    Rest,
    ServerProcess,
    _run_against,
    admin_token,
    loopback_ice,
)
from benchmarks.media_prep import EncodedMedia, MediaSpec, load_media
from recordings.manifest import TrackEntry
from recordings.track_recorder import TrackRecorder
from sfu import DirectProducer, Worker

ROUNDS = 3
CHUNK_S = 0.25  # the recording's writer runs this often (recordings/room_recorder.py FLUSH_INTERVAL_S)


# ---- 1. track recording ------------------------------------------------------------------------------
def _payloads(media: EncodedMedia) -> list[tuple[list[bytes], bool]]:
    return [(Vp8Encoder._packetize(frame, n & 0x7FFF), key) for n, (frame, key) in enumerate(media.video)]


def _dir_size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir())


async def _push(tracks: int, seconds: float, media: EncodedMedia, record: bool, directory: Path) -> dict[str, float]:
    worker = Worker()
    router = worker.create_router("bench")
    video = _payloads(media)
    fps = media.spec.fps
    producers: list[DirectProducer] = []
    recorders: list[TrackRecorder] = []
    direct = router.create_direct_transport()
    for i in range(tracks):
        kind = "video" if i % 2 == 0 else "audio"
        producer = router.create_direct_transport().produce(kind, "video/VP8" if kind == "video" else "audio/opus",
                                                            source="camera" if kind == "video" else "microphone")
        producers.append(producer)
        if record:
            codec = "vp8" if kind == "video" else "opus"
            entry = TrackEntry(file=f"t{i}.webm", track_id=producer.id, participant_id=f"p{i}", name=f"p{i}",
                               source=producer.source, kind=kind, codec=codec, start=0.0)
            recorders.append(TrackRecorder(direct, producer, directory, entry, started_at=time.time(), clocks={}))
    sent0 = sum(p.packets for p in producers)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    chunks = int(seconds / CHUNK_S)
    video_per_chunk, audio_per_chunk = round(CHUNK_S * fps), round(CHUNK_S / 0.02)
    v = a = 0
    for _ in range(chunks):
        for p in producers:
            if p.kind == "video":
                for k in range(video_per_chunk):
                    p.send_frame(video[(v + k) % len(video)][0], 1 / fps)
            else:
                for k in range(audio_per_chunk):
                    p.send_opus(media.audio[(a + k) % len(media.audio)])
        v += video_per_chunk
        a += audio_per_chunk
        for r in recorders:
            r.write(r.take())
        await asyncio.sleep(0)
    for r in recorders:
        r.stop_consuming()
        r.finish()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    packets = sum(p.packets for p in producers) - sent0
    size = _dir_size(directory) if record else 0
    await worker.close()
    return {"cpu_s": cpu, "wall_s": wall, "packets": float(packets), "bytes": float(size)}


async def track_recording(tracks: int, seconds: float) -> dict[str, float]:
    media = load_media(MediaSpec())
    with tempfile.TemporaryDirectory(prefix="urok-rec-bench-") as tmp:
        await _push(tracks, 2.0, media, True, Path(tmp))  # warm-up (imports, codecs, allocations)
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(ROUNDS):  # alternated, the least of each: the machine's other jobs only ever add
        for record in (False, True):
            with tempfile.TemporaryDirectory(prefix="urok-rec-bench-") as tmp:
                runs[record].append(await _push(tracks, seconds, media, record, Path(tmp)))
    base = min(runs[False], key=lambda r: r["cpu_s"])
    rec = min(runs[True], key=lambda r: r["cpu_s"])
    extra = max(0.0, rec["cpu_s"] - base["cpu_s"])
    return {"tracks": tracks, "media_s": seconds, "cpu_without_s": base["cpu_s"], "cpu_with_s": rec["cpu_s"],
            "ms_per_track_per_media_s": extra / tracks / seconds * 1000,
            "us_per_packet_without": base["cpu_s"] / base["packets"] * 1e6,
            "us_per_packet_with": rec["cpu_s"] / rec["packets"] * 1e6,
            "written_mb": rec["bytes"] / 2**20}


# ---- 2. forwarding with and without recording -----------------------------------------------------------
async def _record_rooms(base: str) -> None:
    """Start recording every room someone is in (the benchmark's room, once its host joined)."""
    async with aiohttp.ClientSession() as http:
        rest = Rest(http, base, admin_token())
        started: set[str] = set()
        while True:
            rooms = await rest.call("GET", "/v1/rooms")
            for room in rooms["rooms"]:
                if room["num_participants"] > 0 and room["room_id"] not in started:
                    with contextlib.suppress(RuntimeError):
                        await rest.call("POST", f"/v1/rooms/{room['room_id']}/recordings/start")
                        started.add(room["room_id"])
            await asyncio.sleep(0.2)


async def forwarding(n: int, record: bool) -> PointResult:
    cfg = BenchConfig()
    media = load_media(cfg.media)
    with loopback_ice():
        server = await ServerProcess.start()
        poller = asyncio.get_running_loop().create_task(_record_rooms(server.base)) if record else None
        try:
            return await _run_against(server, n, cfg, media)
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poller
            server.stop()


# ---- 3. composition ----------------------------------------------------------------------------------
def _loop_remux(src: Path, dst: Path, times: int, period: float) -> None:
    """``src`` repeated ``times`` times into ``dst`` without decoding (every repeat starts with the
    clip's first keyframe; ``period`` s apart)."""
    fmt = "webm" if dst.suffix == ".webm" else "matroska"
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        packets = [p for p in inp.demux() if p.dts is not None and p.size]
        last: dict[int, int] = {}
        for n in range(times):
            for p in packets:
                q = av.Packet(bytes(p))
                tb = p.time_base or Fraction(1, 1000)
                shift = round(n * period / tb)
                assert p.pts is not None and p.dts is not None
                if p.dts + shift <= last.get(p.stream.index, -1):
                    continue  # a packet the next repeat overlaps (the encoder's tail)
                last[p.stream.index] = p.dts + shift
                q.pts, q.dts, q.time_base = p.pts + shift, p.dts + shift, tb
                q.is_keyframe = p.is_keyframe
                q.stream = streams[p.stream.index]
                out.mux(q)


def make_lesson(directory: Path, minutes: float) -> float:
    from tests.clips import lesson, write_recording

    unit = 20.0  # a 20 s clip per track, looped (the marks' period, 2 s, divides it)
    duration = max(unit, round(minutes * 60 / unit) * unit)
    times = int(duration / unit)
    tracks = lesson(unit, screen=(0.0, unit))
    short = directory.with_name(directory.name + "-unit")
    write_recording(short, tracks, duration=unit)
    manifest = json.loads((short / "manifest.json").read_text())
    directory.mkdir(parents=True, exist_ok=True)
    for t in manifest["tracks"]:
        if t["source"] == "screen":  # the middle third
            third = round(duration / 3 / unit) * unit
            _loop_remux(short / t["file"], directory / t["file"], max(1, int(third / unit)), unit)
            t["start"], t["end"] = third, third + max(1, int(third / unit)) * unit
        else:
            _loop_remux(short / t["file"], directory / t["file"], times, unit)
            t["end"] = duration
    manifest["ended_at"] = manifest["started_at"] + duration
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    return duration


def composition(minutes: float, nice: int) -> dict[str, Any]:
    from tests.clips import av_offsets

    with tempfile.TemporaryDirectory(prefix="urok-compose-bench-") as tmp:
        directory = Path(tmp) / "lesson"
        duration = make_lesson(directory, minutes)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "recordings.composer", str(directory),
                               str(directory / "lesson.mp4"), "--nice", str(nice)],
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"the composer failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
        offsets = av_offsets(directory / "lesson.mp4")
        return {"lesson_s": duration, "elapsed_s": elapsed, "speed_x": duration / elapsed,
                "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                "peak_rss_mb": after.ru_maxrss / 1024, "frames": result["frames"],
                "layout_changes": result["layout_changes"],
                "size_mb": (directory / "lesson.mp4").stat().st_size / 2**20,
                "av_offset_ms_max": max((abs(o) for o in offsets), default=float("nan")) * 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.recording", description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0, help="media seconds pushed per run")
    ap.add_argument("--compose-minutes", type=float, default=10.0, help="0: no composition")
    ap.add_argument("--forwarding", type=int, default=0, help="N subscribers: forwarding with/without recording")
    ap.add_argument("--nice", type=int, default=0, help="the composer's nice level (the server uses 10)")
    args = ap.parse_args(argv)
    r = asyncio.run(track_recording(args.tracks, args.seconds))
    print(f"track recording: {args.tracks} tracks x {args.seconds:.0f} s of media "
          f"({args.tracks // 2 + args.tracks % 2} VP8 640x360 30 fps, {args.tracks // 2} Opus 20 ms)")
    print(f"  CPU per recorded track per media second: {r['ms_per_track_per_media_s']:.3f} ms "
          f"(process CPU {r['cpu_with_s']:.2f} s with, {r['cpu_without_s']:.2f} s without)")
    print(f"  receive path per packet: {r['us_per_packet_without']:.2f} us without recording, "
          f"{r['us_per_packet_with']:.2f} us with (writer included); {r['written_mb']:.1f} MB written")
    if args.forwarding > 0:
        plain = asyncio.run(forwarding(args.forwarding, False))
        recorded = asyncio.run(forwarding(args.forwarding, True))
        print(f"forwarding, 1 publisher (VP8 + Opus) -> {args.forwarding} subscribers, "
              "server CPU per forwarded packet:")
        for label, p in (("without recording", plain), ("recording its 2 tracks", recorded)):
            us = "-" if p.server_us_per_pkt is None else f"{p.server_us_per_pkt:.2f}"
            print(f"  {label}: {us} us/pkt, {p.server_cpu_s_per_s:.3f} CPU s/s, loss {p.loss_pct:.2f} %, "
                  f"{p.fwd_pps:.0f} pkt/s forwarded")
    if args.compose_minutes > 0:
        c = composition(args.compose_minutes, args.nice)
        print(f"composition: {c['lesson_s'] / 60:.1f}-minute lesson (2 cameras, 2 microphones, a screen share) "
              f"-> 1280x720 30 fps H.264 + AAC")
        print(f"  {c['elapsed_s']:.1f} s: {c['speed_x']:.2f}x real time; CPU {c['cpu_s']:.1f} s; "
              f"peak RSS {c['peak_rss_mb']:.0f} MB; {c['size_mb']:.1f} MB; "
              f"A/V offset max {c['av_offset_ms_max']:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One watchable MP4 from a recording directory (issue 13): H.264 + AAC, 1280x720 at 30 fps by default.

The screen share large with the speaker beside it while someone shares, otherwise the active speaker
(speakers.jsonl, or from the recorded audio levels) or a grid (the `compose_layout` setting); names
on tiles; every microphone mixed. Each output frame shows, per track, the last picture whose shared
time has come (see composer_media), and the audio is cut on the same sample clock, so sound and
picture keep the recording's sync. Chat and captions (WebVTT) are attached as mov_text subtitle
streams (players such as VLC show them; browsers load the .vtt files beside the video).

Runs in a process of its own (recordings/compose_jobs.py): ``python -m recordings.composer DIR OUT``
prints JSON lines ({"progress": f} ..., then {"result": {...}} or {"error": {"code", "message"}}).
"""

from __future__ import annotations

import argparse
import dataclasses
import fractions
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np

from recordings.board_frames import BoardStage
from recordings.composer_draw import Painter
from recordings.composer_media import (
    SAMPLE_RATE,
    AudioSource,
    ComposeError,
    Manifest,
    TrackEntry,
    VideoSource,
    file_extent,
    levels,
    read_manifest,
)
from recordings.composer_speakers import LEVEL_STEP, SpeakerTimeline
from recordings.layout import LAYOUTS, Person, Tile, arrange

__all__ = ["ComposeError", "ComposeResult", "compose", "main"]

STALE_CAMERA = 2.0  # s without a new camera picture -> the avatar (a camera turned off)
AAC_FRAME = 1024
PRESET = "ultrafast"  # x264: 3x faster than veryfast here (the 4x-real-time goal on 2 cores), larger file
CRF = "23"
ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
              b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
              b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
              b"Alignment, MarginL, MarginR, MarginV, Encoding\n"
              b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
              b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


@dataclass(frozen=True, slots=True)
class ComposeResult:
    out: str
    duration: float  # s
    width: int
    height: int
    fps: int
    frames: int
    video_tracks: int
    audio_tracks: int
    layout_changes: int
    subtitles: list[str] = field(default_factory=list)  # "chat", "captions": attached as mov_text
    elapsed: float = 0.0  # s of wall time

    @property
    def speed(self) -> float:
        """Media seconds per wall second (4.0 = four times faster than real time)."""
        return self.duration / self.elapsed if self.elapsed > 0 else float("inf")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "speed": round(self.speed, 2)}


@dataclass(slots=True)
class _Mixer:
    """Sums the tracks and keeps the sum under full scale: instant attack, ~1 s release."""

    gain: float = 1.0

    def mix(self, parts: Sequence[np.ndarray], n: int) -> np.ndarray:
        if not parts:
            self.gain = min(1.0, self.gain + 0.02)
            return np.zeros(n, dtype=np.float32)
        out = parts[0].copy() if len(parts) > 1 else parts[0]
        for p in parts[1:]:
            out += p
        peak = float(np.max(np.abs(out)))
        want = 1.0 if peak <= 0.98 else 0.98 / peak
        self.gain = want if want < self.gain else min(want, self.gain + 0.02)
        if self.gain < 1.0:
            out *= self.gain
        return out


def _check_settings(width: int, height: int, fps: int, layout: str) -> None:
    if width < 64 or height < 64 or width % 2 or height % 2 or width > 3840 or height > 2160:
        raise ComposeError("bad_settings", f"size {width}x{height}: even, 64x64 to 3840x2160")
    if not 1 <= fps <= 60:
        raise ComposeError("bad_settings", f"fps {fps}: 1 to 60")
    if layout not in LAYOUTS:
        raise ComposeError("bad_settings", f"layout {layout!r}: one of {', '.join(LAYOUTS)}")


def _ends(directory: Path, manifest: Manifest) -> dict[str, float]:
    """Each track's end on the shared timeline (the manifest's, or the file's length after its start)."""
    out = {}
    for t in manifest.tracks:
        path = directory / t.file
        out[t.track_id] = t.end if t.end is not None else t.start + file_extent(path, t.kind)
    return out


def _speakers(directory: Path, manifest: Manifest, ends: dict[str, float]) -> SpeakerTimeline:
    if manifest.speakers and (directory / manifest.speakers).is_file():
        return SpeakerTimeline.from_jsonl(directory / manifest.speakers)
    per: dict[str, np.ndarray] = {}
    for t in manifest.tracks:
        if t.source != "microphone":
            continue
        lv = levels(t, directory / t.file, ends[t.track_id], LEVEL_STEP)
        old = per.get(t.participant_id)
        if old is None:
            per[t.participant_id] = lv
        else:  # segments of one participant: the louder of each window
            n = max(old.size, lv.size)
            per[t.participant_id] = np.maximum(np.pad(old, (0, n - old.size)), np.pad(lv, (0, n - lv.size)))
    return SpeakerTimeline.from_levels(per)


def _subtitle_packets(text: str) -> list[tuple[float, float, bytes]]:
    """(start, end, mov_text payload) per WebVTT cue."""
    out = []
    blocks = text.replace("\r\n", "\n").split("\n\n")
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        for i, ln in enumerate(lines):
            if "-->" in ln:
                a, b = (s.strip().split(" ")[0] for s in ln.split("-->", 1))
                try:
                    start, end = _vtt_time(a), _vtt_time(b)
                except ValueError:
                    break
                body = "\n".join(lines[i + 1:]).encode("utf-8")
                if body and end > start:
                    out.append((start, end, len(body).to_bytes(2, "big") + body))
                break
    return out


def _vtt_time(s: str) -> float:
    parts = s.split(":")
    sec = float(parts[-1])
    mins = int(parts[-2]) if len(parts) >= 2 else 0
    hours = int(parts[-3]) if len(parts) >= 3 else 0
    return hours * 3600 + mins * 60 + sec


def compose(recording_dir: Path, out: Path, *, width: int = 1280, height: int = 720, fps: int = 30,
            layout: str = "auto", progress: Callable[[float], None] | None = None) -> ComposeResult:
    """Compose `recording_dir` into `out` (written as out + ".part", renamed when complete)."""
    began = time.monotonic()
    _check_settings(width, height, fps, layout)
    recording_dir = Path(recording_dir)
    out = Path(out)
    manifest = read_manifest(recording_dir)
    # a track that never got a frame has no file (a muted microphone from join to stop): left out
    manifest = dataclasses.replace(manifest, tracks=tuple(t for t in manifest.tracks
                                                          if (recording_dir / t.file).is_file()))
    if not manifest.tracks:
        raise ComposeError("nothing_to_compose", "the recording has no tracks")
    ends = _ends(recording_dir, manifest)
    duration = manifest.duration if manifest.duration is not None else max(ends.values())
    if duration <= 0:
        raise ComposeError("nothing_to_compose", "the recording is empty")
    if progress is not None:
        progress(0.0)
    speakers = _speakers(recording_dir, manifest, ends)
    videos: list[VideoSource] = []
    audios: list[AudioSource] = []
    tmp = out.with_name(out.name + ".part")
    try:
        for t in manifest.tracks:
            path = recording_dir / t.file
            if t.kind == "video":
                videos.append(VideoSource(t, path, ends[t.track_id]))
            else:
                audios.append(AudioSource(t, path, ends[t.track_id]))
        frames, changes, subs = _render(manifest, recording_dir, tmp, videos, audios, ends, speakers, duration,
                                        width, height, fps, layout, progress)
        os.replace(tmp, out)
    except (av.FFmpegError, OSError) as e:
        raise ComposeError("output_failed", f"writing {out.name}: {e}") from None
    finally:
        for v in videos:
            v.close()
        for a in audios:
            a.close()
        tmp.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0)
    return ComposeResult(out=str(out), duration=round(frames / fps, 3), width=width, height=height, fps=fps,
                         frames=frames, video_tracks=len(videos), audio_tracks=len(audios), layout_changes=changes,
                         subtitles=subs, elapsed=round(time.monotonic() - began, 3))


def _people(entries: Sequence[TrackEntry], ends: dict[str, float], t: float,
            order: dict[str, int]) -> list[Person]:
    seen: dict[str, Person] = {}
    for e in entries:
        if e.source != "screen" and e.start <= t < ends[e.track_id] and e.participant_id not in seen:
            seen[e.participant_id] = Person(e.participant_id, e.name)
    return sorted(seen.values(), key=lambda p: order[p.participant_id])


def _render(manifest: Manifest, directory: Path, tmp: Path, videos: list[VideoSource], audios: list[AudioSource],
            ends: dict[str, float], speakers: SpeakerTimeline, duration: float, width: int, height: int, fps: int,
            layout: str, progress: Callable[[float], None] | None) -> tuple[int, int, list[str]]:
    total = max(1, round(duration * fps))
    total_samples = round(total / fps * SAMPLE_RATE)
    order: dict[str, int] = {}
    for e in sorted(manifest.tracks, key=lambda e: e.start):
        order.setdefault(e.participant_id, len(order))
    cameras = [v for v in videos if v.entry.source != "screen"]
    screens = [v for v in videos if v.entry.source == "screen"]
    painter = Painter(width, height)
    board = BoardStage.open(directory)  # the whiteboard while shown: on the stage, as a screen share
    board_person = Person(BoardStage.KEY, "")
    mixer = _Mixer()
    subs: list[str] = []
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": PRESET, "crf": CRF}
        vs.codec_context.gop_size = fps * 2  # a keyframe every 2 s: the player seeks quickly
        vs.codec_context.time_base = fractions.Fraction(1, fps)
        as_ = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        as_.bit_rate = 96_000
        sub_streams = []
        for kind, name in (("chat", manifest.chat), ("captions", manifest.captions)):
            if name and (directory / name).is_file():
                cues = _subtitle_packets((directory / name).read_text(encoding="utf-8", errors="replace"))
                if cues:
                    st = container.add_stream("mov_text")
                    st.codec_context.subtitle_header = ASS_HEADER  # the encoder needs one to open
                    st.time_base = fractions.Fraction(1, 1000)
                    st.metadata["handler_name"] = kind
                    st.metadata["language"] = "rus"
                    sub_streams.append((st, cues))
                    subs.append(kind)
        audio_at = 0
        tb_audio = fractions.Fraction(1, SAMPLE_RATE)
        last_key: tuple[object, ...] | None = None
        tiles: list[Tile] = []
        changes = 0
        reported = 0.0
        frame = painter.frame
        for n in range(total):
            t = n / fps
            # sound first, up to the end of this picture: the muxer interleaves by time
            until = min(total_samples, round((n + 1) * SAMPLE_RATE / fps))
            while audio_at < until:
                parts = [x for a in audios if (x := a.read(audio_at, AAC_FRAME)) is not None]
                pcm = mixer.mix(parts, AAC_FRAME)
                af = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, audio_at, tb_audio
                container.mux(as_.encode(af))
                audio_at += AAC_FRAME
            for v in videos:
                v.advance(t)
            people = _people(manifest.tracks, ends, t, order)
            shown = [s for s in screens if s.active(t) and s.current is not None]
            screen = max(shown, key=lambda s: s.entry.start) if shown else None
            still = board.at(t) if screen is None else None  # a real screen share wins over the board
            speaker = speakers.at(t)
            if speaker not in order:
                speaker = None
            key = (tuple(people), speaker, screen.entry.track_id if screen is not None
                   else BoardStage.KEY if still is not None else None)
            if key != last_key:
                if last_key is not None:
                    changes += 1
                last_key = key
                staged = (Person(screen.entry.participant_id, screen.entry.name) if screen is not None
                          else board_person if still is not None else None)
                tiles = arrange(layout, width, height, people, speaker, staged)
                painter.forget({v.entry.track_id for v in videos})
            painter.clear()
            for tile in tiles:
                if tile.screen and screen is not None and screen.current is not None:
                    painter.picture(tile, screen.entry.track_id, screen.serial, screen.current)
                elif tile.screen and still is not None:
                    painter.picture(tile, BoardStage.KEY, still[0], still[1])
                    continue  # the board has no name label
                else:
                    cam = _camera(cameras, tile.participant_id, t)
                    if cam is not None and cam.current is not None:
                        painter.picture(tile, cam.entry.track_id, cam.serial, cam.current)
                    else:
                        painter.avatar(tile)
                painter.label(tile)
            frame.pts = n
            frame.time_base = vs.codec_context.time_base
            container.mux(vs.encode(frame))
            if progress is not None and (n + 1) / total - reported >= 0.01:
                reported = (n + 1) / total
                progress(min(0.99, reported))
        container.mux(vs.encode(None))
        while audio_at < total_samples:  # (rounding) the sound to the last picture's end
            af = av.AudioFrame.from_ndarray(np.zeros((1, AAC_FRAME), dtype=np.float32), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, audio_at, tb_audio
            container.mux(as_.encode(af))
            audio_at += AAC_FRAME
        container.mux(as_.encode(None))
        for st, cues in sub_streams:
            for start, end, payload in cues:
                if start >= duration:
                    continue
                p = av.Packet(payload)
                p.stream = st
                p.pts = p.dts = round(start * 1000)
                p.duration = round((min(end, duration) - start) * 1000)
                p.time_base = fractions.Fraction(1, 1000)
                container.mux(p)
    return total, changes, subs


def _camera(cameras: Sequence[VideoSource], participant_id: str, t: float) -> VideoSource | None:
    """The participant's newest camera segment that is on at t and has a recent picture."""
    best = None
    for c in cameras:
        if (c.entry.participant_id == participant_id and c.active(t) and c.current is not None
                and t - c.current_t < STALE_CAMERA and (best is None or c.entry.start > best.entry.start)):
            best = c
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """The job process: compose, report progress and the outcome as JSON lines on stdout."""
    ap = argparse.ArgumentParser(prog="python -m recordings.composer", description=__doc__.split("\n")[0])
    ap.add_argument("recording_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--layout", default="auto")
    ap.add_argument("--nice", type=int, default=0, help="lower this process's priority by this much first")
    args = ap.parse_args(argv)
    if args.nice > 0:
        os.nice(args.nice)

    def say(obj: object) -> None:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    try:
        result = compose(args.recording_dir, args.out, width=args.width, height=args.height, fps=args.fps,
                         layout=args.layout, progress=lambda f: say({"progress": round(f, 4)}))
    except ComposeError as e:
        say({"error": {"code": e.code, "message": e.message}})
        return 1
    say({"result": result.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

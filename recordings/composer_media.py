"""The composer's inputs (issue 13): the recording's manifest and one decoder per track file, each
placing its frames on the recording's shared timeline.

A frame's shared time is the track's manifest ``start`` plus its presentation time minus that of the
file's first frame, so a file may begin at any timestamp; gaps in the timestamps (a paused or muted
producer) stay gaps; frames after a known ``end`` are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

SAMPLE_RATE = 48000
SOURCES = ("microphone", "camera", "screen", "screen_audio")


class ComposeError(Exception):
    """Composition cannot go on: `code` is stable (manifest_missing, manifest_invalid, track_missing,
    track_damaged, nothing_to_compose, bad_settings, output_failed), `message` says what for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class TrackEntry:
    file: str
    track_id: str
    participant_id: str
    name: str
    source: str
    kind: str
    codec: str
    start: float
    end: float | None
    segment: int


@dataclass(frozen=True, slots=True)
class Manifest:
    recording_id: str
    room_name: str
    started_at: float
    ended_at: float | None
    tracks: tuple[TrackEntry, ...]
    speakers: str | None
    chat: str | None
    captions: str | None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) and v else None


def read_manifest(directory: Path) -> Manifest:
    path = directory / "manifest.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComposeError("manifest_missing", f"no manifest.json in {directory}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ComposeError("manifest_invalid", f"manifest.json is not JSON: {e}") from None
    try:
        if raw.get("version") != 1:
            raise ValueError(f"version {raw.get('version')!r}, expected 1")
        tracks = []
        for t in raw["tracks"]:
            if t["kind"] not in ("audio", "video") or t["source"] not in SOURCES:
                raise ValueError(f"track {t.get('track_id')!r}: kind/source {t['kind']!r}/{t['source']!r}")
            name = str(t["file"])
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"track file {name!r} outside the recording directory")
            end = t.get("end")
            tracks.append(TrackEntry(file=name, track_id=str(t["track_id"]), participant_id=str(t["participant_id"]),
                                     name=str(t.get("name") or t["participant_id"]), source=str(t["source"]),
                                     kind=str(t["kind"]), codec=str(t.get("codec", "")), start=float(t["start"]),
                                     end=None if end is None else float(end), segment=int(t.get("segment", 0))))
        ended = raw.get("ended_at")
        return Manifest(recording_id=str(raw.get("recording_id", directory.name)),
                        room_name=str(raw.get("room_name", "")), started_at=float(raw["started_at"]),
                        ended_at=None if ended is None else float(ended), tracks=tuple(tracks),
                        speakers=_opt_str(raw, "speakers"), chat=_opt_str(raw, "chat"),
                        captions=_opt_str(raw, "captions"))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ComposeError("manifest_invalid", f"manifest.json: {e!r}") from None


def _open(path: Path, kind: str) -> tuple[av.container.InputContainer, Any]:
    if not path.is_file():
        raise ComposeError("track_missing", f"track file {path.name} is missing")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as e:
        raise ComposeError("track_damaged", f"track file {path.name} cannot be read: {e}") from None
    streams = container.streams.video if kind == "video" else container.streams.audio
    if not streams:
        container.close()
        raise ComposeError("track_damaged", f"track file {path.name} has no {kind} stream")
    return container, streams[0]


def file_extent(path: Path, kind: str) -> float:
    """Seconds from the first to the end of the last packet of a file (demuxed, not decoded): the
    length of a track whose manifest has no end (a crash the recovery did not reach)."""
    container, stream = _open(path, kind)
    first = last = None
    try:
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            t0 = float(packet.pts * packet.time_base)
            t1 = t0 + float((packet.duration or 0) * packet.time_base)
            first = t0 if first is None else min(first, t0)
            last = t1 if last is None else max(last, t1)
    except av.FFmpegError:
        pass  # a torn tail: what came before counts
    finally:
        container.close()
    return 0.0 if first is None or last is None else last - first


class VideoSource:
    """A track's pictures in shared-time order: `advance(t)` moves to the last frame shown at t."""

    def __init__(self, entry: TrackEntry, path: Path, end: float) -> None:
        self.entry, self.end = entry, end
        self._container, stream = _open(path, "video")
        stream.thread_type = "AUTO"
        self._frames = self._decode(stream)
        self.current: av.VideoFrame | None = None
        self.current_t = float("-inf")
        self.serial = 0  # bumps with each new current frame (the painter's cache key)
        self._origin: float | None = None
        self._next: tuple[float, av.VideoFrame] | None = None
        self._next = self._pull()
        if self._next is None:
            self.close()
            raise ComposeError("track_damaged", f"track file {path.name}: no picture could be decoded")

    def _decode(self, stream: Any) -> Generator[av.VideoFrame, None, None]:
        try:
            yield from self._container.decode(stream)
        except av.FFmpegError:
            return  # a torn tail (a crash): the frames before it are shown

    def _pull(self) -> tuple[float, av.VideoFrame] | None:
        for frame in self._frames:
            if frame.time is None:
                continue
            if self._origin is None:
                self._origin = frame.time
            t = self.entry.start + frame.time - self._origin
            if t >= self.end:
                return None
            return t, frame
        return None

    def advance(self, t: float) -> None:
        while self._next is not None and self._next[0] <= t:
            self.current_t, self.current = self._next
            self.serial += 1
            self._next = self._pull()

    def active(self, t: float) -> bool:
        return self.entry.start <= t < self.end

    def close(self) -> None:
        self._frames.close()
        self._container.close()


class AudioSource:
    """A track's samples (float32 mono 48 kHz) on the shared timeline: `read(s0, n)` gives samples
    [s0, s0 + n) (silence in gaps, before the start and after the end); reads go forward only."""

    def __init__(self, entry: TrackEntry, path: Path, end: float) -> None:
        self.entry = entry
        self._end_sample = round(end * SAMPLE_RATE)
        self._container, stream = _open(path, "audio")
        self._chunks = self._decode(stream)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = round(entry.start * SAMPLE_RATE)
        self._origin: float | None = None
        self._done = False
        first = self._pull()
        if first is None:
            self.close()
            raise ComposeError("track_damaged", f"track file {path.name}: no sound could be decoded")
        self._pending: tuple[int, np.ndarray] | None = first

    def _decode(self, stream: Any) -> Generator[tuple[float, np.ndarray], None, None]:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in self._container.decode(stream):
                if frame.time is None:
                    continue
                t = frame.time
                for r in resampler.resample(frame):
                    x = r.to_ndarray().reshape(-1)
                    yield t, x
                    t += x.size / SAMPLE_RATE
        except av.FFmpegError:
            return

    def _pull(self) -> tuple[int, np.ndarray] | None:
        for t, x in self._chunks:
            if self._origin is None:
                self._origin = t
            return round((self.entry.start + t - self._origin) * SAMPLE_RATE), x
        return None

    def read(self, s0: int, n: int) -> np.ndarray | None:
        """Samples [s0, s0 + n), or None when this track is silent there (nothing to add)."""
        want_end = min(s0 + n, self._end_sample)
        while not self._done and self._buf_start + self._buf.size < want_end:
            chunk = self._pending if self._pending is not None else self._pull()
            self._pending = None
            if chunk is None:
                self._done = True
                break
            pos, x = chunk
            have_end = self._buf_start + self._buf.size
            if pos > have_end:  # a gap: silence
                x = np.concatenate((np.zeros(pos - have_end, dtype=np.float32), x))
            elif pos < have_end:  # overlapping timestamps: keep what came first
                x = x[have_end - pos:]
            self._buf = np.concatenate((self._buf, x)) if self._buf.size else x
        lo, hi = max(s0, self._buf_start), min(want_end, self._buf_start + self._buf.size)
        if hi <= lo:
            self._drop_before(s0 + n)
            return None
        out = np.zeros(n, dtype=np.float32)
        out[lo - s0:hi - s0] = self._buf[lo - self._buf_start:hi - self._buf_start]
        self._drop_before(s0 + n)
        return out

    def _drop_before(self, s: int) -> None:
        if s > self._buf_start:
            cut = min(s - self._buf_start, self._buf.size)
            self._buf = self._buf[cut:]
            self._buf_start += cut
            if not self._buf.size:
                self._buf_start = max(self._buf_start, s)

    def close(self) -> None:
        self._chunks.close()
        self._container.close()


def levels(entry: TrackEntry, path: Path, end: float, step: float) -> np.ndarray:
    """RMS of a track per `step` window of the shared timeline from 0 (for the speaker detector)."""
    src = AudioSource(entry, path, end)
    try:
        n = round(step * SAMPLE_RATE)
        count = int(end / step) + 1
        out = np.zeros(count, dtype=np.float32)
        first = max(0, int(entry.start / step))  # a start before 0: the first frames were captured early
        for i in range(first, count):
            x = src.read(i * n, n)
            if x is not None:
                out[i] = float(np.sqrt(np.mean(x * x)))
        return out
    finally:
        src.close()

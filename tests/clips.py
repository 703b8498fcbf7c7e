"""Test media where a 1 kHz beep and a white full-frame flash happen at the same instants.

Three uses (issue 13):
- files: `make_clip(...)` encodes a clip (VP8 + Opus in WebM, or H.264 + Opus in Matroska) with
  PyAV, deterministic and cached under a cache directory (no network);
- live media: `ClipClock` + `ClipVideoTrack` / `ClipAudioTrack` are aiortc tracks that draw the same
  marks at the same wall-clock instants, and `publish_tracks` / `publish_clip` publish them from an
  `RtcClient`, so a test can record a lesson and then measure its A/V sync;
- measuring: `measure_onsets(path)` finds the beep onsets (1 kHz envelope) and the flash onsets (mean
  luma) in any decoded file, `av_offsets(path)` pairs them (audio minus video, seconds).

`write_recording(...)` builds a recording directory in the format of docs/recording.md (manifest.json
plus one file per track) from such clips: the composer's tests and benchmark use it.

The marks are placed on a shared timeline: a track whose first frame is at shared time `t_from` draws
the marks of shared times `t_from + n / rate`, so tracks that start late still flash with the others.
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

if TYPE_CHECKING:
    from tests.e2e.rtc_client import RtcClient

SAMPLE_RATE = 48000
BEEP_HZ = 1000.0
CACHE_ENV = "UROK_CLIP_CACHE"


def cache_dir() -> Path:
    """Where encoded clips are kept between runs: $UROK_CLIP_CACHE, else <tmp>/urok-clips."""
    d = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "urok-clips")
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---- the marks -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Marks:
    """When the beeps and flashes are: at `first + k * period` (shared seconds), each `length` long.
    `talk` windows add a louder low tone (220 Hz) so a speaker detector sees who talks when."""

    period: float = 2.0
    first: float = 1.0
    length: float = 0.1
    beep_amplitude: float = 0.5
    talk: tuple[tuple[float, float], ...] = ()
    talk_amplitude: float = 0.25

    def on(self, t: np.ndarray) -> np.ndarray:
        """Boolean array: is a mark (beep/flash) on at shared times t."""
        k = np.floor((t - self.first) / self.period)
        since = t - (self.first + k * self.period)
        return (t >= self.first) & (since < self.length)

    def instants(self, t_from: float, t_to: float) -> list[float]:
        out, k = [], 0
        while (x := self.first + k * self.period) < t_to:
            if x >= t_from:
                out.append(x)
            k += 1
        return out


def _audio_samples(marks: Marks, t0: float, n: int, phase_from: int = 0) -> np.ndarray:
    """n float samples in [-1, 1] at 48 kHz for shared times t0 + i / 48000 (beep + talk tone)."""
    i = np.arange(phase_from, phase_from + n, dtype=np.float64)
    t = t0 + (i - phase_from) / SAMPLE_RATE
    out = np.where(marks.on(t), marks.beep_amplitude * np.sin(2 * np.pi * BEEP_HZ * t), 0.0)
    if marks.talk:
        talking = np.zeros(n, dtype=bool)
        for a, b in marks.talk:
            talking |= (t >= a) & (t < b)
        out = out + np.where(talking, marks.talk_amplitude * np.sin(2 * np.pi * 220.0 * t), 0.0)
    return np.clip(out, -1.0, 1.0)


def _video_planes(kind: str, width: int, height: int, t: float, n: int, flash: bool) -> np.ndarray:
    """One yuv420p picture as the (h * 3 / 2, w) array PyAV takes: white when flashing, else a dark
    moving pattern (a camera) or dark 'slides' that change every 5 s with a moving cursor (a screen)."""
    img = np.empty((height * 3 // 2, width), dtype=np.uint8)
    if flash:
        img[:height] = 235
        img[height:] = 128
        return img
    y = img[:height]
    if kind == "screen":
        y[:] = 30
        slide = int(t // 5)
        for row in range(6):
            top = height // 8 + row * height // 10
            w = (width * (3 + (slide * 7 + row * 3) % 5)) // 10
            y[top:top + height // 30, width // 10:width // 10 + w] = 90
        cx = (n * 4) % max(1, width - 16)
        y[height // 2:height // 2 + 16, cx:cx + 16] = 120
    else:
        y[:] = 40
        x = (n * 6) % max(1, width - width // 8)
        y[:, x:x + width // 8] = 90
        y[height // 3:height // 3 + height // 6, :] = (np.arange(width, dtype=np.uint16) + n * 3) % 64 + 30
    img[height:] = 128
    return img


# ---- files ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClipSpec:
    """One encoded file: video ("camera"/"screen", codec vp8|h264), audio (codec opus), or both."""

    kind: str = "both"  # video | audio | both
    source: str = "camera"  # camera | screen (the video pattern)
    video_codec: str = "vp8"  # vp8 | h264
    width: int = 640
    height: int = 480
    fps: int = 30
    t_from: float = 0.0  # shared time of the first frame
    t_to: float = 6.0
    marks: Marks = field(default_factory=Marks)
    video_bitrate: int = 600_000

    @property
    def suffix(self) -> str:
        return ".webm" if self.video_codec == "vp8" or self.kind == "audio" else ".mkv"

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def make_clip(spec: ClipSpec = ClipSpec(), cache: Path | None = None) -> Path:
    """The encoded file for `spec` (encoded once, then taken from the cache)."""
    d = cache or cache_dir()
    path = d / f"clip-{spec.kind}-{spec.source}-{spec.key()}{spec.suffix}"
    if path.exists():
        return path
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    _encode(spec, tmp)
    os.replace(tmp, path)
    return path


def _encode(spec: ClipSpec, path: Path) -> None:
    fmt = "webm" if spec.suffix == ".webm" else "matroska"
    with av.open(str(path), "w", format=fmt) as out:
        vs = as_ = None
        if spec.kind in ("video", "both"):
            if spec.video_codec == "vp8":
                vs = out.add_stream("libvpx", rate=spec.fps)
                vs.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            else:
                vs = out.add_stream("libx264", rate=spec.fps)
                vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
            vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, "yuv420p"
            vs.bit_rate = spec.video_bitrate
            vs.codec_context.gop_size = spec.fps * 2
            vs.codec_context.time_base = fractions.Fraction(1, spec.fps)
        if spec.kind in ("audio", "both"):
            as_ = out.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
            as_.bit_rate = 48_000
        frames: list[tuple[float, int, str]] = []
        n_video = round((spec.t_to - spec.t_from) * spec.fps) if vs is not None else 0
        n_audio = round((spec.t_to - spec.t_from) * 50) if as_ is not None else 0
        frames += [(i / spec.fps, i, "v") for i in range(n_video)]
        frames += [(i / 50, i, "a") for i in range(n_audio)]
        frames.sort()
        for rel, i, what in frames:
            t = spec.t_from + rel
            if what == "v":
                assert vs is not None
                flash = bool(spec.marks.on(np.array([t]))[0])
                vf = av.VideoFrame.from_ndarray(_video_planes(spec.source, spec.width, spec.height, t, i, flash),
                                                format="yuv420p")
                vf.pts, vf.time_base = i, fractions.Fraction(1, spec.fps)
                out.mux(vs.encode(vf))
            else:
                assert as_ is not None
                pcm = (_audio_samples(spec.marks, t, 960) * 32767).astype(np.int16).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, i * 960, fractions.Fraction(1, SAMPLE_RATE)
                out.mux(as_.encode(af))
        for s in (vs, as_):
            if s is not None:
                out.mux(s.encode(None))


# ---- a recording directory -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrackSpec:
    """One track of a recording directory (manifest fields + how to make its file)."""

    participant_id: str
    name: str
    source: str  # microphone | camera | screen
    start: float
    end: float
    segment: int = 0
    video_codec: str = "vp8"
    width: int = 640
    height: int = 480
    fps: int = 30
    talk: tuple[tuple[float, float], ...] = ()
    write_end: bool = True  # False: the manifest's "end" is null (a crash)

    @property
    def kind(self) -> str:
        return "audio" if self.source in ("microphone", "screen_audio") else "video"


def write_recording(directory: Path, tracks: Sequence[TrackSpec], *, duration: float,
                    marks: Marks = Marks(), speakers: Sequence[tuple[float, str]] | None = None,
                    chat: str | None = None, cache: Path | None = None, link: bool = False) -> Path:
    """Write `directory`/manifest.json and one file per track (copies of cached clips; hard links
    with `link=True`, for the benchmark's large files). Returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for n, tr in enumerate(tracks):
        spec = ClipSpec(kind=tr.kind, source="screen" if tr.source == "screen" else "camera",
                        video_codec=tr.video_codec, width=tr.width, height=tr.height, fps=tr.fps,
                        t_from=tr.start, t_to=tr.end, marks=Marks(**{**asdict(marks), "talk": tr.talk}))
        src = make_clip(spec, cache)
        name = f"{tr.participant_id}-{tr.source}-{tr.segment}-{n}{src.suffix}"
        dst = directory / name
        if dst.exists():
            dst.unlink()
        if link:
            os.link(src, dst)
        else:
            shutil.copyfile(src, dst)
        entries.append({"file": name, "track_id": f"t{n}", "participant_id": tr.participant_id, "name": tr.name,
                        "source": tr.source, "kind": tr.kind,
                        "codec": "opus" if tr.kind == "audio" else tr.video_codec,
                        "start": tr.start, "end": tr.end if tr.write_end else None, "segment": tr.segment})
    manifest: dict[str, Any] = {"version": 1, "recording_id": directory.name, "room_id": "room", "room_name": "Урок",
                                "started_at": 1_800_000_000.0, "ended_at": 1_800_000_000.0 + duration,
                                "tracks": entries}
    if speakers is not None:
        (directory / "speakers.jsonl").write_text(
            "".join(json.dumps({"t": t, "participant_id": p}) + "\n" for t, p in speakers))
        manifest["speakers"] = "speakers.jsonl"
    if chat is not None:
        (directory / "chat.vtt").write_text(chat, encoding="utf-8")
        manifest["chat"] = "chat.vtt"
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    return directory


def lesson(duration: float, *, screen: tuple[float, float] | None = None, late: float = 0.0,
           early: float | None = None, width: int = 640, height: int = 480, fps: int = 30,
           screen_size: tuple[int, int] = (1280, 720), screen_fps: int = 15) -> list[TrackSpec]:
    """Two participants (teacher `p1` "Анна Петровна", student `p2` "Ваня") each with a camera and a
    microphone, taking turns to talk every 4 s; the student joins `late` s in and leaves at `early`;
    a screen share of the teacher's over `screen`."""
    end2 = duration if early is None else early
    talk1 = tuple((a, a + 4.0) for a in np.arange(0.0, duration, 8.0).tolist())
    talk2 = tuple((a, a + 4.0) for a in np.arange(4.0, duration, 8.0).tolist())
    out = [TrackSpec("p1", "Анна Петровна", "microphone", 0.0, duration, talk=talk1),
           TrackSpec("p1", "Анна Петровна", "camera", 0.0, duration, width=width, height=height, fps=fps),
           TrackSpec("p2", "Ваня", "microphone", late, end2, talk=talk2),
           TrackSpec("p2", "Ваня", "camera", late, end2, width=width, height=height, fps=fps)]
    if screen is not None:
        out.append(TrackSpec("p1", "Анна Петровна", "screen", screen[0], screen[1], width=screen_size[0],
                             height=screen_size[1], fps=screen_fps))
    return out


# ---- measuring -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Onsets:
    beeps: list[float]
    flashes: list[float]


def _rising(t: np.ndarray, level: np.ndarray, threshold: float, refractory: float) -> list[float]:
    out: list[float] = []
    above = level >= threshold
    idx = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    for i in idx.tolist():
        if not out or t[i] - out[-1] >= refractory:
            out.append(float(t[i]))
    return out


def measure_onsets(path: Path, *, region: tuple[int, int, int, int] | None = None,
                   refractory: float = 0.5) -> Onsets:
    """Beep onsets (1 kHz envelope crossing half its maximum) and flash onsets (mean luma, or the mean
    luma of `region` = (x, y, w, h), crossing halfway between its 5th percentile and its maximum) in
    seconds of the file's own presentation timeline."""
    with av.open(str(path)) as c:
        audio_t: list[np.ndarray] = []
        audio_x: list[np.ndarray] = []
        video_t: list[float] = []
        video_y: list[float] = []
        streams = [s for s in c.streams if s.type in ("audio", "video")]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in c.decode(*streams):
            if isinstance(frame, av.AudioFrame):
                if frame.time is None:
                    continue
                start = frame.time
                for r in resampler.resample(frame):
                    x = r.to_ndarray().reshape(-1).astype(np.float64)
                    audio_t.append(start + np.arange(x.size) / SAMPLE_RATE)
                    audio_x.append(x)
                    start += x.size / SAMPLE_RATE
            elif isinstance(frame, av.VideoFrame) and frame.time is not None:
                y = frame.to_ndarray(format="gray")
                if region is not None:
                    x0, y0, w, h = region
                    y = y[y0:y0 + h, x0:x0 + w]
                video_t.append(frame.time)
                video_y.append(float(y.mean()))
    beeps: list[float] = []
    if audio_x:
        t = np.concatenate(audio_t)
        x = np.concatenate(audio_x)
        demod = x * np.exp(-2j * np.pi * BEEP_HZ * t)
        win = 240  # 5 ms: passes 1 kHz, suppresses the 220 Hz talk tone ~30x
        cs = np.concatenate(([0], np.cumsum(demod)))
        env = np.abs(cs[win:] - cs[:-win]) / win
        te = t[win // 2: win // 2 + env.size]
        if env.size and env.max() > 0.02:
            beeps = _rising(te, env, env.max() / 2, refractory)
    flashes: list[float] = []
    if video_y:
        vt, vy = np.array(video_t), np.array(video_y)
        order = np.argsort(vt)
        vt, vy = vt[order], vy[order]
        lo, hi = float(np.percentile(vy, 5)), float(vy.max())
        if hi - lo > 10:
            flashes = _rising(vt, vy, (lo + hi) / 2, refractory)
    return Onsets(beeps, flashes)


def av_offsets(path: Path, **kw: Any) -> list[float]:
    """For each flash, the nearest beep's onset minus the flash's (seconds; > 0: audio late)."""
    o = measure_onsets(path, **kw)
    if not o.beeps:
        return []
    beeps = np.array(o.beeps)
    return [float(beeps[np.argmin(np.abs(beeps - f))] - f) for f in o.flashes]


# ---- live tracks (aiortc) ------------------------------------------------------------------------------
class ClipClock:
    """The shared wall clock of a live clip: marks at `t0 + first + k * period` (time.time())."""

    def __init__(self, marks: Marks = Marks(), t0: float | None = None) -> None:
        self.marks = marks
        self.t0 = time.time() if t0 is None else t0


class _PacedTrack(MediaStreamTrack):
    """Frames paced from the track's first recv; each frame's content is drawn for the wall-clock
    instant it stands for (not for when the loop got to it), so jitter does not move the marks."""

    def __init__(self, clock: ClipClock, rate: float) -> None:
        super().__init__()
        self.clock, self.rate = clock, rate
        self._start: float | None = None
        self._n = 0

    async def _next(self) -> tuple[int, float]:
        if self._start is None:
            self._start = time.time()
        n = self._n
        self._n += 1
        at = self._start + n / self.rate
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return n, at - self.clock.t0


class ClipVideoTrack(_PacedTrack):
    kind = "video"

    def __init__(self, clock: ClipClock, *, width: int = 320, height: int = 240, fps: int = 30,
                 source: str = "camera") -> None:
        super().__init__(clock, fps)
        self.width, self.height, self.source = width, height, source

    async def recv(self) -> av.VideoFrame:
        n, t = await self._next()
        flash = bool(self.clock.marks.on(np.array([t]))[0])
        frame = av.VideoFrame.from_ndarray(_video_planes(self.source, self.width, self.height, t, n, flash),
                                           format="yuv420p")
        frame.pts, frame.time_base = n * int(90000 / self.rate), fractions.Fraction(1, 90000)
        return frame


class ClipAudioTrack(_PacedTrack):
    kind = "audio"

    def __init__(self, clock: ClipClock) -> None:
        super().__init__(clock, 50)

    async def recv(self) -> av.AudioFrame:
        n, t = await self._next()
        pcm = (_audio_samples(self.clock.marks, t, 960) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, n * 960, fractions.Fraction(1, SAMPLE_RATE)
        return frame


def file_tracks(path: Path) -> list[MediaStreamTrack]:
    """The audio and video tracks of a clip file played by aiortc's MediaPlayer (decoded, re-encoded
    by aiortc as it sends, paced by the file's timestamps)."""
    from aiortc.contrib.media import MediaPlayer

    player = MediaPlayer(str(path))
    return [t for t in (player.audio, player.video) if t is not None]


async def publish_tracks(client: RtcClient, tracks: Sequence[tuple[MediaStreamTrack, str]]) -> dict[str, Any]:
    """Publish the given tracks (track, source) from `client` (its publisher connection), as
    RtcClient.publish does with its own tracks."""
    client.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceivers = [(client.pub.addTransceiver(t, direction="sendonly"), s) for t, s in tracks]
    await client.pub.setLocalDescription(await client.pub.createOffer())
    sources: dict[str, str] = {}
    for tr, source in transceivers:
        assert tr.mid is not None
        sources[tr.mid] = source
    r = await client.ws.request("publish", timeout=15, sdp=client.pub.localDescription.sdp, sources=sources)
    assert r["ok"], r
    await client.pub.setRemoteDescription(RTCSessionDescription(r["sdp"], "answer"))
    return r


async def publish_clip(client: RtcClient, clock: ClipClock, *, camera: bool = True, microphone: bool = True,
                       screen: bool = False) -> dict[str, Any]:
    """Publish the live clip (beep + flash on `clock`) as microphone / camera / screen."""
    tracks: list[tuple[MediaStreamTrack, str]] = []
    if microphone:
        tracks.append((ClipAudioTrack(clock), "microphone"))
    if camera:
        tracks.append((ClipVideoTrack(clock), "camera"))
    if screen:
        tracks.append((ClipVideoTrack(clock, width=640, height=360, source="screen"), "screen"))
    return await publish_tracks(client, tracks)


def frames_of(path: Path) -> Iterator[av.VideoFrame]:
    """Every decoded video frame of a file (for tests that look at pictures)."""
    with av.open(str(path)) as c:
        yield from c.decode(video=0)


if __name__ == "__main__":  # python -m tests.clips: encode the default clip, print its measured marks
    p = make_clip()
    print(p, measure_onsets(p), av_offsets(p))

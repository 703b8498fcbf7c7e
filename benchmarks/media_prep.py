"""Test media for the forwarding benchmark, encoded once and cached.

A synthetic pattern (moving gradient, a bouncing box and a noisy band, so the encoder really spends
its bit budget) is encoded to VP8 (libvpx, constant bit rate) and a 440 Hz tone to Opus in 20 ms
packets.  The encoded packets are cached under ``benchmarks/.cache/`` in a small length-prefixed
file (no pickle), keyed by the encoding parameters, and reused by every later run: the publisher
only packetizes and encrypts, so it costs little next to the server under test.

    python -m benchmarks.media_prep            # prints what it encoded (or found in the cache)
"""

from __future__ import annotations

import argparse
import array
import fractions
import json
import math
import os
import random
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
MAGIC = b"UROKMEDIA1\n"
_LEN = struct.Struct("!IB")  # payload length, flags (bit 0: keyframe)


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """What to encode.  The defaults are the benchmark's load: VP8 640x360 30 fps ~1 Mbit/s (a
    keyframe every 2 s) and Opus 20 ms, 10 s long (looped by the publisher)."""

    width: int = 640
    height: int = 360
    fps: int = 30
    seconds: float = 10.0
    video_bitrate: int = 1_000_000
    gop: int = 60
    audio_bitrate: int = 32_000
    ptime_ms: int = 20

    def cache_path(self, cache_dir: Path = CACHE_DIR) -> Path:
        return cache_dir / (
            f"media-vp8-{self.width}x{self.height}-{self.fps}fps-{self.video_bitrate // 1000}k-gop{self.gop}"
            f"-opus{self.ptime_ms}ms-{self.audio_bitrate // 1000}k-{self.seconds:g}s.bin"
        )


@dataclass(frozen=True, slots=True)
class EncodedMedia:
    spec: MediaSpec
    video: list[tuple[bytes, bool]]  # (VP8 frame, is keyframe), one per video frame
    audio: list[bytes]  # Opus packets of ptime_ms each

    @property
    def video_kbps(self) -> float:
        return sum(len(b) for b, _ in self.video) * 8 / self.spec.seconds / 1000

    @property
    def audio_kbps(self) -> float:
        return sum(len(b) for b in self.audio) * 8 / self.spec.seconds / 1000

    def describe(self) -> str:
        keys = sum(1 for _, k in self.video if k)
        return (f"VP8 {self.spec.width}x{self.spec.height} {self.spec.fps} fps: {len(self.video)} frames "
                f"({keys} key), {self.video_kbps:.0f} kbit/s; Opus {self.spec.ptime_ms} ms: {len(self.audio)} packets, "
                f"{self.audio_kbps:.0f} kbit/s")


# ---- pattern -------------------------------------------------------------------------------------------
def _plane_bytes(rows: list[bytes], line_size: int) -> bytes:
    width = len(rows[0])
    if line_size == width:
        return b"".join(rows)
    pad = bytes(line_size - width)
    return b"".join(r + pad for r in rows)


class _Pattern:
    """Frames of the test pattern built from byte slices (no numpy needed)."""

    BOX = 120

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.w, self.h, self.fps = width, height, fps
        self._ramp = bytes(range(256)) * ((width + height) // 256 + 8)
        rnd = random.Random(1234)
        to_band = bytes(96 + (b % 64) for b in range(256))
        self.band_h = max(1, height // 12)
        self._bands = [rnd.randbytes(width * self.band_h).translate(to_band) for _ in range(7)]

    def luma(self, i: int) -> list[bytes]:
        w, h, box = self.w, self.h, min(self.BOX, self.w // 2, self.h // 2)
        shift = (i * 4) % 256
        rows = [self._ramp[(y + shift) % 256:(y + shift) % 256 + w] for y in range(h)]
        t = i / self.fps
        bx = int((w - box) * (0.5 + 0.5 * math.sin(t * 1.3)))
        by = int((h - box) * (0.5 + 0.5 * math.cos(t * 0.9)))
        white = b"\xeb" * box
        for y in range(by, by + box):
            r = rows[y]
            rows[y] = r[:bx] + white + r[bx + box:]
        band = self._bands[i % len(self._bands)]
        top = h // 2
        for k in range(self.band_h):
            rows[top + k] = band[k * w:(k + 1) * w]
        return rows

    def frame(self, i: int) -> Any:
        frame = av.VideoFrame(self.w, self.h, "yuv420p")
        frame.planes[0].update(_plane_bytes(self.luma(i), frame.planes[0].line_size))
        t = i / self.fps
        cw, ch = self.w // 2, self.h // 2
        for plane, value in ((frame.planes[1], 128 + 60 * math.sin(t)), (frame.planes[2], 128 + 60 * math.cos(t))):
            plane.update(_plane_bytes([bytes([int(value) % 256]) * cw] * ch, plane.line_size))
        return frame


def encode_video(spec: MediaSpec) -> list[tuple[bytes, bool]]:
    codec: Any = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = spec.width, spec.height, "yuv420p"
    codec.time_base = fractions.Fraction(1, spec.fps)
    codec.framerate = fractions.Fraction(spec.fps, 1)
    codec.bit_rate = spec.video_bitrate
    codec.gop_size = spec.gop
    codec.qmin, codec.qmax = 2, 63
    rate = str(spec.video_bitrate)
    codec.options = {
        "bufsize": rate, "minrate": rate, "maxrate": rate, "cpu-used": "4", "deadline": "realtime",
        "lag-in-frames": "0", "undershoot-pct": "100", "overshoot-pct": "15", "static-thresh": "1",
    }
    pattern = _Pattern(spec.width, spec.height, spec.fps)
    out: list[tuple[bytes, bool]] = []
    for i in range(round(spec.seconds * spec.fps)):
        frame = pattern.frame(i)
        frame.pts, frame.time_base = i, codec.time_base
        out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    if not out or not out[0][1]:
        raise RuntimeError("the VP8 stream does not start with a keyframe")
    return out


def encode_audio(spec: MediaSpec) -> list[bytes]:
    rate, samples = 48_000, 48 * spec.ptime_ms
    codec: Any = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = rate, "stereo", "s16"
    codec.bit_rate = spec.audio_bitrate
    codec.time_base = fractions.Fraction(1, rate)
    out: list[bytes] = []
    n = round(spec.seconds * 1000 / spec.ptime_ms)
    for i in range(n):
        pcm = array.array("h")
        for s in range(samples):
            v = int(0.2 * 32767 * math.sin(2 * math.pi * 440 * (i * samples + s) / rate))
            pcm.extend((v, v))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = rate, i * samples, fractions.Fraction(1, rate)
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


# ---- cache -------------------------------------------------------------------------------------------
def _write(path: Path, media: EncodedMedia) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    header = {"spec": asdict(media.spec), "video": len(media.video), "audio": len(media.audio)}
    with tmp.open("wb") as f:
        f.write(MAGIC + json.dumps(header).encode() + b"\n")
        for data, key in media.video:
            f.write(_LEN.pack(len(data), 1 if key else 0) + data)
        for data in media.audio:
            f.write(_LEN.pack(len(data), 0) + data)
    tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none


def _read(path: Path, spec: MediaSpec) -> EncodedMedia | None:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    if not blob.startswith(MAGIC):
        return None
    end = blob.index(b"\n", len(MAGIC))
    header = json.loads(blob[len(MAGIC):end])
    if header.get("spec") != asdict(spec):
        return None
    pos = end + 1
    packets: list[tuple[bytes, bool]] = []
    for _ in range(int(header["video"]) + int(header["audio"])):
        size, flags = _LEN.unpack_from(blob, pos)
        pos += _LEN.size
        packets.append((blob[pos:pos + size], bool(flags & 1)))
        pos += size
    nv = int(header["video"])
    return EncodedMedia(spec, packets[:nv], [d for d, _ in packets[nv:]])


def load_media(spec: MediaSpec | None = None, cache_dir: Path = CACHE_DIR) -> EncodedMedia:
    """The encoded media for ``spec``: from the cache, or encoded now (and cached)."""
    spec = spec or MediaSpec()
    path = spec.cache_path(cache_dir)
    media = _read(path, spec)
    if media is None:
        media = EncodedMedia(spec, encode_video(spec), encode_audio(spec))
        _write(path, media)
    return media


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="encode (or find in the cache) the benchmark's test media")
    default = MediaSpec()
    ap.add_argument("--seconds", type=float, default=default.seconds)
    ap.add_argument("--bitrate", type=int, default=default.video_bitrate, help="VP8 bit rate (bit/s)")
    args = ap.parse_args(argv)
    spec = MediaSpec(seconds=args.seconds, video_bitrate=args.bitrate)
    t0 = time.monotonic()
    media = load_media(spec)
    print(f"{media.describe()} in {time.monotonic() - t0:.1f} s -> {spec.cache_path()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One track's frames into one file with PyAV, no transcoding: VP8/VP9/Opus into WebM, H.264 into
Matroska; and the repair of a file whose writer was killed.

Crash safety: the Matroska muxer closes a cluster at most every ``CLUSTER_MS`` and, with
``flush_packets``, hands every block to the kernel at once, so a ``kill -9`` of the server loses
nothing that was written (the page cache keeps it); what such a file lacks is its duration and cues
(written at the end), which ``repair`` restores by remuxing.
"""

from __future__ import annotations

import contextlib
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

CLUSTER_MS = 1000  # a kill -9 loses at most the cluster being written: <= 1 s (issue 13: ~2 s)
MS = Fraction(1, 1000)
EXTENSIONS = {"opus": "webm", "vp8": "webm", "vp9": "webm", "h264": "mkv"}
FORMATS = {"webm": "webm", "mkv": "matroska"}
CODEC_NAMES = {"opus": "libopus", "vp8": "libvpx", "vp9": "libvpx-vp9", "h264": "h264"}
DECODERS = {"vp8": "vp8", "vp9": "vp9", "h264": "h264"}


class TrackWriteError(Exception):
    """The file could not be written (disk full, I/O error); ``errno`` when the system said why."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def codec_of(mime: str) -> str:
    """"video/VP8" -> "vp8"."""
    return mime.split("/")[-1].lower()


def opus_head(channels: int = 2, sample_rate: int = 48000) -> bytes:
    """The OpusHead (RFC 7845) the WebM track needs as its codec private data."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, sample_rate, 0, 0)


def _dimensions(codec: str, keyframe: bytes) -> tuple[int, int]:
    """A video track's size from its first keyframe (the muxer writes it into the track header);
    decoding one frame once per file is cheaper than parsing three bitstream headers."""
    ctx: Any = av.CodecContext.create(DECODERS[codec], "r")
    try:
        for frame in ctx.decode(av.Packet(keyframe)):
            return int(frame.width), int(frame.height)
        for frame in ctx.decode(None):
            return int(frame.width), int(frame.height)
    except av.FFmpegError:
        pass
    return 640, 480  # players take the size from the bitstream anyway


def _h264_extradata(keyframe: bytes) -> bytes:
    """SPS and PPS of an Annex B keyframe, still in Annex B (the muxer converts it to avcC)."""
    out = bytearray()
    for nal in keyframe.split(b"\x00\x00\x00\x01"):
        if nal and (nal[0] & 0x1F) in (7, 8):
            out += b"\x00\x00\x00\x01" + nal
    return bytes(out)


class TrackWriter:
    """Opened at the first frame (a video file needs its size); ``write`` takes frames with their
    time in milliseconds from the file's start; ``close`` writes duration and cues.  Raises
    ``TrackWriteError`` on any write failure (the recording then stops)."""

    def __init__(self, path: Path, codec: str) -> None:
        if codec not in EXTENSIONS:
            raise ValueError(f"no recording for codec {codec!r}")
        self.path = path
        self.codec = codec
        self.frames = 0
        self.last_ms = 0
        self._container: Any = None
        self._stream: Any = None
        self._closed = False

    @property
    def opened(self) -> bool:
        return self._container is not None

    def _open(self, first: bytes) -> None:
        fmt = FORMATS[EXTENSIONS[self.codec]]
        opts = {"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"}
        try:
            container: Any = av.open(str(self.path), "w", format=fmt, options=opts)
            if self.codec == "opus":
                stream: Any = container.add_stream(CODEC_NAMES["opus"], rate=48000)
                stream.codec_context.extradata = opus_head()
            else:
                stream = container.add_stream(CODEC_NAMES[self.codec])
                stream.width, stream.height = _dimensions(self.codec, first)
                stream.pix_fmt = "yuv420p"
                if self.codec == "h264":
                    stream.codec_context.extradata = _h264_extradata(first)
            stream.time_base = MS
        except (OSError, av.FFmpegError) as e:
            raise TrackWriteError(f"cannot open {self.path.name}: {e}", getattr(e, "errno", None)) from e
        self._container, self._stream = container, stream

    def write(self, data: bytes, ms: int, keyframe: bool) -> None:
        if self._closed:
            return
        if self._container is None:
            self._open(data)
        if ms < self.last_ms:
            ms = self.last_ms  # never backwards (a reordered frame): the muxer refuses it
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = ms
        packet.time_base = MS
        packet.is_keyframe = keyframe
        try:
            self._container.mux(packet)
        except (OSError, av.FFmpegError) as e:
            raise TrackWriteError(f"cannot write {self.path.name}: {e}", getattr(e, "errno", None)) from e
        self.frames += 1
        self.last_ms = ms

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._container.close()
        except (OSError, av.FFmpegError) as e:
            raise TrackWriteError(f"cannot finish {self.path.name}: {e}", getattr(e, "errno", None)) from e


def probe(path: Path) -> tuple[str, float]:
    """(codec name, duration in seconds) of a track file as a player sees it."""
    with av.open(str(path)) as c:
        stream = c.streams[0]
        duration = float(c.duration / 1_000_000) if c.duration else 0.0
        return str(stream.codec_context.name), duration


def repair(path: Path) -> float:
    """Remux a file whose writer died (no duration, no cues) into a whole one, in place; returns its
    duration in seconds.  A file with no usable frame is removed (returns 0)."""
    tmp = path.with_name(path.name + ".repair")
    last = 0.0
    written = 0
    try:
        with av.open(str(path)) as src:
            if not src.streams:
                raise TrackWriteError(f"{path.name}: no stream")
            in_stream: Any = src.streams[0]
            fmt = FORMATS.get(path.suffix.lstrip("."), "matroska")
            with av.open(str(tmp), "w", format=fmt) as dst:
                out_stream: Any = dst.add_stream_from_template(in_stream)
                packets = src.demux(in_stream)
                while True:
                    try:
                        packet = next(packets)
                    except (StopIteration, av.FFmpegError):  # the end, or where the kill cut the file
                        break
                    if packet.dts is None or packet.size == 0:
                        continue
                    packet.stream = out_stream
                    dst.mux(packet)
                    written += 1
                    if packet.pts is not None and packet.time_base is not None:
                        last = max(last, float(packet.pts * packet.time_base))
    except (OSError, av.FFmpegError) as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if written == 0:
            raise TrackWriteError(f"{path.name}: cannot be read ({e})") from e
    if written == 0:
        with contextlib.suppress(OSError):
            tmp.unlink()
            path.unlink()
        return 0.0
    os.replace(tmp, path)
    return last

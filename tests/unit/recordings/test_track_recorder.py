"""One track into one file through the media core's feature API (a direct producer fed with a real
encoder's packets, recorded by a TrackRecorder on a direct consumer): VP8 into WebM and H.264 into
Matroska without transcoding, the file starting on a keyframe, probed with PyAV."""

from __future__ import annotations

import fractions
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from recordings.manifest import TrackEntry
from recordings.track_recorder import TrackRecorder
from recordings.track_writer import probe
from sfu import Worker

pytestmark = pytest.mark.timeout(60)
FPS = 30


def frames(n: int, width: int = 320, height: int = 240) -> list[av.VideoFrame]:
    out = []
    for i in range(n):
        img = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
        img[:height, (i * 5) % (width - 20):(i * 5) % (width - 20) + 20] = 235
        f = av.VideoFrame.from_ndarray(img, format="yuv420p")
        f.pts, f.time_base = i * 3000, fractions.Fraction(1, 90000)
        out.append(f)
    return out


@pytest.mark.parametrize(("mime", "encoder", "codec", "suffix"), [
    ("video/VP8", Vp8Encoder, "vp8", ".webm"),
    ("video/H264", H264Encoder, "h264", ".mkv"),
])
async def test_a_video_track_is_written_as_it_arrives(tmp_path: Path, mime: str, encoder: Any, codec: str,
                                                      suffix: str) -> None:
    worker = Worker()
    router = worker.create_router("rec")
    camera = router.create_direct_transport().produce("video", mime, source="camera")
    entry = TrackEntry(file=f"p1-camera-0{suffix}", track_id=camera.id, participant_id="p1", name="Анна",
                       source="camera", kind="video", codec=codec, start=0.0)
    recorder = TrackRecorder(router.create_direct_transport(), camera, tmp_path, entry, started_at=time.time(),
                             clocks={})
    enc = encoder()
    pictures = frames(60)
    for i, frame in enumerate(pictures):
        payloads, _ = enc.encode(frame, force_keyframe=i == 0)
        camera.send_frame(payloads, 1 / FPS)
        if i % 8 == 7:
            recorder.write(recorder.take())
    recorder.write(recorder.take())
    recorder.stop_consuming()
    recorder.finish()
    name, duration = probe(tmp_path / entry.file)
    assert name == codec
    assert abs(duration - 2.0) < 0.15, duration
    with av.open(str(tmp_path / entry.file)) as c:
        first = next(p for p in c.demux(c.streams[0]) if p.size)
        assert first.is_keyframe  # a file starts on a keyframe
    with av.open(str(tmp_path / entry.file)) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert decoded >= 55, decoded  # every frame is there, decodable, as the encoder made it
    assert entry.end is not None and entry.end > entry.start
    await worker.close()

"""Transcribing an uploaded voice or video message: an async job on the same recogniser processes as
the live captions (for the companions that come later: a voice message in the chat, a video
answer to homework).

``submit(data)`` decodes the upload (any container/codec PyAV reads: Ogg/Opus, WebM, MP4, WAV,
MP3...) to 16 kHz mono in a thread, then the least busy recogniser process transcribes it while
live captions go on.  Jobs live in memory for ``KEEP_S`` after they finish (the result is fetched
soon after; a restart forgets them, and the client submits again).  Bounded: ``MAX_BYTES`` per
upload, ``MAX_SECONDS`` of audio, ``MAX_PENDING`` jobs not finished.  A file takes one recogniser
process for about a quarter of its length (the live phrases on that process wait meanwhile, and
lose audio past 10 s of waiting): hence the short limit on length."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from transcription.errors import InvalidMedia, MediaTooLong, TooManyJobs, TranscriptionJobNotFound
from transcription.service import TranscriptionService

log = logging.getLogger("urok.transcription")

MAX_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 120.0
MAX_PENDING = 4
KEEP_S = 3600.0
RATE = 16000


@dataclass(slots=True)
class FileJob:
    job_id: str
    created_at: float
    size_bytes: int
    state: str = "queued"  # queued | running | done | failed
    duration_s: float = 0.0
    segments: list[tuple[float, float, str]] = field(default_factory=list)
    error: str | None = None
    error_message: str | None = None
    finished_at: float | None = None
    cpu_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "state": self.state, "created_at": self.created_at,
                "finished_at": self.finished_at, "size_bytes": self.size_bytes,
                "duration_s": round(self.duration_s, 3), "cpu_s": round(self.cpu_s, 3),
                "text": " ".join(t for _, _, t in self.segments),
                "segments": [{"start": round(s, 3), "end": round(e, 3), "text": t} for s, e, t in self.segments],
                "error": self.error, "error_message": self.error_message}


def decode_to_16k(data: bytes, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """The first audio stream of ``data`` as 16 kHz mono int16; InvalidMedia / MediaTooLong."""
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as e:
        raise InvalidMedia(f"the upload is not a media file PyAV can read ({e})") from None
    with container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise InvalidMedia("the upload has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    parts.append(pcm)
                    total += pcm.size
                    if total > max_seconds * RATE:
                        raise MediaTooLong(f"the audio is longer than {max_seconds:.0f} s")
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        except av.FFmpegError as e:
            if not parts:
                raise InvalidMedia(f"the audio could not be decoded ({e})") from None
            log.info("file transcription: decoding stopped early (%s); using what was decoded", e)
    if not parts:
        raise InvalidMedia("the upload holds no audio")
    return np.concatenate(parts)


class FileJobs:
    def __init__(self, service: TranscriptionService, *, max_pending: int = MAX_PENDING) -> None:
        self.service = service
        self.max_pending = max_pending
        self.jobs: dict[str, FileJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    def _forget_old(self) -> None:
        now = time.time()
        for job_id, job in list(self.jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEEP_S:
                del self.jobs[job_id]

    async def submit(self, data: bytes) -> FileJob:
        """A job for ``data``; TranscriptionUnavailable (no model), TooManyJobs."""
        self._forget_old()
        if sum(1 for j in self.jobs.values() if j.finished_at is None) >= self.max_pending:
            raise TooManyJobs(f"{self.max_pending} transcriptions are already waiting: try again later")
        await self.service.ready_pool()  # refuse now, not later in the job, when there is no model
        job = FileJob(job_id=f"TJ_{next(self._ids)}_{secrets.token_hex(6)}", created_at=time.time(),
                      size_bytes=len(data))
        self.jobs[job.job_id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: FileJob, data: bytes) -> None:
        try:
            pcm = await asyncio.to_thread(decode_to_16k, data)
            job.duration_s = pcm.size / RATE
            job.state = "running"
            pool = await self.service.ready_pool()
            job.segments, job.cpu_s = await pool.transcribe(pcm.tobytes())
            job.state = "done"
        except (InvalidMedia, MediaTooLong) as e:
            job.state, job.error, job.error_message = "failed", e.code, e.message
        except Exception as e:  # the recogniser failed or the server stops
            log.exception("file transcription %s failed", job.job_id)
            job.state, job.error, job.error_message = "failed", "transcription_failed", str(e)
        finally:
            job.finished_at = time.time()

    def get(self, job_id: str) -> FileJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise TranscriptionJobNotFound(f"no transcription job {job_id!r} (finished jobs are kept for an hour)")
        return job

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

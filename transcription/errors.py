"""Named errors of captions and transcripts, as protocol errors (a stable code, a status)."""

from __future__ import annotations

from signaling.errors import ApiError


class TranscriptionUnavailable(ApiError):
    """No speech model: none installed, the directory is not a Vosk model, or it failed to load.
    Captions and file jobs are refused; everything else in the room works."""

    code, status = "transcription_unavailable", 503


class TranscriptionJobNotFound(ApiError):
    code, status = "transcription_job_not_found", 404


class MediaTooLarge(ApiError):
    code, status = "media_too_large", 413


class MediaTooLong(ApiError):
    code, status = "media_too_long", 413


class InvalidMedia(ApiError):
    """The upload holds no decodable audio."""

    code, status = "invalid_media", 400


class TooManyJobs(ApiError):
    code, status = "too_many_transcription_jobs", 429

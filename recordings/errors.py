"""Recording errors: each a stable code (docs/recording.md) mapped to an HTTP status at the edge."""

from __future__ import annotations

from signaling.errors import ApiError


class RecordingNotAllowed(ApiError):
    """The room's settings say recording: {allowed: false}."""

    code, status = "recording_not_allowed", 403


class AlreadyRecording(ApiError):
    code, status = "already_recording", 409


class NotRecording(ApiError):
    code, status = "not_recording", 409


class RecordingUnavailable(ApiError):
    """No media plane in this room, or not enough disk to start (reason in the message)."""

    code, status = "recording_unavailable", 503


class RecordingNotFound(ApiError):
    code, status = "recording_not_found", 404


class RecordingBusy(ApiError):
    """Deleting a recording that is still being written: stop it first."""

    code, status = "recording_busy", 409


class RecordingDiskFull(ApiError):
    """Less free space on the recordings disk than recording_min_free_mb: the recording does not start."""

    code, status = "disk_full", 507

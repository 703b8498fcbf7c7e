"""A recording's record (what the store keeps; the media are files in its directory) and its states."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class RecordingState(StrEnum):
    RECORDING = "recording"  # tracks are being written
    PROCESSING = "processing"  # stopped; the composed video is being made
    READY = "ready"  # the composed video exists
    FAILED = "failed"  # stopped by itself (disk full, write error) or the composition failed
    RECOVERED = "recovered"  # the server died while recording; the files were repaired on the next start


@dataclass(frozen=True, slots=True)
class TrackInfo:
    file: str
    participant_id: str
    name: str
    source: str
    kind: str
    codec: str
    start: float
    end: float | None
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "participant_id": self.participant_id, "name": self.name, "source": self.source,
                "kind": self.kind, "codec": self.codec, "start": self.start, "end": self.end,
                "size_bytes": self.size_bytes}


@dataclass(frozen=True, slots=True)
class Recording:
    recording_id: str
    room_id: str
    room_name: str
    external_id: str | None  # the room's external id (the school system's)
    state: RecordingState
    started_at: float
    ended_at: float | None = None
    started_by: str | None = None  # participant id, or None (auto start, REST)
    duration_s: float = 0.0
    size_bytes: int = 0
    tracks: tuple[TrackInfo, ...] = ()
    composed: str | None = None  # file name of the composed MP4 once ready
    progress: float = 0.0  # composition, 0..1
    error: str | None = None  # reason code of failed
    error_message: str | None = None
    chat: bool = False  # chat.vtt exists
    captions: bool = False  # captions.vtt exists
    group_id: str | None = None  # the breakout group recorded (record_groups); None: the room's main recording
    group_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Recording:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "room_id": self.room_id, "room_name": self.room_name,
                "external_id": self.external_id, "state": self.state.value, "started_at": self.started_at,
                "ended_at": self.ended_at, "started_by": self.started_by, "duration_s": self.duration_s,
                "size_bytes": self.size_bytes, "tracks": [t.to_json() for t in self.tracks],
                "composed": self.composed, "progress": self.progress, "error": self.error,
                "error_message": self.error_message, "chat": self.chat, "captions": self.captions,
                "group_id": self.group_id, "group_name": self.group_name}

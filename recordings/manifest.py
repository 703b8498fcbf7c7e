"""The recording directory's manifest.json (the interface to the composer, wave3-design.md): which
track files there are, whose, and where each starts on the recording's one timeline.

Written again (atomically: a temporary file renamed over the old one) whenever a track starts or
ends, so that after a kill -9 the manifest on disk names every file that was being written.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SPEAKERS = "speakers.jsonl"
CHAT = "chat.vtt"
CAPTIONS = "captions.vtt"
COMPOSED = "lesson.mp4"


@dataclass(slots=True)
class TrackEntry:
    file: str
    track_id: str
    participant_id: str
    name: str
    source: str  # microphone | camera | screen | screen_audio
    kind: str  # audio | video
    codec: str  # opus | vp8 | vp9 | h264
    start: float  # seconds since the recording's started_at, on the shared timeline
    end: float | None = None
    segment: int = 0  # 0, 1, ... for the same participant and source (reconnect, replaced producer)


@dataclass(slots=True)
class Manifest:
    recording_id: str
    room_id: str
    room_name: str
    started_at: float
    ended_at: float | None = None
    tracks: list[TrackEntry] = field(default_factory=list)
    speakers: str = SPEAKERS
    chat: str | None = None
    captions: str | None = None
    version: int = 1
    board: list[dict[str, Any]] = field(default_factory=list)  # whiteboard stills: recordings/board_frames.py
    group_id: str | None = None  # the breakout group this recording keeps (None: the main room)
    group_name: str | None = None
    continues: str | None = None  # the recording this one goes on from (its worker died: recordings/takeover.py)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("chat", "captions", "group_id", "group_name", "continues"):
            if d[key] is None:
                del d[key]
        if not d["board"]:
            del d["board"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        tracks = [TrackEntry(**t) for t in d.get("tracks", [])]
        return cls(recording_id=d["recording_id"], room_id=d["room_id"], room_name=d.get("room_name", ""),
                   started_at=float(d["started_at"]), ended_at=d.get("ended_at"), tracks=tracks,
                   speakers=d.get("speakers", SPEAKERS), chat=d.get("chat"), captions=d.get("captions"),
                   version=int(d.get("version", 1)), board=list(d.get("board") or []),
                   group_id=d.get("group_id"), group_name=d.get("group_name"), continues=d.get("continues"))

    def next_segment(self, participant_id: str, source: str) -> int:
        return sum(1 for t in self.tracks if t.participant_id == participant_id and t.source == source)

    def duration(self) -> float:
        if self.ended_at is not None:
            return max(0.0, self.ended_at - self.started_at)
        return max((t.end or t.start for t in self.tracks), default=0.0)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    return Manifest.from_json(json.loads((directory / MANIFEST).read_text(encoding="utf-8")))

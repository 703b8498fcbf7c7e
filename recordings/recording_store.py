"""Where recordings' records live: the RecordingStore contract and the memory implementation (the SQL
one is sql_recording_store.py; one test suite runs both, on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recordings.errors import RecordingNotFound
from recordings.recording import Recording, RecordingState


@dataclass(frozen=True, slots=True)
class RecordingQuery:
    room_id: str | None = None
    external_id: str | None = None
    since: float | None = None  # started_at >= since
    until: float | None = None  # started_at < until
    state: RecordingState | None = None


class RecordingStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, recording: Recording) -> None:
        """A new recording (its id is new)."""

    async def get(self, recording_id: str) -> Recording | None: ...

    async def save(self, recording: Recording) -> None:
        """Replace the stored record; RecordingNotFound if it is gone (deleted meanwhile)."""

    async def delete(self, recording_id: str) -> bool: ...

    async def find(self, query: RecordingQuery, *, offset: int, limit: int) -> tuple[list[Recording], int]:
        """Newest first, and the total that match."""

    async def ended_before(self, at: float, *, limit: int) -> list[Recording]:
        """Recordings that ended before ``at`` (the retention job's)."""


def matches(r: Recording, q: RecordingQuery) -> bool:
    return ((q.room_id is None or r.room_id == q.room_id)
            and (q.external_id is None or r.external_id == q.external_id)
            and (q.since is None or r.started_at >= q.since)
            and (q.until is None or r.started_at < q.until)
            and (q.state is None or r.state == q.state))


class MemoryRecordingStore:
    def __init__(self) -> None:
        self._rows: dict[str, Recording] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, recording: Recording) -> None:
        self._rows[recording.recording_id] = recording

    async def get(self, recording_id: str) -> Recording | None:
        return self._rows.get(recording_id)

    async def save(self, recording: Recording) -> None:
        if recording.recording_id not in self._rows:
            raise RecordingNotFound(f"no recording {recording.recording_id!r}")
        self._rows[recording.recording_id] = recording

    async def delete(self, recording_id: str) -> bool:
        return self._rows.pop(recording_id, None) is not None

    async def find(self, query: RecordingQuery, *, offset: int, limit: int) -> tuple[list[Recording], int]:
        found = sorted((r for r in self._rows.values() if matches(r, query)),
                       key=lambda r: (-r.started_at, r.recording_id))
        return found[offset:offset + limit], len(found)

    async def ended_before(self, at: float, *, limit: int) -> list[Recording]:
        old = [r for r in self._rows.values() if r.ended_at is not None and r.ended_at < at]
        return sorted(old, key=lambda r: (r.ended_at or 0.0, r.recording_id))[:limit]

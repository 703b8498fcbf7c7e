"""TranscriptionService without the model: retention, a missing model, counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.settings import Settings
from transcription.errors import TranscriptionUnavailable
from transcription.service import DAY_S, TranscriptionService
from transcription.transcript import CaptionLine
from transcription.transcript_store import MemoryTranscriptStore

NOW = 1_000_000_000.0


def line(end: float) -> CaptionLine:
    return CaptionLine("R", "P", "Анна", end - 1.0, end, "text")


async def test_retention_deletes_lines_older_than_the_setting_and_zero_keeps_them() -> None:
    store = MemoryTranscriptStore()
    for end in (NOW - 10 * DAY_S, NOW - 2 * DAY_S, NOW - 60.0):
        await store.add(line(end))
    service = TranscriptionService(Settings(transcription_retention_days=3), store, clock=lambda: NOW)
    assert await service.apply_retention() == 1
    assert len(await store.lines("R")) == 2
    keep = TranscriptionService(Settings(transcription_retention_days=0), store, clock=lambda: NOW + 100 * DAY_S)
    assert await keep.apply_retention() == 0 and len(await store.lines("R")) == 2


async def test_a_missing_model_is_refused_each_time_with_the_reason(tmp_path: Path) -> None:
    service = TranscriptionService(Settings(transcription_model=str(tmp_path / "none")), MemoryTranscriptStore())
    for _ in range(2):
        with pytest.raises(TranscriptionUnavailable, match="is not a directory"):
            await service.ready_pool()
    assert service.pool is None and service.counters() == {"ready": 0.0}
    await service.close()
    with pytest.raises(TranscriptionUnavailable, match="stopping"):
        await service.ready_pool()

"""The TranscriptStore contract; every implementation runs this suite: memory and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signaling.rooms import Room, RoomSettings
from signaling.store.sql_store import SqlStore, sqlite_url
from transcription.sql_transcript_store import SqlTranscriptStore
from transcription.transcript import CaptionLine
from transcription.transcript_store import MemoryTranscriptStore, TranscriptStore, captions_vtt


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TranscriptStore]:
    rooms: SqlStore | None = None
    if request.param == "memory":
        s: TranscriptStore = MemoryTranscriptStore()
    else:
        rooms = SqlStore(sqlite_url(tmp_path / "data"))  # migrates: r0007 makes the table
        await rooms.open()
        for rid in ("R1", "R2"):
            await rooms.create_room(Room(room_id=rid, settings=RoomSettings(), created_at=1.0))
        sql = rooms
        s = SqlTranscriptStore(lambda: sql.engine)
    await s.open()
    yield s
    await s.close()
    if rooms is not None:
        await rooms.close()


def line(start: float, end: float, text: str, *, room: str = "R1", who: str = "P1", name: str = "Анна") -> CaptionLine:
    return CaptionLine(room_id=room, participant_id=who, name=name, start=start, end=end, text=text)


async def test_lines_read_back_equal_in_the_order_spoken_and_only_for_their_room(store: TranscriptStore) -> None:
    await store.add(line(110.0, 112.5, "둘째", who="P2", name="Борис"))
    await store.add(line(100.0, 103.0, "첫째"))
    await store.add(line(105.0, 106.0, "другая комната", room="R2"))
    got = await store.lines("R1")
    assert got == [line(100.0, 103.0, "첫째"), line(110.0, 112.5, "둘째", who="P2", name="Борис")]
    assert [x.text for x in await store.lines("R2")] == ["другая комната"]
    assert await store.lines("nobody") == []


async def test_a_range_keeps_the_lines_that_overlap_it(store: TranscriptStore) -> None:
    for i in range(5):
        await store.add(line(100.0 + 10 * i, 105.0 + 10 * i, f"t{i}"))
    assert [x.text for x in await store.lines("R1", 104.0, 121.0)] == ["t0", "t1", "t2"]
    assert [x.text for x in await store.lines("R1", 130.0, None)] == ["t3", "t4"]
    assert [x.text for x in await store.lines("R1", None, 110.0)] == ["t0"]


async def test_retention_forgets_the_lines_that_ended_before_the_cutoff(store: TranscriptStore) -> None:
    await store.add(line(100.0, 101.0, "old"))
    await store.add(line(200.0, 201.0, "new", room="R2"))
    assert await store.delete_before(150.0) == 1
    assert await store.lines("R1") == []
    assert [x.text for x in await store.lines("R2")] == ["new"]
    assert await store.delete_before(150.0) == 0


async def test_captions_vtt_is_timed_from_the_recording_start(store: TranscriptStore) -> None:
    await store.add(line(100.0, 102.0, "before"))
    await store.add(line(130.0, 131.5, "in it"))
    vtt = await captions_vtt(store, "R1", 120.0, None)
    assert "00:00:10.000 --> 00:00:11.500" in vtt and "<v Анна>in it" in vtt and "before" not in vtt


async def test_long_texts_and_names_are_kept_whole_up_to_the_column_size(store: TranscriptStore) -> None:
    text = "가" * 3000
    await store.add(line(1.0, 2.0, text, name="Н" * 150))
    (got,) = await store.lines("R1")
    assert got.text == text and got.name == "Н" * 150

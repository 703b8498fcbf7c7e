"""The sweep of recordings/takeover.py: a recording left `recording` by a dead worker is recovered by
a survivor only once its room has had no owner for the grace period, under the room's lease, and
once; a room another worker serves, or this one, is left to its worker.  (The takeover by a join,
with real workers and media: tests/e2e/test_workers_recording.py.)"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from recordings.composition_runner import CompositionRunner
from recordings.manifest import Manifest, write_manifest
from recordings.recording import Recording, RecordingState
from recordings.recording_service import RecordingService
from recordings.recording_store import MemoryRecordingStore
from recordings.takeover import RecordingTakeover


class World:
    def __init__(self, root: Path) -> None:
        self.store = MemoryRecordingStore()
        self.service = RecordingService(self.store, root, secret="s", min_free_mb=1, retention_days=0,
                                        composer=CompositionRunner(concurrency=1, nice=0, width=320, height=180,
                                                                   fps=5, layout="grid"), clock=time.time)
        self.now = 0.0
        self.owners: dict[str, str] = {}  # room id -> the worker holding its lease
        self.live: set[str] = set()  # rooms served here
        self.holds: list[str] = []
        self.emitted: list[tuple[str, str, dict[str, Any]]] = []
        self.takeover = RecordingTakeover(self.service, hold=self.hold, unowned=self.unowned,
                                          served=lambda room_id: room_id in self.live,
                                          emit_unserved=self.emit, sweep_s=5.0, grace_s=10.0,
                                          monotonic=lambda: self.now)

    @contextlib.asynccontextmanager
    async def hold(self, room_id: str) -> AsyncIterator[bool]:
        if self.owners.get(room_id, "me") != "me":
            yield False
            return
        self.holds.append(room_id)
        yield True

    async def unowned(self, room_id: str) -> bool:
        return room_id not in self.owners

    async def emit(self, room_id: str, name: str, data: dict[str, Any]) -> None:
        self.emitted.append((room_id, name, data))

    async def left_recording(self, recording_id: str, room_id: str) -> None:
        """What a killed worker leaves: the record `recording`, the directory with its manifest."""
        started = time.time() - 30
        await self.store.add(Recording(recording_id=recording_id, room_id=room_id, room_name="Химия", external_id=None,
                                       state=RecordingState.RECORDING, started_at=started))
        directory = self.service.directory(recording_id)
        directory.mkdir(parents=True)
        write_manifest(directory, Manifest(recording_id=recording_id, room_id=room_id, room_name="Химия",
                                           started_at=started))

    async def state(self, recording_id: str) -> RecordingState:
        rec = await self.store.get(recording_id)
        assert rec is not None
        return rec.state


async def test_recovered_once_its_room_stayed_unowned_for_the_grace(tmp_path: Path) -> None:
    w = World(tmp_path)
    await w.left_recording("r1", "room1")
    assert await w.takeover.sweep() == []  # first seen: the clients have their time to come back
    w.now = 5.0
    assert await w.takeover.sweep() == []
    w.now = 10.0
    assert await w.takeover.sweep() == ["r1"]
    assert await w.state("r1") is RecordingState.RECOVERED
    assert w.holds == ["room1"]
    assert [(room, name, data["recording_id"], data["state"], data["reason"]) for room, name, data in w.emitted] == [
        ("room1", "recording_stopped", "r1", "recovered", "worker_lost")]
    w.now = 20.0
    assert await w.takeover.sweep() == [] and len(w.emitted) == 1  # once


async def test_a_room_served_somewhere_is_left_to_its_worker(tmp_path: Path) -> None:
    w = World(tmp_path)
    await w.left_recording("r1", "room1")  # another worker serves room1 (it writes r1)
    await w.left_recording("r2", "room2")  # this worker serves room2 (the join's takeover handles it)
    w.owners["room1"] = "other"
    w.live.add("room2")
    for t in (0.0, 10.0, 20.0):
        w.now = t
        assert await w.takeover.sweep() == []
    assert await w.state("r1") is RecordingState.RECORDING and await w.state("r2") is RecordingState.RECORDING
    assert w.holds == [] and w.emitted == []


async def test_an_owner_seen_meanwhile_starts_the_grace_again(tmp_path: Path) -> None:
    w = World(tmp_path)
    await w.left_recording("r1", "room1")
    assert await w.takeover.sweep() == []
    w.now = 5.0
    w.owners["room1"] = "other"  # Redis restarted: the live writer takes its lease again
    assert await w.takeover.sweep() == []
    del w.owners["room1"]
    w.now = 10.0
    assert await w.takeover.sweep() == []  # seen unowned from now on only
    w.now = 20.0
    assert await w.takeover.sweep() == ["r1"]


async def test_a_lease_taken_by_another_worker_at_the_last_moment_wins(tmp_path: Path) -> None:
    w = World(tmp_path)
    await w.left_recording("r1", "room1")
    assert await w.takeover.sweep() == []
    w.now = 10.0

    async def taken(room_id: str) -> bool:  # unowned when looked at, then claimed by a join elsewhere
        w.owners[room_id] = "other"
        return True

    w.takeover.unowned = taken
    assert await w.takeover.sweep() == []
    assert await w.state("r1") is RecordingState.RECORDING and w.emitted == []


async def test_a_cold_start_tells_of_each_recording_it_recovers(tmp_path: Path) -> None:
    """The whole server died (every worker): the process that recovers at the next start tells the
    webhooks (feature.py: recording_stopped, state recovered) once per recording."""
    w = World(tmp_path)
    await w.left_recording("r1", "room1")
    told: list[tuple[str, RecordingState]] = []

    async def on_recovered(rec: Recording) -> None:
        told.append((rec.recording_id, rec.state))

    assert await w.service.recover(on_recovered) == ["r1"]
    assert told == [("r1", RecordingState.RECOVERED)]
    assert await w.service.recover(on_recovered) == [] and len(told) == 1

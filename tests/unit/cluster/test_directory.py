"""The RoomDirectory contract, on memory and on a real Redis: leases (atomic claim, renew, expiry,
release), workers (heartbeats that expire, least-loaded placement, removal of a dead worker with
its leases) and room events."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling.cluster.directory import RoomDirectory, WorkerInfo

TTL = 0.4  # short leases: expiry is observed by waiting past them


async def test_claim_is_exclusive_until_released(directory: RoomDirectory) -> None:
    assert await directory.owner("R1") is None
    assert await directory.claim("R1", "A", TTL * 10) == "A"
    assert await directory.claim("R1", "B", TTL * 10) == "A"  # held: B learns the owner
    assert await directory.owner("R1") == "A"
    assert await directory.claim("R1", "A", TTL * 10) == "A"  # the holder's claim renews
    assert not await directory.release("R1", "B")  # only the holder releases
    assert await directory.release("R1", "A")
    assert await directory.owner("R1") is None
    assert await directory.claim("R1", "B", TTL * 10) == "B"


async def test_concurrent_claims_make_one_owner(directory: RoomDirectory) -> None:
    owners = await asyncio.gather(*(directory.claim("R2", f"W{i}", TTL * 10) for i in range(8)))
    assert len(set(owners)) == 1
    assert await directory.owner("R2") == owners[0]


async def test_a_lease_not_renewed_expires(directory: RoomDirectory) -> None:
    assert await directory.claim("R3", "A", TTL) == "A"
    await asyncio.sleep(TTL + 0.2)
    assert await directory.owner("R3") is None
    assert await directory.claim("R3", "B", TTL) == "B"  # a dead worker's room is free for another


async def test_renew_keeps_retakes_and_reports_lost(directory: RoomDirectory) -> None:
    assert await directory.claim("R4", "A", TTL) == "A"
    for _ in range(4):  # renewed past several TTLs: still A's
        await asyncio.sleep(TTL / 3)
        assert await directory.renew(["R4"], "A", TTL) == []
    assert await directory.owner("R4") == "A"
    # expired and free (Redis restarted, a long pause): the holder's renewal takes it again
    await asyncio.sleep(TTL + 0.2)
    assert await directory.renew(["R4"], "A", TTL) == []
    assert await directory.owner("R4") == "A"
    # expired and taken by another meanwhile: lost
    await asyncio.sleep(TTL + 0.2)
    assert await directory.claim("R4", "B", TTL * 10) == "B"
    assert await directory.renew(["R4", "R5"], "A", TTL) == ["R4"]
    assert await directory.owner("R4") == "B" and await directory.owner("R5") == "A"
    assert await directory.renew([], "A", TTL) == []


async def test_workers_live_while_they_beat(directory: RoomDirectory) -> None:
    await directory.heartbeat(WorkerInfo("A", "http://127.0.0.1:1", rooms=0, participants=3), TTL)
    await directory.heartbeat(WorkerInfo("B", "http://127.0.0.1:2", rooms=2, participants=30), TTL * 10)
    assert [w.worker_id for w in await directory.workers()] == ["A", "B"]
    a = await directory.worker("A")
    assert a is not None and a.url == "http://127.0.0.1:1" and a.participants == 3
    await asyncio.sleep(TTL + 0.2)  # A stopped beating
    assert [w.worker_id for w in await directory.workers()] == ["B"]
    assert await directory.worker("A") is None


async def test_least_loaded_and_claims_count_at_once(directory: RoomDirectory) -> None:
    assert await directory.least_loaded() is None
    await directory.heartbeat(WorkerInfo("A", "http://a"), TTL * 10)
    await directory.heartbeat(WorkerInfo("B", "http://b"), TTL * 10)
    tie = await directory.least_loaded(prefer="B")
    assert tie is not None and tie.worker_id == "B"  # a tie goes to the preferred (no relay needed)
    # A claims a room: it counts before A's next heartbeat, so the next room goes to B
    assert await directory.claim("R6", "A", TTL * 10) == "A"
    best = await directory.least_loaded(prefer="A")
    assert best is not None and best.worker_id == "B"
    assert await directory.claim("not-a-room", "B", TTL * 10, count=False) == "B"  # a lock: no load
    best = await directory.least_loaded(prefer="A")
    assert best is not None and best.worker_id == "B"
    await directory.heartbeat(WorkerInfo("B", "http://b", rooms=1, participants=40), TTL * 10)
    best = await directory.least_loaded(prefer="B")
    assert best is not None and best.worker_id == "A"


async def test_remove_worker_frees_its_leases_at_once(directory: RoomDirectory) -> None:
    await directory.heartbeat(WorkerInfo("A", "http://a"), TTL * 10)
    await directory.heartbeat(WorkerInfo("B", "http://b"), TTL * 10)
    for room in ("R7", "R8"):
        assert await directory.claim(room, "A", TTL * 10) == "A"
    assert await directory.claim("R9", "B", TTL * 10) == "B"
    assert await directory.remove_worker("A") == 2
    assert await directory.owner("R7") is None and await directory.owner("R8") is None
    assert await directory.owner("R9") == "B"
    assert [w.worker_id for w in await directory.workers()] == ["B"]
    assert await directory.remove_worker("A") == 0


async def test_room_events_reach_subscribers(directory: RoomDirectory) -> None:
    got: list[dict[str, Any]] = []
    got_async: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def slow(event: dict[str, Any]) -> None:
        got_async.append(event)
        done.set()

    sub = await directory.subscribe("rooms", got.append)
    sub2 = await directory.subscribe("rooms", slow)
    other = await directory.subscribe("other", got.append)
    await directory.publish("rooms", {"event": "released", "room_id": "R1"})
    await asyncio.wait_for(done.wait(), 5)
    for _ in range(50):
        if got:
            break
        await asyncio.sleep(0.05)
    assert got == [{"event": "released", "room_id": "R1"}] and got_async == got
    await sub.close()
    await sub2.close()
    await directory.publish("rooms", {"event": "ignored"})
    await directory.publish("other", {"event": "x"})
    for _ in range(50):
        if len(got) == 2:
            break
        await asyncio.sleep(0.05)
    assert got == [{"event": "released", "room_id": "R1"}, {"event": "x"}]
    await other.close()

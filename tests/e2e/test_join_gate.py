"""Join admission through the real server (signaling/ws/join_gate.py): a storm of WebSocket joins
against max_concurrent_joins = 2 is welcomed in arrival order, the later ones told `join_queued`
first; a host and a participant coming back to its seat pass the queue; a join beyond the queue's
bound is told `try_again` with a retry-after hint and close 1013."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from signaling.app_keys import ROOMS
from signaling.rooms import Participant, Role
from signaling.ws.join_gate import JOIN_GATE
from signaling.ws.live_room import LiveRoom
from signaling.ws.session import Session
from tests.conftest import Server, WsClient

JOIN_WORK_S = 0.2  # each join's feature work: what makes a join in a big room cost (consumers, ...)


class SlowJoin:
    """A room feature whose join work takes JOIN_WORK_S of wall time (the slot is held meanwhile)."""

    def __init__(self, live: LiveRoom) -> None:
        self.live = live

    async def on_joined(self, session: Session) -> None:
        await asyncio.sleep(JOIN_WORK_S)

    async def on_left(self, session: Session) -> None:
        pass

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        pass

    async def close(self) -> None:
        pass


async def until(pred: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def welcomed(c: WsClient) -> dict[str, Any] | None:
    return next((e for e in c.events if e["event"] == "welcome"), None)


async def test_a_join_storm_waits_in_order_and_the_host_does_not(server_factory: Callable[..., Any]) -> None:
    srv: Server = await server_factory(max_concurrent_joins=2, join_queue_max=8)
    srv.app[ROOMS].feature_factories.append(SlowJoin)
    gate = srv.app[JOIN_GATE]
    room_id = await srv.create_room()

    students: list[WsClient] = []
    for i in range(10):  # 2 take the slots, 8 fill the queue; one at a time so the arrival order is known
        students.append(await srv.connect(srv.token(room_id, f"s{i}")))
        await until(lambda n=i + 1: gate.admitted_total + gate.queued_total >= n)
    assert gate.queued_total >= 6  # most of the storm had to wait
    # a request sent while queued is answered after the welcome
    pong = asyncio.create_task(students[-1].request("ping", timeout=30))

    # over the bound: refused at once with a hint, close 1013
    late = await srv.connect(srv.token(room_id, "late"))
    err = await late.event("error", timeout=10)
    assert err["error"]["code"] == "try_again" and 1 <= err["error"]["retry_after_s"] <= 60
    await late.closed.wait()
    assert late.ws.close_code == 1013 and welcomed(late) is None

    # the teacher arrives during the storm: welcomed before everyone still waiting
    first = await asyncio.wait_for(students[0].event("welcome", timeout=10), 10)
    waiting = [c for c in students if welcomed(c) is None]
    assert len(waiting) >= 4
    host = await srv.connect(srv.token(room_id, "teacher", role=Role.HOST))
    # ... and so is a student coming back to the seat it holds (a reconnect)
    back = await srv.connect(srv.token(room_id, "s0"))
    host_welcome = await host.event("welcome", timeout=10)
    back_welcome = await back.event("welcome", timeout=10)
    assert back_welcome["participant_id"] == first["participant_id"]
    assert not [e for e in host.events if e["event"] == "join_queued"]
    assert not [e for e in back.events if e["event"] == "join_queued"]

    # every student is welcomed eventually, in arrival order
    for c in students[1:]:
        await c.event("welcome", timeout=30)
    counts = [w["num_participants"] for c in students if (w := welcomed(c)) is not None]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts
    assert all(host_welcome["num_participants"] < welcomed(c)["num_participants"]  # type: ignore[index]
               for c in waiting[-3:])  # the back of the queue when the host came (the front may move meanwhile)

    assert (await pong)["ok"] is True

    # the queued ones heard their position first, then the normal welcome
    queued = [c for c in students if any(e["event"] == "join_queued" for e in c.events)]
    assert len(queued) >= 6
    for c in queued:
        names = [e["event"] for e in c.events]
        assert names.index("join_queued") < names.index("welcome")
        q = next(e for e in c.events if e["event"] == "join_queued")
        assert 1 <= q["position"] <= 8 and q["estimate_s"] >= 0
    await until(lambda: gate.active == 0 and gate.queued == 0)  # the last joins' work done: slots free

    # the welcomed ones are in the room as usual: a request works
    r = await students[-1].request("raise_hand")
    assert r["ok"] is True, r

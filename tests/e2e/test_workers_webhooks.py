"""Webhooks from `urok serve --workers 2` (real Redis, SQLite shared by the workers) to a real
receiver on 127.0.0.1 that counts what it gets by X-Urok-Delivery: a worker killed (kill -9) while
its deliveries and the other worker's are failing (the receiver answers 500, then 200): every
delivery arrives, none twice (each pending delivery is claimed by one worker at a time:
signaling/webhooks/claims.py), and the room events are told once across the takeover of the room
(a reconnect is no second join; who never comes back leaves once).  A worker hung (SIGSTOP) past its
leases sends nothing for the room or the deliveries it lost; the workers of a run started after a
crash of the whole server send each pending delivery once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.rooms import Role
from signaling.store import schema as t
from signaling.store.sql_store import driver_url, sqlite_url
from tests.conftest import WsClient
from tests.e2e.test_workers import ADMIN, Cluster, connect, free_ports, new_room, token
from tests.e2e.test_workers_failover import rejoin
from tests.redis_server import SKIP_REASON, RedisServer


class Receiver:
    """The school's journal: answers 500 while ``failing``, else 204; counts by X-Urok-Delivery."""

    def __init__(self) -> None:
        self.port = free_ports(1)
        self.failing = True
        self.attempts: Counter[str] = Counter()  # every POST, by delivery id
        self.delivered: Counter[str] = Counter()  # 2xx answers, by delivery id
        self.bodies: dict[str, dict[str, Any]] = {}
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)

    async def _hook(self, request: web.Request) -> web.Response:
        delivery = request.headers["X-Urok-Delivery"]
        body = json.loads(await request.read())
        self.attempts[delivery] += 1
        self.bodies[delivery] = body
        if self.failing:
            return web.Response(status=500)
        self.delivered[delivery] += 1
        return web.Response(status=204)

    def told(self) -> Counter[tuple[str, str, str | None]]:
        """(event, room, identity) of each delivery that arrived (a journal's view)."""
        return Counter((b["event"], b["room"]["room_id"], (b.get("participant") or {}).get("identity"))
                       for d, b in self.bodies.items() if self.delivered[d])

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()


async def until(pred: Callable[[], bool], timeout: float, what: Callable[[], object]) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"not in {timeout:.0f} s: {what()}"
        await asyncio.sleep(0.1)


async def pending_claims(data_dir: Path) -> list[str | None]:
    """Who holds each pending delivery (its claimed_by)."""
    engine = create_async_engine(driver_url(sqlite_url(data_dir)))
    try:
        async with engine.connect() as conn:
            d = t.webhook_deliveries
            return [r[0] for r in await conn.execute(sa.select(d.c.claimed_by).where(d.c.state == "pending"))]
    finally:
        await engine.dispose()


async def pending_rows(data_dir: Path) -> int:
    return len(await pending_claims(data_dir))


async def test_kill_9_of_a_worker_with_failing_deliveries_every_delivery_arrives_once(
        tmp_path: Path, redis_server: RedisServer | None, http: aiohttp.ClientSession) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    journal = Receiver()
    await journal.start()
    # 1 s attempts (a 15 s claim lease), 1 s back-off cap; who does not come back leaves 3 s after
    # the takeover
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_WEBHOOK_TIMEOUT_S="1",
                      UROK_WEBHOOK_MAX_BACKOFF_S="1", UROK_RECONNECT_WINDOW_S="3")
    clients: list[WsClient] = []
    try:
        await cluster.start(http)
        async with http.post(cluster.base + "/v1/webhooks", headers=ADMIN, json={"url": (
                f"http://127.0.0.1:{journal.port}/hook"), "events": ["room_started", "participant_joined",
                                                                      "participant_left"]}) as r:
            assert r.status == 201, await r.text()
        rooms = [await new_room(http, cluster.base, name) for name in ("Физика", "Алгебра")]
        people = {room: [("teacher", Role.HOST), ("anna", Role.PARTICIPANT), ("boris", Role.PARTICIPANT)]
                  for room in rooms}
        toks = {(room, who): token(room, who, role) for room in rooms for who, role in people[room]}
        seats: dict[tuple[str, str], str] = {}
        by_key: dict[tuple[str, str], WsClient] = {}
        for i, room in enumerate(rooms):
            for who, _ in people[room]:  # straight to the room's worker (a relay's own drop is not this test's)
                c = await connect(http, cluster.private(i), toks[room, who])
                clients.append(c)
                by_key[room, who] = c
                seats[room, who] = (await c.event("welcome"))["participant_id"]
        assert await cluster.rooms_by_worker(http) == [1, 1]
        # both workers' deliveries fail: each room's first (room_started) is retried, the three joins
        # wait behind it (in order per room)
        await until(lambda: len(journal.attempts) == 2 and min(journal.attempts.values()) >= 2, 20,
                    lambda: f"each room's first delivery tried twice: {journal.attempts}")

        victim = rooms[0]  # worker 0 serves it
        pid = cluster.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        for who, _ in people[victim]:
            await asyncio.wait_for(by_key[victim, who].closed.wait(), 10)
            await by_key[victim, who].close()
        for who in ("teacher", "anna"):  # boris never comes back
            c, welcome = await rejoin(http, cluster.base, toks[victim, who], killed_at + 20)
            clients.append(c)
            assert welcome["participant_id"] == seats[victim, who]  # the same seat: no second join
        # still failing while the room and the dead worker's deliveries move: the room has moved (the
        # rejoins above); the worker started again took its predecessor's rows as it started (before
        # it answers), and one of them fails once more from there
        await cluster.wait_ready(http, timeout=60)
        tried = Counter(journal.attempts)
        await until(lambda: any(n > tried[d] for d, n in journal.attempts.items()
                                if journal.bodies[d]["room"]["room_id"] == victim), 20,
                    lambda: f"a delivery of the lost worker's room tried again: {journal.attempts}")
        journal.failing = False

        expected: Counter[tuple[str, str, str | None]] = Counter({("room_started", room, None): 1 for room in rooms})
        expected.update({("participant_joined", room, who): 1 for room in rooms for who, _ in people[room]})
        expected[("participant_left", victim, "boris")] = 1
        await until(lambda: journal.told() == expected, 40, lambda: (
            f"missing {expected - journal.told()}, extra {journal.told() - expected}; "
            f"{[b for b in journal.bodies.values() if b['event'] == 'participant_left']}"))
        await until(lambda: set(journal.delivered) == set(journal.attempts), 40, lambda: journal.attempts)
        print(f"kill -9 -> every delivery arrived {time.monotonic() - killed_at:.1f} s later; "
              f"{sum(journal.attempts.values())} attempts of {len(journal.attempts)} deliveries")
        # a second sending of any of them would come by now: 1 s attempts, 1 s back-off cap, and no
        # claim changes hands here (the dead worker's went to its successor at its start)
        await asyncio.sleep(2.0)
        twice = {d: n for d, n in journal.delivered.items() if n > 1}
        assert not twice, f"delivered twice: {[(journal.bodies[d]['event'], n) for d, n in twice.items()]}"
        assert journal.told() == expected
        assert await pending_rows(cluster.data_dir) == 0
        await cluster.wait_ready(http, timeout=60)
        assert cluster.worker_pids()[0] != pid  # started again by the supervisor
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()
        await journal.stop()


async def test_a_worker_stopped_past_its_leases_sends_nothing_for_the_room_or_the_deliveries_it_lost(
        tmp_path: Path, redis_server: RedisServer | None, http: aiohttp.ClientSession) -> None:
    """SIGSTOP of the worker serving a lesson, longer than its room lease (3 s) and its delivery
    claims' (5 s here), while the receiver fails: the other worker takes the room and the pending
    deliveries over; when the stopped worker runs again it tells nobody that the participants left
    (they are in the room, on the other worker) and sends none of the deliveries it lost."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    journal = Receiver()
    await journal.start()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_WEBHOOK_TIMEOUT_S="1",
                      UROK_WEBHOOK_MAX_BACKOFF_S="1")
    clients: list[WsClient] = []
    stopped: int | None = None
    try:
        await cluster.start(http)
        async with http.post(cluster.base + "/v1/webhooks", headers=ADMIN, json={"url": (
                f"http://127.0.0.1:{journal.port}/hook")}) as r:
            assert r.status == 201, await r.text()
        room = await new_room(http, cluster.base, "География")
        toks = {who: token(room, who, role) for who, role in (("teacher", Role.HOST), ("anna", Role.PARTICIPANT))}
        for who in toks:
            c = await connect(http, cluster.private(0), toks[who])  # worker 0 serves the room
            clients.append(c)
            await c.event("welcome")
        await until(lambda: min(journal.attempts.values(), default=0) >= 2, 20,
                    lambda: f"the first delivery tried twice: {journal.attempts}")
        stopped = cluster.worker_pids()[0]
        os.kill(stopped, signal.SIGSTOP)  # a child of the supervisor this test started
        stopped_at = time.monotonic()
        for who in toks:  # their pages gave up on the silent socket and reconnect
            c, _ = await rejoin(http, cluster.private(1), toks[who], stopped_at + 15)
            clients.append(c)
        # past the 5 s claims: until no pending delivery is still claimed by the stopped worker (worker
        # 1's claim round, every 1.25 s, took them over), 7 s after the stop at most (the fixed wait
        # this replaces).  Not asserted: a SIGSTOP that lands inside the stopped worker's SQLite write
        # keeps the database locked for the other worker ("database is locked" on its claim round)
        # until SIGCONT, and then nothing can be taken over (seen once on the loaded 2-core box)
        lost = f"/{stopped}"

        async def taken_over() -> bool:
            holders = await pending_claims(cluster.data_dir)
            return bool(holders) and not any(h is None or h.endswith(lost) for h in holders)

        while time.monotonic() < stopped_at + 7.0:
            if await taken_over():
                break
            await asyncio.sleep(0.2)
        await until(lambda: journal.attempts.total() > 3, 10, lambda: "worker 1 took the deliveries over")
        journal.failing = False  # a delivery worker 0 lost that it still sent would arrive twice
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        await asyncio.wait_for(clients[0].closed.wait(), 15)  # worker 0 found its room lease lost
        expected: Counter[tuple[str, str, str | None]] = Counter({("room_started", room, None): 1})
        expected.update({("participant_joined", room, who): 1 for who in toks})
        await until(lambda: set(journal.delivered) == set(journal.attempts) and journal.told() == expected, 30,
                    lambda: f"missing {expected - journal.told()}, extra {journal.told() - expected}")
        await asyncio.sleep(2.0)
        twice = {d: n for d, n in journal.delivered.items() if n > 1}
        assert not twice, f"delivered twice: {[(journal.bodies[d]['event'], n) for d, n in twice.items()]}"
        assert journal.told() == expected, f"extra {journal.told() - expected}"
        assert await pending_rows(cluster.data_dir) == 0
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        for c in clients:
            await c.close()
        await cluster.stop()
        await journal.stop()


async def test_workers_starting_together_send_each_pending_delivery_of_a_crashed_run_once(
        tmp_path: Path, redis_server: RedisServer | None, http: aiohttp.ClientSession) -> None:
    """The whole `urok serve` killed (supervisor and workers, kill -9) while the receiver fails,
    then started again: its two workers start together on the pending rows; once the dead run's
    claims (5 s here) are over, each delivery goes out from one of them, once."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    journal = Receiver()
    await journal.start()
    url = redis_server.url

    def run() -> Cluster:  # 1 s attempts: 5 s claims
        return Cluster(tmp_path / "data", url, UROK_WEBHOOK_TIMEOUT_S="1", UROK_WEBHOOK_MAX_BACKOFF_S="1")

    first = run()
    clients: list[WsClient] = []
    second: Cluster | None = None
    try:
        await first.start(http)
        async with http.post(first.base + "/v1/webhooks", headers=ADMIN, json={"url": (
                f"http://127.0.0.1:{journal.port}/hook")}) as r:
            assert r.status == 201, await r.text()
        rooms = [await new_room(http, first.base, name) for name in ("Физика", "Алгебра")]
        for i, room in enumerate(rooms):  # one room on each worker
            for who, role in (("teacher", Role.HOST), ("anna", Role.PARTICIPANT)):
                c = await connect(http, first.private(i), token(room, who, role))
                clients.append(c)
                await c.event("welcome")
        await until(lambda: len(journal.attempts) == 2 and min(journal.attempts.values()) >= 2, 20,
                    lambda: f"each room's first delivery tried twice: {journal.attempts}")
        await asyncio.sleep(0.3)  # the joins' rows written (one batch is 50 ms)
        assert first.proc is not None
        for pid in [*first.worker_pids().values(), first.proc.pid]:  # processes this test started
            os.kill(pid, signal.SIGKILL)
        await first.proc.wait()
        for c in clients:
            await c.close()
        clients.clear()
        assert await pending_rows(first.data_dir) == 6  # room_started and two joins a room

        journal.failing = False
        second = run()
        await second.start(http)
        expected: Counter[tuple[str, str, str | None]] = Counter({("room_started", room, None): 1 for room in rooms})
        expected.update({("participant_joined", room, who): 1 for room in rooms for who in ("teacher", "anna")})
        await until(lambda: journal.told() == expected and set(journal.delivered) == set(journal.attempts), 30,
                    lambda: f"missing {expected - journal.told()}, extra {journal.told() - expected}")
        await asyncio.sleep(2.0)
        twice = {d: n for d, n in journal.delivered.items() if n > 1}
        assert not twice, f"delivered twice: {[(journal.bodies[d]['event'], n) for d, n in twice.items()]}"
        assert await pending_rows(first.data_dir) == 0
    finally:
        for c in clients:
            await c.close()
        if second is not None:
            await second.stop()
        await first.stop()
        await journal.stop()


async def test_who_never_comes_back_to_a_room_whose_worker_died_leaves_once(
        tmp_path: Path, redis_server: RedisServer | None, http: aiohttp.ClientSession) -> None:
    """kill -9 of the worker serving a lesson without an end time, and nobody comes back: once the
    room has been without an owner for the reconnect window (3 s here), one worker has its people
    leave (participant_left, not_reconnected, once each; the store's participants left)."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    journal = Receiver()
    journal.failing = False
    await journal.start()
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RECONNECT_WINDOW_S="3")
    clients: list[WsClient] = []
    try:
        await cluster.start(http)
        async with http.post(cluster.base + "/v1/webhooks", headers=ADMIN, json={"url": (
                f"http://127.0.0.1:{journal.port}/hook"), "events": ["participant_joined", "participant_left"]}) as r:
            assert r.status == 201, await r.text()
        room = await new_room(http, cluster.base, "История")
        for who, role in (("teacher", Role.HOST), ("anna", Role.PARTICIPANT)):
            c = await connect(http, cluster.private(0), token(room, who, role))
            clients.append(c)
            await c.event("welcome")
        await until(lambda: len(journal.delivered) == 2, 10, lambda: journal.attempts)
        await asyncio.sleep(0.3)  # the seats written
        os.kill(cluster.worker_pids()[0], signal.SIGKILL)  # a child of the supervisor this test started
        for c in clients:
            await c.close()
        left = Counter({("participant_left", room, who): 1 for who in ("teacher", "anna")})
        await until(lambda: journal.told() - Counter({("participant_joined", room, w): 1 for w in ("teacher", "anna")})
                    == left, 25, lambda: journal.told())
        reasons = {b["reason"] for b in journal.bodies.values() if b["event"] == "participant_left"}
        assert reasons == {"not_reconnected"}
        await asyncio.sleep(6.0)  # another sweep round: nobody leaves twice
        assert sum(1 for b in journal.bodies.values() if b["event"] == "participant_left") == 2
        async with http.get(cluster.base + f"/v1/rooms/{room}/participants", headers=ADMIN) as r:
            listed = await r.json()
        assert [p for p in listed["participants"] if p["state"] != "left"] == [], listed  # nobody present
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()
        await journal.stop()

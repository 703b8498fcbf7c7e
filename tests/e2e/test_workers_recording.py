"""kill -9 of the worker writing a lesson's recording (`urok serve --workers 2`, Redis, SQLite): the
worker that takes the room over recovers the first recording (files repaired, `recovered`, listed
and downloadable) and the lesson's recording goes on by itself in a new recording linked to the
first (`continues`), which the reconnected clients are told about; the webhooks get each recording
event once: the first's start, the continuation's start, the first's stop (`recovered`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from recordings.track_writer import probe
from signaling.rooms import Role
from tests.e2e.rtc_client import RtcClient, wait_until
from tests.e2e.test_workers import ADMIN, Cluster, connect, free_ports, new_room, token
from tests.e2e.test_workers_failover import rejoin
from tests.redis_server import SKIP_REASON, RedisServer

pytestmark = pytest.mark.timeout(120)


class Receiver:
    """A webhook receiver: every delivery's body and delivery id, in arrival order."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.delay_s = 0.0  # a slow receiver: each answer this late
        self.refuse = False  # a receiver that is down: 503, nothing kept
        self.port = free_ports(1)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)

    async def _hook(self, request: web.Request) -> web.Response:
        if self.refuse:
            return web.Response(status=503)
        self.got.append((request.headers["X-Urok-Delivery"], json.loads(await request.read())))
        await asyncio.sleep(self.delay_s)
        return web.Response(status=204)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def recording_events(self) -> list[dict[str, Any]]:
        return [b for _, b in self.got if b["event"].startswith("recording_")]


def tracks_grown(directory: Path, kinds: int = 2) -> bool:
    """The recording's manifest names ``kinds`` track files that hold media."""
    try:
        tracks = json.loads((directory / "manifest.json").read_text())["tracks"]
    except (OSError, ValueError):
        return False
    return len([t for t in tracks if (directory / t["file"]).exists()
                and (directory / t["file"]).stat().st_size > 2000]) >= kinds


async def test_kill_9_of_the_recording_worker(tmp_path: Path, redis_server: RedisServer | None,
                                              http: aiohttp.ClientSession) -> None:
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    rec_dir = tmp_path / "rec"
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RECORDINGS_DIR=str(rec_dir),
                      UROK_RECORDING_MIN_FREE_MB="1", UROK_COMPOSE_NICE="0")
    hooks = Receiver()
    clients: list[RtcClient] = []
    try:
        await hooks.start()
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Химия")
        async with http.post(cluster.base + "/v1/webhooks", headers=ADMIN,
                             json={"url": f"http://127.0.0.1:{hooks.port}/hook", "room_id": room}) as r:
            assert r.status == 201, await r.text()
        tok = token(room, "teacher", Role.HOST)
        teacher = RtcClient(await connect(http, cluster.base, tok))
        clients.append(teacher)
        await teacher.ws.event("welcome")
        await teacher.publish(video=True, audio=True)
        assert await wait_until(lambda: any(b["event"] == "participant_joined" for _, b in hooks.got), 10)
        hooks.refuse = True  # down: the first recording's start stays pending at the worker killed below
        started = await teacher.ws.request("recording_start")
        assert started["ok"], started
        first = started["recording_id"]
        assert await wait_until(lambda: tracks_grown(rec_dir / first), 20), "the first recording's tracks did not grow"
        await asyncio.sleep(1.0)

        owner = (await cluster.rooms_by_worker(http)).index(1)
        os.kill(cluster.worker_pids()[owner], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        # the receiver is back but slow: the survivor's deliveries are still pending (in flight) when
        # the killed worker, started again, reads the pending deliveries; the killed worker's own
        # pending one (the first recording's start) is sent by one worker
        hooks.refuse, hooks.delay_s = False, 4.0
        await asyncio.wait_for(teacher.ws.closed.wait(), 10)
        teacher.expect_refused_answer = True  # a renegotiation cut by the kill is not this test's failure
        teacher.negotiation_errors.clear()
        await teacher.close()
        clients.clear()

        # the teacher's page reconnects with the same token and is told the recording goes on
        ws, _ = await rejoin(http, cluster.base, tok, killed_at + 20)
        teacher = RtcClient(ws)
        clients.append(teacher)
        told = await teacher.ws.event("recording_started", timeout=10)
        second = told["recording_id"]
        assert second != first and told["continues"] == first, told
        print(f"kill -9 -> recording goes on ({second}): {time.monotonic() - killed_at:.2f} s")
        await teacher.publish(video=True, audio=True)
        assert await wait_until(lambda: tracks_grown(rec_dir / second), 20), "no media recorded after the takeover"
        manifest = json.loads((rec_dir / second / "manifest.json").read_text())
        assert manifest["continues"] == first and manifest["ended_at"] is None

        # the first recording: recovered by the worker that took over, listed, downloadable, playable
        for _ in range(100):
            async with http.get(cluster.base + f"/v1/recordings/{first}", headers=ADMIN) as r:
                body = await r.json()
            if body["state"] != "recording":
                break
            await asyncio.sleep(0.1)
        assert body["state"] == "recovered", body
        assert body["ended_at"] is not None and body["duration_s"] > 1.0, body
        assert {t["kind"] for t in body["tracks"]} == {"audio", "video"}
        for t in body["tracks"]:
            codec, duration = probe(rec_dir / first / t["file"])  # repaired: the duration is in the file
            assert codec in ("opus", "vp8") and duration > 1.0 and t["end"] is not None, (t, duration)
            async with http.get(cluster.base + f"/v1/recordings/{first}/files/{t['file']}", headers=ADMIN) as r:
                assert r.status == 200 and len(await r.read()) == t["size_bytes"]
        manifest = json.loads((rec_dir / second / "manifest.json").read_text())
        gap = manifest["started_at"] + min(t["start"] for t in manifest["tracks"]) - body["ended_at"]
        print(f"the lesson's recording: a gap of {gap:.2f} s between the first's last media and the second's first")
        assert gap < 15.0, gap  # the reconnect and the teacher publishing again; generous on a loaded machine
        async with http.get(cluster.base + f"/v1/rooms/{room}/recordings", headers=ADMIN) as r:
            listed = {x["recording_id"]: x["state"] for x in (await r.json())["recordings"]}
        assert listed == {first: "recovered", second: "recording"}, listed

        # webhooks: each recording event once, the one the dead worker could not send included;
        # the killed worker, started again by the supervisor, resends nothing another one sent
        await cluster.wait_ready(http, timeout=60)
        assert await wait_until(lambda: len(hooks.recording_events()) >= 3, 25), hooks.recording_events()
        await asyncio.sleep(4.5)  # a duplicate would come now
        events = hooks.recording_events()
        got = [(d, b["event"]) for d, b in hooks.got]
        assert len({d for d, _ in hooks.got}) == len(hooks.got), ("a delivery came twice", got)
        assert len({b["id"] for _, b in hooks.got}) == len(hooks.got), "an event came twice"
        summary = [(e["event"], e["recording_id"]) for e in events]
        assert sorted(summary) == sorted([("recording_started", first), ("recording_started", second),
                                          ("recording_stopped", first)]), summary
        stopped = next(e for e in events if e["event"] == "recording_stopped")
        assert stopped["state"] == "recovered" and stopped["reason"] == "worker_lost", stopped
        assert next(e for e in events if e["recording_id"] == second)["continues"] == first
    finally:
        for c in clients:
            await c.close()
        await cluster.stop()
        await hooks.runner.cleanup()


@pytest.mark.slow
async def test_nobody_comes_back_a_survivor_recovers_it(tmp_path: Path, redis_server: RedisServer | None,
                                                        http: aiohttp.ClientSession) -> None:
    """The same kill, but nobody reconnects: a surviving worker sees the room without an owner and
    recovers the recording (recordings/takeover.py: GRACE_S after it is first seen, sweeps every
    SWEEP_S), with the webhook's recording_stopped; a later join does not continue it."""
    if redis_server is None:
        pytest.skip(SKIP_REASON)
    rec_dir = tmp_path / "rec"
    cluster = Cluster(tmp_path / "data", redis_server.url, UROK_RECORDINGS_DIR=str(rec_dir),
                      UROK_RECORDING_MIN_FREE_MB="1")
    hooks = Receiver()
    teacher: RtcClient | None = None
    try:
        await hooks.start()
        await cluster.start(http)
        room = await new_room(http, cluster.base, "Биология")
        async with http.post(cluster.base + "/v1/webhooks", headers=ADMIN,
                             json={"url": f"http://127.0.0.1:{hooks.port}/hook", "room_id": room}) as r:
            assert r.status == 201, await r.text()
        tok = token(room, "teacher", Role.HOST)
        teacher = RtcClient(await connect(http, cluster.base, tok))
        await teacher.ws.event("welcome")
        await teacher.publish(video=True, audio=True)
        first = (await teacher.ws.request("recording_start"))["recording_id"]
        assert await wait_until(lambda: tracks_grown(rec_dir / first), 20)
        owner = (await cluster.rooms_by_worker(http)).index(1)
        os.kill(cluster.worker_pids()[owner], signal.SIGKILL)  # a child of the supervisor this test started
        killed_at = time.monotonic()
        teacher.expect_refused_answer = True
        await teacher.close()
        teacher = None
        body: dict[str, Any] = {}
        while time.monotonic() - killed_at < 40:
            async with http.get(cluster.base + f"/v1/recordings/{first}", headers=ADMIN) as r:
                body = await r.json()
            if body["state"] != "recording":
                break
            await asyncio.sleep(0.5)
        print(f"kill -9 -> recovered by a sweep after {time.monotonic() - killed_at:.1f} s")
        assert body["state"] == "recovered" and {t["kind"] for t in body["tracks"]} == {"audio", "video"}, body
        assert await wait_until(lambda: any(e["event"] == "recording_stopped" for e in hooks.recording_events()), 10)
        assert [(e["event"], e["recording_id"]) for e in hooks.recording_events()] == [
            ("recording_started", first), ("recording_stopped", first)]
        # the teacher comes back later: the lesson goes on, not recorded (the recording was finished)
        ws, _ = await rejoin(http, cluster.base, tok, time.monotonic() + 20)
        teacher = RtcClient(ws)
        await asyncio.sleep(1.0)
        assert not any(e["event"] == "recording_started" for e in teacher.ws.events)
    finally:
        if teacher is not None:
            await teacher.close()
        await cluster.stop()
        await hooks.runner.cleanup()

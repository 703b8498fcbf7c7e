"""Webhooks end to end: a real HTTP receiver (an aiohttp server on 127.0.0.1 in the test) gets the
events of real WebSocket joins, waits, admits, denials, leaves and a room's end, signed (checked
with PyJWT); down (503, then a closed port) and back up, across a kill -9 of `urok serve` on its
SQLite data dir, it gets every event once the server is back, in order; a refused URL and a slow
receiver hold up nobody else; the dead-letter list and a retry through REST."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.rooms import Role
from signaling.store import schema as t
from signaling.store.sql_store import driver_url, sqlite_url
from tests.conftest import Server, WsClient, free_port
from tests.e2e.test_store_restart import TOKENS, Serve, connect, token


@dataclass
class Got:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result

    def who(self) -> tuple[str, str | None]:
        p = self.payload
        return p["event"], (p.get("participant") or {}).get("identity")


@dataclass
class Receiver:
    """The school's journal: answers 204, or 503 while ``down``, or after ``slow_s`` seconds."""

    port: int = field(default_factory=free_port)
    down: bool = False
    slow_s: float = 0.0
    got: list[Got] = field(default_factory=list)  # answered 2xx
    attempts: int = 0
    tried: list[str] = field(default_factory=list)  # X-Urok-Delivery of every attempt
    runner: web.AppRunner | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.tried.append(request.headers.get("X-Urok-Delivery", ""))
        body = await request.read()
        if self.down:
            return web.Response(status=503)
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        self.got.append(Got(request.path, dict(request.headers), body))
        self.changed.set()
        return web.Response(status=204)

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 15.0) -> None:
        async def loop() -> None:
            while not pred():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def unique(self, path: str = "/hook") -> list[Got]:
        """At least once: a receiver drops what it has seen (X-Urok-Delivery)."""
        seen: set[str] = set()
        out = []
        for g in self.got:
            if g.path == path and g.headers["X-Urok-Delivery"] not in seen:
                seen.add(g.headers["X-Urok-Delivery"])
                out.append(g)
        return out


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    made: list[Receiver] = []

    async def make(**kw: Any) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        return await r.start()

    yield make
    for r in made:
        await r.stop()


def verified(g: Got, secret: str, issuer: str) -> dict[str, Any]:
    """What the journal does: the JWT in Authorization (HS256, our secret), then the body's sha256."""
    claims: dict[str, Any] = jwt.decode(g.headers["Authorization"], secret, algorithms=["HS256"], issuer=issuer,
                                        options={"require": ["iss", "sha256", "iat", "exp"]})
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(g.body).digest()).decode()
    assert claims["exp"] - claims["iat"] == 300
    assert g.headers["Content-Type"] == "application/webhook+json"
    assert g.headers["X-Urok-Event"] == g.payload["event"]
    return claims


async def register(server: Server, **body: Any) -> dict[str, Any]:
    status, out = await server.rest("POST", "/v1/webhooks", body)
    assert status == 201, out
    return dict(out)


async def waiting(server: Server, room_id: str, identity: str) -> tuple[WsClient, str]:
    c = await server.connect(server.token(room_id, identity))
    w = await c.event("welcome")
    assert w["state"] == "waiting"
    return c, str(w["participant_id"])


async def test_real_joins_waits_admits_denials_leaves_and_the_end_reach_the_receiver_signed_in_order(
        server: Server, receivers: Callable[..., Any]) -> None:
    rx: Receiver = await receivers()
    everything = await register(server, url=rx.url())
    only_end = await register(server, url=rx.url("/ends"), events=["room_ended"])
    room_id = await server.create_room(name="Алгебра, 7Б", external_id="ej-7b-1", guest_policy="ASK_HOST")
    other_room = await server.create_room(name="other")
    await register(server, url=rx.url("/other"), room_id=other_room)
    assert everything["secret"] and everything["webhook_id"].startswith("WH_")

    host = await server.join(room_id, "teacher", role=Role.HOST)
    anna, anna_id = await waiting(server, room_id, "anna")
    _, boris_id = await waiting(server, room_id, "boris")
    assert (await host.request("admit", participant_ids=[anna_id]))["ok"]
    await anna.event("admitted")
    assert (await host.request("deny", participant_ids=[boris_id]))["ok"]
    assert (await anna.request("leave"))["ok"]
    status, _ = await server.rest("DELETE", f"/v1/rooms/{room_id}")
    assert status == 200

    await rx.wait_for(lambda: any(g.payload["event"] == "room_ended" for g in rx.unique()))
    await rx.wait_for(lambda: len(rx.unique("/ends")) == 1)
    got = [g for g in rx.unique() if g.payload["event"] != "attendance_ready"]  # the lessons feature's
    assert [g.who() for g in got] == [
        ("room_started", None), ("participant_joined", "teacher"), ("participant_waiting", "anna"),
        ("participant_waiting", "boris"), ("participant_admitted", "anna"), ("participant_joined", "anna"),
        ("participant_denied", "boris"), ("participant_left", "anna"), ("participant_left", "teacher"),
        ("room_ended", None)]
    for g in got:
        verified(g, everything["secret"], "testkey")
        p = g.payload
        assert p["room"] == {"room_id": room_id, "external_id": "ej-7b-1", "name": "Алгебра, 7Б"}
        assert p["id"].startswith("EV_") and isinstance(p["created_at"], float) and "lesson" not in p
    assert got[4].payload["by"] == host.events[0]["participant_id"]
    assert got[7].payload["reason"] == "left"
    end = rx.unique("/ends")[0]
    verified(end, only_end["secret"], "testkey")
    assert end.payload["id"] == got[-1].payload["id"]  # one event, one id, whoever gets it
    assert end.headers["X-Urok-Delivery"] != got[-1].headers["X-Urok-Delivery"]
    assert not rx.unique("/other")  # another room's webhook
    status, page = await server.rest("GET", f"/v1/webhooks/{everything['webhook_id']}/deliveries?state=delivered")
    assert status == 200 and page["total"] >= 10
    assert [d["event"] for d in page["deliveries"]][:2] == ["room_started", "participant_joined"]
    metrics = await (await server.http.get(server.base + "/metrics")).text()
    assert "urok_webhook_delivered_total" in metrics and "urok_webhook_pending " in metrics


async def test_bad_registrations_change_nothing_and_name_the_error(server: Server) -> None:
    for body in ({"url": "ftp://x.example/"}, {"url": "https://u:p@x.example/"}, {"url": "https://x.example/",
                 "events": ["nope"]}, {"url": "https://x.example/", "room_id": "R", "lesson_id": "L"}, {}):
        status, out = await server.rest("POST", "/v1/webhooks", body)
        assert (status, out["error"]["code"]) == (400, "invalid_webhook"), body
    assert await server.rest("POST", "/v1/webhooks", {"url": "https://x.example/"}, auth=False) == (
        401, {"error": {"code": "unauthorized", "message": "send an admin token: Authorization: Bearer <token>"}})
    assert await server.rest("GET", "/v1/webhooks") == (200, {"webhooks": []})
    for method, path in (("DELETE", "/v1/webhooks/WH_nope"), ("GET", "/v1/webhooks/WH_nope/deliveries"),
                         ("POST", "/v1/webhooks/WH_nope/deliveries/WD_x/retry")):
        status, out = await server.rest(method, path)
        assert (status, out["error"]["code"]) == (404, "webhook_not_found"), path
    w = await register(server, url="https://x.example/", events=["room_ended"], secret="s" * 20)
    assert w["secret"] == "s" * 20
    status, listed = await server.rest("GET", "/v1/webhooks")
    assert [x["secret"] for x in listed["webhooks"]] == ["********"]  # shown once, at creation
    status, out = await server.rest("GET", f"/v1/webhooks/{w['webhook_id']}/deliveries?state=lost")
    assert (status, out["error"]["code"]) == (400, "invalid_webhook")
    status, out = await server.rest("POST", f"/v1/webhooks/{w['webhook_id']}/deliveries/WD_x/retry")
    assert (status, out["error"]["code"]) == (404, "delivery_not_found")
    assert (await server.rest("DELETE", f"/v1/webhooks/{w['webhook_id']}"))[0] == 204
    assert await server.rest("GET", "/v1/webhooks") == (200, {"webhooks": []})


async def test_a_refused_url_and_a_slow_receiver_do_not_hold_up_another_webhook(
        server_factory: Callable[..., Any], receivers: Callable[..., Any]) -> None:
    server: Server = await server_factory(webhook_timeout_s=0.5, webhook_max_backoff_s=1)
    good: Receiver = await receivers()
    slow: Receiver = await receivers(slow_s=5.0)
    await register(server, url=f"http://127.0.0.1:{free_port()}/refused")
    await register(server, url=slow.url())
    await register(server, url=good.url())
    room_id = await server.create_room(name="r")
    t0 = time.monotonic()
    for i in range(5):
        c = await server.join(room_id, f"s{i}")
        assert (await c.request("leave"))["ok"]
    await good.wait_for(lambda: sum(g.payload["event"] == "participant_left" for g in good.got) == 5, timeout=5)
    assert time.monotonic() - t0 < 4  # less than one slow answer: nobody waited for the slow one
    assert [g.who() for g in good.got][:3] == [("room_started", None), ("participant_joined", "s0"),
                                               ("participant_left", "s0")]
    assert len(set(slow.tried)) == 1 and not slow.got  # its head: tried, timed out, retried; the rest wait
    await asyncio.sleep(0.6)  # past the slow one's timeout
    metrics = await (await server.http.get(server.base + "/metrics")).text()
    failed = next(line for line in metrics.splitlines() if line.startswith("urok_webhook_failed_attempts_total"))
    assert float(failed.split()[1]) >= 2


async def test_a_dead_delivery_is_listed_and_a_retry_delivers_it(
        server_factory: Callable[..., Any], receivers: Callable[..., Any]) -> None:
    server: Server = await server_factory(webhook_max_backoff_s=1, webhook_retry_hours=0.0005)  # dead in 1.8 s
    rx: Receiver = await receivers(down=True)
    w = await register(server, url=rx.url(), events=["room_started"])
    room_id = await server.create_room(name="r")
    await server.join(room_id, "teacher", role=Role.HOST)
    path = f"/v1/webhooks/{w['webhook_id']}/deliveries"
    status, page = await server.rest("GET", path + "?state=pending")
    assert status == 200 and page["total"] == 1
    pending = page["deliveries"][0]
    status, out = await server.rest("POST", f"{path}/{pending['delivery_id']}/retry")
    assert (status, out["error"]["code"]) == (409, "delivery_pending")
    for _ in range(100):
        status, page = await server.rest("GET", path + "?state=dead")
        if page["total"]:
            break
        await asyncio.sleep(0.1)
    dead = page["deliveries"][0]
    assert (dead["delivery_id"], dead["state"], dead["last_status"]) == (pending["delivery_id"], "dead", 503)
    assert dead["attempts"] >= 2 and dead["next_attempt_at"] is None
    rx.down = False
    status, out = await server.rest("POST", f"{path}/{dead['delivery_id']}/retry")
    assert status == 202 and out["state"] == "pending"
    await rx.wait_for(lambda: len(rx.got) == 1)
    verified(rx.got[0], w["secret"], "testkey")
    assert rx.got[0].headers["X-Urok-Delivery"] == dead["delivery_id"]
    for _ in range(50):
        status, page = await server.rest("GET", path + "?state=delivered")
        if page["total"]:
            break
        await asyncio.sleep(0.05)
    assert page["deliveries"][0]["attempts"] == 1  # a retry starts counting again
    metrics = await (await server.http.get(server.base + "/metrics")).text()
    assert "urok_webhook_dead_total 1.0" in metrics and "urok_webhook_delivered_total 1.0" in metrics


# --- down, a kill -9 of the server, back up: nothing lost ------------------------------------------

async def rows_written(url: str, n: int) -> None:
    """Wait until the outbox holds ``n`` delivery rows, read from outside the server."""
    engine = create_async_engine(driver_url(url))
    try:
        for _ in range(100):
            async with engine.connect() as conn:
                if (await conn.scalar(sa.select(sa.func.count()).select_from(t.webhook_deliveries)) or 0) >= n:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the outbox did not write {n} rows within 10 s")
    finally:
        await engine.dispose()


async def test_a_receiver_down_across_a_kill_9_of_the_server_gets_every_event_in_order_afterwards(
        tmp_path: Path, receivers: Callable[..., Any]) -> None:
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    rx = Receiver(down=True)  # answers 503 at first; later not even listening
    await rx.start()
    first, second = (Serve(tmp_path / "data", "", UROK_WEBHOOK_MAX_BACKOFF_S="1") for _ in range(2))
    clients: list[WsClient] = []
    async with aiohttp.ClientSession() as http:
        try:
            await first.start(http)
            async with http.post(first.base + "/v1/webhooks", json={"url": rx.url()}, headers=admin) as r:
                assert r.status == 201
                secret = (await r.json())["secret"]
            async with http.post(first.base + "/v1/rooms", json={"name": "7Б", "guest_policy": "ASK_HOST"},
                                 headers=admin) as r:
                room_id = (await r.json())["room_id"]
            host = await connect(http, first, token(room_id, "teacher", Role.HOST))
            clients.append(host)
            await host.event("welcome")
            anna = await connect(http, first, token(room_id, "anna"))
            clients.append(anna)
            anna_id = (await anna.event("welcome"))["participant_id"]
            assert (await host.request("admit", participant_ids=[anna_id]))["ok"]
            await anna.event("admitted")
            for c in (anna, host):  # nobody is left inside: the restart adds no "not_reconnected" leaves
                assert (await c.request("leave"))["ok"]
            before = [("room_started", None), ("participant_joined", "teacher"), ("participant_waiting", "anna"),
                      ("participant_admitted", "anna"), ("participant_joined", "anna"),
                      ("participant_left", "anna"), ("participant_left", "teacher")]
            await rows_written(sqlite_url(tmp_path / "data"), len(before))
            assert rx.attempts >= 1  # the head was tried and refused
            await rx.stop()  # now the port is closed
            await first.kill9()

            await second.start(http)
            boris = await connect(http, second, token(room_id, "boris", Role.HOST))
            clients.append(boris)
            await boris.event("welcome")
            async with http.delete(second.base + f"/v1/rooms/{room_id}", headers=admin) as r:
                assert r.status == 200
            await asyncio.sleep(1.5)  # the resumed queue keeps failing on the closed port
            rx.down = False
            await rx.start()  # back up on the same port
            after = [("participant_joined", "boris"), ("participant_left", "boris"), ("room_ended", None)]
            await rx.wait_for(lambda: any(g.payload["event"] == "room_ended" for g in rx.unique()))
            got = [g for g in rx.unique() if g.payload["event"] != "attendance_ready"]
            assert [g.who() for g in got] == before + after
            for g in got:
                verified(g, secret, "devkey")
            for _ in range(50):  # the last answer is counted a moment after the receiver has it
                async with http.get(second.base + "/metrics") as r:
                    if "urok_webhook_pending 0.0" in await r.text():
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("deliveries still pending")
        finally:
            for c in clients:
                await c.close()
            for s in (first, second):
                if s.proc is not None and s.proc.returncode is None:
                    await s.kill9()
            await rx.stop()


async def test_the_benchmark_with_webhooks_gets_every_event_of_its_runs() -> None:
    from benchmarks.signaling import report, run_with_server

    result = await run_with_server(20, rounds=1, webhooks=2, backlog_people=20)
    # the run: room_started, 20 waiting, 20 admitted, 20 joined, 21 left (host too: host joined 1)
    assert result["deliveries"] == 2 * (1 + 1 + 20 * 3 + 21)
    assert result["backlog"] == 2 * (1 + 2 * 20)  # 20 visitors while the receiver answers 503, then up
    assert result["join_rate_ratio"] > 0 and "deliveries during the run" in report(result)

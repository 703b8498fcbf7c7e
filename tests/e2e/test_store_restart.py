"""A restart keeps the lesson: `urok serve` on SQLite (and on PostgreSQL), a lesson with a host, two students, chat, a
deletion, a ban, raised hands and an attention check; `kill -9` the server; start it again on the
same data dir; the clients reconnect with the same tokens and find their seats, the chat (the
tombstone too), the ban, the hand still up, and the lesson's record of hands and attention answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from signaling.auth import TokenService
from signaling.rooms import Role
from signaling.store import schema as t
from signaling.store.sql_store import driver_url, sqlite_url
from tests.conftest import WsClient, free_port
from tests.pg_cluster import SKIP_REASON, PgCluster, pg_cluster_running

UROK = Path(sys.executable).with_name("urok")
TOKENS = TokenService("devkey", "devsecret")


class Serve:
    """One `urok serve --dev` process on a data dir (stopped with kill -9: a crash)."""

    def __init__(self, data_dir: Path, database_url: str, *, log: Path | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.log = log  # the server's stderr (its log), else dropped
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        env = {**os.environ, "UROK_RTC_UDP_PORT": "0", "UROK_DEMO_ROOM": "false", **self.env}
        if self.database_url:
            env.update(UROK_STORE="postgres", UROK_DATABASE_URL=self.database_url)
        else:
            env.update(UROK_STORE="sqlite", UROK_DATA_DIR=str(self.data_dir))
        err = asyncio.subprocess.DEVNULL if self.log is None else os.open(
            self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(UROK), "serve", "--dev", "--port", str(self.port), env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=err)
        finally:
            if self.log is not None:
                os.close(err)  # the server has its own copy
        for _ in range(300):  # up to 30 s on a loaded machine
            assert self.proc.returncode is None, "the server exited while starting"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.base + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError("the server did not start")

    async def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)  # the PID this test started
        await self.proc.wait()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster | None]:
    with pg_cluster_running() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, pg_cluster: PgCluster | None) -> str:
    """Empty for SQLite (in the data dir), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    if pg_cluster is None:
        pytest.skip(SKIP_REASON)
    return await pg_cluster.new_database()


def token(room_id: str, identity: str, role: Role = Role.PARTICIPANT) -> str:
    return TOKENS.mint_access(identity=identity, name=identity.title(), room_id=room_id, role=role,
                              registered=True, ttl_s=600, family_name=identity.title(), given_name="")


async def written(url: str, tombstone_id: str) -> None:
    """Wait (generously) until the database holds the tombstone and the ban, read from outside."""
    engine = create_async_engine(driver_url(url))
    try:
        for _ in range(200):
            async with engine.connect() as conn:
                deleted = await conn.scalar(sa.select(t.chat_messages.c.deleted)
                                            .where(t.chat_messages.c.message_id == tombstone_id))
                bans = await conn.scalar(sa.select(sa.func.count()).select_from(t.room_exclusions))
            if deleted and bans:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the server did not write the tombstone and the ban within 20 s")
    finally:
        await engine.dispose()


async def records(http: aiohttp.ClientSession, base: str, room_id: str, admin: dict[str, str]) -> dict[str, Any]:
    """The lesson's record of hands and attention checks, through the REST API."""
    out: dict[str, Any] = {}
    for kind, key in (("hands", "hands"), ("attention", "requests")):
        async with http.get(base + f"/v1/rooms/{room_id}/{kind}", headers=admin) as r:
            assert r.status == 200, await r.text()
            out[kind] = (await r.json())[key]
    return out


async def connect(http: aiohttp.ClientSession, srv: Serve, tok: str) -> WsClient:
    ws = await http.ws_connect(srv.base.replace("http", "ws", 1) + f"/v1/rtc?token={tok}", heartbeat=None)
    return WsClient(ws)


async def test_a_lesson_survives_kill_9_of_the_server(tmp_path: Path, http: aiohttp.ClientSession,
                                                      database_url: str) -> None:
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    first = Serve(tmp_path / "data", database_url)
    clients: list[WsClient] = []
    try:
        await first.start(http)
        async with http.post(first.base + "/v1/rooms", json={"name": "Физика", "external_id": "ej-7"},
                             headers=admin) as r:
            assert r.status in (200, 201)
            room_id = (await r.json())["room_id"]
        toks = {"teacher": token(room_id, "teacher", Role.HOST), "anna": token(room_id, "anna"),
                "boris": token(room_id, "boris")}
        seats: dict[str, str] = {}
        for name, tok in toks.items():
            c = await connect(http, first, tok)
            clients.append(c)
            seats[name] = (await c.event("welcome"))["participant_id"]
        host, anna, boris = clients
        await anna.event("chat_history")
        asked = await host.request("attention", all=True, text="Вы с нами?")
        assert asked["ok"] and asked["targets"] == 2, asked
        assert (await anna.request("attention_ack", attention_id=asked["attention_id"]))["ok"]
        assert (await anna.request("raise_hand"))["ok"]
        assert (await boris.request("raise_hand"))["ok"]
        assert (await host.request("lower_hand", participant_id=seats["anna"]))["ok"]  # answered
        assert (await anna.request("raise_hand"))["ok"]  # and up again when the server dies
        kept = await anna.request("chat_send", text="здравствуйте")
        rude = await anna.request("chat_send", text="something rude")
        assert kept["ok"] and rude["ok"], (kept, rude)
        rude_id = rude["message_id"]
        assert (await host.request("chat_delete", message_id=rude_id))["ok"]
        assert (await host.request("remove", participant_id=seats["boris"], ban=True))["ok"]
        # no request flushes the store here: the writer writes behind on its own within its period
        await written(database_url or sqlite_url(tmp_path / "data"), rude_id)
        async with http.get(first.base + "/metrics") as r:
            metrics = await r.text()
        assert "urok_store_write_failures_total 0.0" in metrics and "urok_store_writes_total" in metrics
        async with http.get(first.base + f"/v1/rooms/{room_id}/attendance", headers=admin) as r:
            before = {p["identity"]: p["intervals"] for p in (await r.json())["participants"]}
        record = await records(http, first.base, room_id, admin)
        assert [(h["identity"], h["reason"], h["answered"]) for h in record["hands"]] == [
            ("anna", "answered", True), ("boris", "left", False), ("anna", None, False)]
        (check,) = record["attention"]
        assert [a["identity"] for a in check["acked"]] == ["anna"]
        assert [a["identity"] for a in check["not_acked"]] == ["boris"]
        await first.kill9()
        for c in clients:
            await c.close()
        clients.clear()

        second = Serve(tmp_path / "data", database_url)
        await second.start(http)
        try:
            again: dict[str, dict[str, Any]] = {}
            history: dict[str, list[dict[str, Any]]] = {}
            for name in ("teacher", "anna"):
                c = await connect(http, second, toks[name])
                clients.append(c)
                again[name] = await c.event("welcome")
                history[name] = (await c.event("chat_history"))["messages"]
            queue = (await clients[0].event("hand_queue"))["hands"]
            assert [h["participant_id"] for h in queue] == [seats["anna"]]  # her hand is still up
            assert await records(http, second.base, room_id, admin) == record
            assert {n: w["participant_id"] for n, w in again.items()} == {n: seats[n] for n in again}
            assert again["teacher"]["you"]["role"] == "host"
            texts = [(m["text"], m["deleted"]) for m in history["anna"]]
            assert texts == [("здравствуйте", False), ("", True)]
            boris = await connect(http, second, toks["boris"])
            clients.append(boris)
            await asyncio.wait_for(boris.closed.wait(), 10)
            assert boris.ws.close_code == 4403  # banned stays banned
            assert not any(e["event"] == "welcome" for e in boris.events)
            async with http.get(second.base + f"/v1/rooms/{room_id}/attendance", headers=admin) as r:
                after = {p["identity"]: p["intervals"] for p in (await r.json())["participants"]}
            assert after["boris"] == before["boris"] and after["boris"][-1]["left"] is not None
            for name in ("teacher", "anna"):  # the interval open at the crash goes on (a reconnect)
                assert after[name][0]["joined"] == before[name][0]["joined"]
            async with http.post(second.base + "/v1/rooms", json={"external_id": "ej-7"}, headers=admin) as r:
                assert (await r.json())["room_id"] == room_id  # the e-journal's link still works
        finally:
            await second.kill9()
    finally:
        for c in clients:
            await c.close()
        if first.proc is not None and first.proc.returncode is None:
            await first.kill9()


async def test_who_does_not_reconnect_within_the_window_after_a_restart_leaves(
        tmp_path: Path, http: aiohttp.ClientSession, database_url: str) -> None:
    admin = {"Authorization": "Bearer " + TOKENS.mint_admin(ttl_s=600)}
    first = Serve(tmp_path / "data", database_url)
    second = Serve(tmp_path / "data", database_url, UROK_RECONNECT_WINDOW_S="2")
    clients: list[WsClient] = []
    try:
        await first.start(http)
        rooms: list[str] = []
        for name in ("kept", "nobody-back"):
            async with http.post(first.base + "/v1/rooms", json={"name": name}, headers=admin) as r:
                rooms.append((await r.json())["room_id"])
        seats: dict[str, str] = {}
        for room_id, name in ((rooms[0], "teacher"), (rooms[0], "anna"), (rooms[1], "boris")):
            c = await connect(http, first, token(room_id, name, Role.HOST if name == "teacher" else Role.PARTICIPANT))
            clients.append(c)
            seats[name] = (await c.event("welcome"))["participant_id"]
        async with http.get(first.base + "/v1/rooms", headers=admin) as r:  # a listing flushes the store
            assert r.status == 200
        await first.kill9()
        for c in clients:
            await c.close()
        clients.clear()

        await second.start(http)
        teacher = await connect(http, second, token(rooms[0], "teacher", Role.HOST))
        clients.append(teacher)
        welcome = await teacher.event("welcome")
        assert welcome["participant_id"] == seats["teacher"]
        left = await teacher.event("participant_left", timeout=20, participant_id=seats["anna"])
        assert left["num_participants"] == 1
        async with http.get(second.base + "/v1/rooms", headers=admin) as r:  # the list, before anyone asks for it
            listed = {room["room_id"]: room["num_participants"] for room in (await r.json())["rooms"]}
        assert listed == {rooms[0]: 1, rooms[1]: 0}
        for room_id, count in ((rooms[0], 1), (rooms[1], 0)):  # the room nobody opened too
            async with http.get(second.base + f"/v1/rooms/{room_id}", headers=admin) as r:
                assert (await r.json())["num_participants"] == count
        async with http.get(second.base + f"/v1/rooms/{rooms[0]}/attendance", headers=admin) as r:
            after = {p["identity"]: p["intervals"] for p in (await r.json())["participants"]}
        assert after["anna"][-1]["left"] is not None and after["teacher"][-1]["left"] is None
    finally:
        for c in clients:
            await c.close()
        for srv in (first, second):
            if srv.proc is not None and srv.proc.returncode is None:
                await srv.kill9()
